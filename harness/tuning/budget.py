"""The budget every trial of every model gets: a number of epochs, or training compute in FLOPs.

Epochs are shared among a recipe's stages in the proportions the recipe gives them (at least one
each), so a two-stage transfer model gets as many epochs in all as a one-stage CNN. A FLOP budget
scales each stage's epochs so that the training compute the trainer counts (``harness.compute``)
comes to the budget as near as whole epochs allow (never over it: a budget smaller than one epoch of
each stage is refused), and ends a trial whose compute reaches it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.compute import flop_text
from harness.errors import HarnessError


@dataclass(frozen=True)
class Budget:
    epochs: int | None = None
    flop: float | None = None

    def __post_init__(self):
        if (self.epochs is None) == (self.flop is None):
            raise HarnessError("give a trial budget: --budget-epochs N or --budget-flop X (one of them)")
        if (self.epochs is not None and self.epochs < 1) or (self.flop is not None and self.flop <= 0):
            raise HarnessError("a trial budget must be positive")

    def describe(self) -> str:
        return f"{self.epochs} epochs" if self.epochs is not None else f"{flop_text(self.flop)} of training compute"

    def as_dict(self) -> dict:
        return asdict(self)


def shares(total: int, weights: list) -> list:
    """``total`` whole units shared in proportion to ``weights``, at least one each (largest remainders)."""
    if total < len(weights):
        raise HarnessError(f"a budget of {total} epochs cannot give each of {len(weights)} stages one")
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [max(1, int(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in order:
        if sum(counts) >= total:
            break
        counts[i] += 1
    while sum(counts) > total:  # the minimum of one pushed the sum over: take from the largest
        counts[counts.index(max(counts))] -= 1
    return counts


def stage_epochs(budget: Budget, config: dict, flop_per_epoch: list | None = None) -> list:
    """Each stage's epochs under ``budget``; ``flop_per_epoch`` (per stage) for a FLOP budget."""
    recipe = [stage["epochs"] for stage in config["stages"]]
    if budget.epochs is not None:
        return shares(budget.epochs, recipe)
    if not flop_per_epoch or not all(flop_per_epoch):
        raise HarnessError(f"model '{config['model']}': its training compute cannot be counted; give it an epoch "
                           "budget (--budget-epochs)")
    factor = budget.flop / sum(e * f for e, f in zip(recipe, flop_per_epoch))
    epochs = [int(e * factor) for e in recipe]
    if min(epochs) < 1:  # one epoch of a stage would already spend more than the budget allows it
        raise HarnessError(f"model '{config['model']}': a budget of {flop_text(budget.flop)} gives a stage less than "
                           f"one epoch (one epoch of each costs {flop_text(sum(flop_per_epoch))}); raise --budget-flop "
                           "or train on fewer images (--set data.train_size=N)")
    return epochs


def overrides(config: dict, epochs: list) -> dict:
    """The ``--set`` pairs that give each stage its epochs, and its warm-up the same share of them."""
    pairs = {}
    for stage, count in zip(config["stages"], epochs):
        prefix = "" if len(config["stages"]) == 1 else f"stages.{stage['name']}."
        pairs[f"{prefix}epochs"] = count
        if stage.get("warmup_epochs"):
            pairs[f"{prefix}warmup_epochs"] = stage["warmup_epochs"] * count / stage["epochs"]
    return pairs


def flop_per_epoch(spec, config: dict, train_images: int, classes: int) -> list | None:
    """Training FLOPs of one epoch of each stage, as the trainer counts them; None when the model's
    MACs cannot be counted."""
    import torch

    from harness.compute import TrainingCost
    from harness.freezing import Parts, trainable_prefixes
    from harness.modelcheck import macs_by_module

    torch.manual_seed(0)
    model = spec.build(classes)
    macs = macs_by_module(model, config["input_size"])
    if not macs:
        return None
    cost, parts = TrainingCost(macs, spec.head), Parts.of(model, spec.head, spec.blocks)
    per_image = [cost.head_step() if stage["trainable"] == "head" and stage["feature_cache"]
                 else cost.step(trainable_prefixes(parts, stage["trainable"])) for stage in config["stages"]]
    return [train_images * f for f in per_image]
