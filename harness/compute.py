"""Training compute in FLOPs, a cost that does not depend on the machine: seconds compare only
within one machine, FLOPs compare across all of them.

The convention (the one airbench and scaling-law papers use): a multiply-accumulate is 2 FLOPs
and a training step costs 3 forward passes (the forward, and a backward of about twice its
work), so a step over ``n`` images of a model of ``M`` MACs per image costs ``6 * M * n``. A
stage that trains only part of the model runs the whole forward (``2 * M``) but the backward of
the trained part alone (``4 * M_trained``); a frozen base on cached features costs one forward of
the base per cached view, then ``6 * M_head`` per image and epoch. Validation, test-time
augmentation and evaluation are not training and are not counted.
"""
from __future__ import annotations

FLOP_PER_MAC = 2
BACKWARD_PER_FORWARD = 2


def flop_text(flop) -> str:
    """0.31 PFLOP, 42 TFLOP, 5.1 GFLOP."""
    if flop is None or flop != flop:
        return ""
    for size, unit in ((1e18, "EFLOP"), (1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")):
        if flop >= size:
            return f"{flop / size:.3g} {unit}"
    return f"{flop:.0f} FLOP"


class TrainingCost:
    """Per-image training FLOPs of a model's stages, from its MACs per module (see
    ``harness.modelcheck.macs_by_module``); all zeros when the MACs could not be counted."""

    def __init__(self, macs_by_module: dict | None, head: str = "head"):
        self.macs = macs_by_module or {}
        self.head = head
        self.known = bool(self.macs)

    def part_macs(self, prefixes) -> int:
        """MACs of the modules named (and their children); the whole model for None."""
        if prefixes is None:
            return self.macs.get("", 0)
        names = [name for name in self.macs if name and any(name == p or name.startswith(p + ".") for p in prefixes)]
        # a module's count includes its children's: add only the outermost named ones
        outermost = [n for n in names if not any(n != o and n.startswith(o + ".") for o in names)]
        return sum(self.macs[name] for name in outermost)

    def step(self, trained_prefixes) -> float:
        """FLOPs of a training step, per image, when the modules under ``trained_prefixes`` train
        (None: every parameter)."""
        total = self.macs.get("", 0)
        trained = total if trained_prefixes is None else self.part_macs(trained_prefixes)
        return FLOP_PER_MAC * (total + BACKWARD_PER_FORWARD * trained)

    def cached_base(self) -> float:
        """FLOPs of computing one image's head inputs: a forward pass of everything but the head."""
        return FLOP_PER_MAC * (self.macs.get("", 0) - self.part_macs([self.head]))

    def head_step(self) -> float:
        """FLOPs of a training step of the head alone on cached inputs, per image."""
        return FLOP_PER_MAC * (1 + BACKWARD_PER_FORWARD) * self.part_macs([self.head])


# validation accuracies at which time, images and compute to accuracy are recorded
ACCURACY_TARGETS = (0.5, 0.7, 0.8, 0.9)


def time_to_accuracy(history: list, targets=ACCURACY_TARGETS) -> dict:
    """For each target, the training seconds, images and FLOPs at the end of the first epoch whose
    validation accuracy reached it (None when no epoch did), from a run's history rows."""
    out = {}
    for target in targets:
        reached = next((row for row in history if (row.get("val_acc") or 0) >= target), None)
        key = f"{round(target * 100)}"
        for field, name in (("train_time_s", "s"), ("train_images", "images"), ("train_flop", "flop")):
            value = reached.get(field) if reached else None
            out[f"to_val_{key}_{name}"] = value
    return out
