"""What a stage trains with: its parameter groups, its optimizer and its learning-rate schedule,
chosen by name from the tables below, and Lookahead's slow weights."""
from __future__ import annotations

import math

import torch

from harness.errors import unknown
from harness.freezing import Parts
from harness.specs import Stage

TRIANGLE_START, TRIANGLE_END = 0.2, 0.07  # airbench94's schedule, as fractions of the peak LR


NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def param_groups(model, parts: Parts, stage: Stage) -> list:
    """Trainable parameters only; the base gets ``base_lr`` when the stage sets one, and the
    parameters of normalization layers ``norm_lr_scale`` times the learning rate (and the weight
    decay divided by it). The first group is the head's, whose LR the history records."""
    norms = {id(p) for module in model.modules() if isinstance(module, NORM_LAYERS) for p in module.parameters()}
    groups = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            under_head = name == parts.head or name.startswith(parts.head + ".")
            lr = stage.lr if under_head or stage.base_lr is None else stage.base_lr
            factor = stage.norm_lr_scale if id(parameter) in norms else 1
            group = groups.setdefault((lr != stage.lr, factor != 1), {
                "params": [], "lr": lr * factor, "weight_decay": stage.weight_decay / factor})
            group["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


def _sgd(groups: list, stage: Stage) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=stage.lr, momentum=stage.momentum, nesterov=stage.nesterov,
                           weight_decay=stage.weight_decay)


def _cosine(stage: Stage, optimizer, total: int, steps_per_epoch: int):
    warm = int(stage.warmup_epochs * steps_per_epoch)

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _triangle(stage: Stage, optimizer, total: int, steps_per_epoch: int):
    warm = max(1, int(stage.warmup_epochs * steps_per_epoch))

    def factor(step):
        if step < warm:
            return TRIANGLE_START + (1 - TRIANGLE_START) * step / warm
        return 1 + (TRIANGLE_END - 1) * min(1.0, (step - warm) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _onecycle(stage: Stage, optimizer, total: int, steps_per_epoch: int):
    peaks = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total)


# the names a stage's ``optimizer`` and ``schedule`` may take, and what each builds: the config
# checks names against these tables, so a new one is added here alone
OPTIMIZERS = {
    "adam": lambda groups, stage: torch.optim.Adam(groups, lr=stage.lr, weight_decay=stage.weight_decay),
    "adamw": lambda groups, stage: torch.optim.AdamW(groups, lr=stage.lr, weight_decay=stage.weight_decay),
    "sgd": _sgd,
}
SCHEDULES = {"onecycle": _onecycle, "cosine": _cosine, "triangle": _triangle}


def check_names(stage: Stage) -> None:
    """A one-line error for an optimizer or schedule these tables do not hold: the config checks
    before a run, and the builders again for a Trainer used directly."""
    if stage.optimizer not in OPTIMIZERS:
        raise unknown("optimizer", stage.optimizer, OPTIMIZERS, f"in stage '{stage.name}'; choose {', '.join(OPTIMIZERS)}")
    if stage.schedule is not None and stage.schedule not in SCHEDULES:
        raise unknown("schedule", str(stage.schedule), SCHEDULES, f"in stage '{stage.name}'; or none")


def make_optimizer(stage: Stage, groups: list) -> torch.optim.Optimizer:
    check_names(stage)
    return OPTIMIZERS[stage.optimizer](groups, stage)


def make_step_schedule(stage: Stage, optimizer, steps_per_epoch: int):
    """A scheduler stepped after every batch for fixed schedules, else None (a plateau callback,
    or a constant learning rate)."""
    check_names(stage)
    if stage.schedule is None:
        return None
    return SCHEDULES[stage.schedule](stage, optimizer, stage.epochs * steps_per_epoch, steps_per_epoch)


class Lookahead:
    """Slow weights (every floating-point entry of the state dict, batch-norm statistics
    included, as airbench does) that the trained weights are pulled back to every ``EVERY``
    steps; see ``Stage.lookahead``."""

    EVERY = 5

    def __init__(self, model, decay: float, total_steps: int):
        self.decay, self.total = decay, total_steps
        self.steps = 0
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def step(self, model) -> None:
        self.steps += 1
        if self.steps % self.EVERY and self.steps < self.total:
            return
        # the ramp keeps early training free; at the last step the model takes the slow weights
        decay = 1.0 if self.steps >= self.total else self.decay ** self.EVERY * (self.steps / self.total) ** 3
        for key, value in model.state_dict().items():
            if key in self.slow:
                self.slow[key].lerp_(value, 1 - decay)
                value.copy_(self.slow[key])

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slow": {k: v.cpu() for k, v in self.slow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        for key, value in state["slow"].items():
            self.slow[key].copy_(value)
