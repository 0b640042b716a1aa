"""The training loop: stages run in order, each with its own optimizer and learning-rate schedule,
validation after every epoch, early stopping on a validation metric, best weights restored.

Data stays in memory as uint8; each step indexes a batch, scales it to [0, 1] and augments it as a
batch. Nothing here knows about particular models: plugins give recipes, this runs them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from harness.callbacks import EarlyStopper
from harness.data.augment import augment_batch
from harness.evaluate import loss_and_accuracy, model_input, predict_logits
from harness.progress import Progress
from harness.specs import Recipe, Stage


@dataclass
class StageResult:
    name: str
    epochs: int  # epochs run
    best_epoch: int
    best_value: float
    monitor: str
    stopped_early: bool


@dataclass
class FitResult:
    history: list = field(default_factory=list)  # one dict per epoch, every stage
    stages: list = field(default_factory=list)  # StageResult per stage
    train_time_s: float = 0.0  # time spent in training steps (validation excluded)
    train_images: int = 0


def make_optimizer(stage: Stage, params) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if stage.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=stage.lr, momentum=stage.momentum, nesterov=stage.nesterov, weight_decay=stage.weight_decay
        )
    if stage.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    return torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)


def make_step_schedule(stage: Stage, optimizer, steps_per_epoch: int):
    """A scheduler stepped after every batch for fixed schedules, else None."""
    total = stage.epochs * steps_per_epoch
    if stage.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=stage.lr, total_steps=total)
    if stage.schedule == "cosine":
        warm = int(stage.warmup_epochs * steps_per_epoch)

        def factor(step):
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return None


def make_plateau(stage: Stage, optimizer):
    """torch's ReduceLROnPlateau with the Keras settings of the stage, or None.

    Keras cuts the LR once ``patience`` epochs in a row failed to improve; torch cuts when more
    than ``patience`` did, so torch is given ``patience - 1``. ``cooldown`` is torch's: that many
    epochs after a cut are not counted as bad.
    """
    plateau = stage.reduce_lr
    if plateau is None:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min" if plateau.monitor == "val_loss" else "max",
        factor=plateau.factor,
        patience=plateau.patience - 1,
        threshold=plateau.min_delta,
        threshold_mode="abs",
        cooldown=plateau.cooldown,
        min_lr=plateau.min_lr,
    )


class Trainer:
    """Runs a recipe on a model over in-memory splits. ``on_epoch(row)`` sees each history row."""

    def __init__(self, model, splits, recipe: Recipe, *, input_size: int, seed: int, label="", on_epoch=None,
                 show_progress=True):
        self.model = model
        self.recipe = recipe
        self.input_size = input_size
        self.label = label
        self.on_epoch = on_epoch
        self.show_progress = show_progress
        self.train_x = torch.from_numpy(splits.train_x)
        self.train_y = torch.from_numpy(splits.train_y)
        self.val_x = torch.from_numpy(splits.val_x)
        self.val_y = torch.from_numpy(splits.val_y)
        # one generator for shuffling and augmentation, so a seed fixes both
        self.generator = torch.Generator().manual_seed(seed)

    def fit(self) -> FitResult:
        result = FitResult()
        for stage in self.recipe.stages:
            result.stages.append(self.run_stage(stage, result))
        return result

    def run_stage(self, stage: Stage, result: FitResult) -> StageResult:
        batches = self.batch_count(stage.batch_size)
        optimizer = make_optimizer(stage, self.model.parameters())
        step_schedule = make_step_schedule(stage, optimizer, batches)
        plateau = make_plateau(stage, optimizer)
        stopper = EarlyStopper(stage.early_stopping)
        stopped_early = False
        epoch = 0
        for epoch in range(1, stage.epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            train_loss, train_acc = self.train_epoch(stage, optimizer, step_schedule, f"{stage.name} {epoch}/{stage.epochs}")
            result.train_time_s += time.perf_counter() - started
            result.train_images += len(self.train_y)
            val_loss, val_acc = loss_and_accuracy(
                predict_logits(self.model, self.val_x, input_size=self.input_size,
                               batch_size=self.recipe.eval_batch_size),
                self.val_y,
            )
            row = {
                "stage": stage.name,
                "epoch": epoch,
                "lr": lr,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "time_s": time.perf_counter() - started,
            }
            result.history.append(row)
            if self.on_epoch:
                self.on_epoch(row)
            if plateau is not None:
                plateau.step(row[stage.reduce_lr.monitor])
            if stopper.update(epoch, row, self.model):
                stopped_early = True
                break
        stopper.restore(self.model)
        return StageResult(stage.name, epoch, stopper.best_epoch, stopper.best, stopper.monitor, stopped_early)

    def batch_count(self, batch_size: int) -> int:
        n = len(self.train_y)
        # a last batch of one image is dropped: batch norm cannot train on it
        return n // batch_size + (1 if n % batch_size > 1 else 0)

    def train_epoch(self, stage: Stage, optimizer, step_schedule, description: str) -> tuple[float, float]:
        model, augment = self.model, self.recipe.augment
        model.train()
        order = torch.randperm(len(self.train_y), generator=self.generator)
        batches = self.batch_count(stage.batch_size)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.long)
        seen = 0
        progress = Progress(batches, f"{self.label} {description}", enabled=self.show_progress)
        for step in range(batches):
            index = order[step * stage.batch_size : (step + 1) * stage.batch_size]
            x = augment_batch(model_input(self.train_x[index], self.input_size), augment, self.generator)
            y = self.train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=stage.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step_schedule is not None:
                step_schedule.step()
            with torch.no_grad():
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            progress.update(step + 1)
        progress.close()
        return loss_sum.item() / seen, correct.item() / seen
