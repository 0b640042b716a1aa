"""Early stopping with Keras's semantics. (ReduceLROnPlateau is torch's own; see train.py.)"""
from __future__ import annotations

from harness.specs import EarlyStopping


def improved(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (higher is better for val_acc)."""
    if best is None:
        return True
    if monitor == "val_loss":
        return value < best - min_delta
    return value > best + min_delta


class EarlyStopper:
    """Tracks the best epoch of a stage and says when ``patience`` epochs have passed without
    improvement; keeps a copy of the best weights when ``restore_best_weights`` is on."""

    def __init__(self, settings: EarlyStopping | None, monitor: str = "val_acc"):
        self.settings = settings
        self.monitor = settings.monitor if settings else monitor
        self.best = None
        self.best_epoch = 0
        self.wait = 0
        self.best_state = None

    def update(self, epoch: int, metrics: dict, model) -> bool:
        """Record an epoch's metrics; True when training should stop."""
        value = metrics[self.monitor]
        min_delta = self.settings.min_delta if self.settings else 0.0
        if improved(value, self.best, self.monitor, min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.settings is not None and self.settings.restore_best_weights:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        return self.settings is not None and self.wait >= self.settings.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_state = state["best_state"]

    def restore(self, model) -> None:
        """Put the best epoch's weights back; without early stopping the last epoch's weights stay."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
