"""The trainer's own callbacks, on the same hooks as a plugin's: the best epoch of each stage, the
progress bar, the console line and the checkpoint. ``Trainer`` puts them around the plugins'
callbacks (``OwnAndPlugins``): the best epoch first, the checkpoint last, so it holds what every
other callback did in the epoch. Unlike a plugin's, a failure here is not switched off: a
checkpoint that cannot be written (a full disk) stops the run."""
from __future__ import annotations

from harness.callbacks import Callback, CallbackList, improved
from harness.jobs import log
from harness.progress import Progress


class BestEpoch(Callback):
    """The stage's best epoch for its result, on early stopping's monitor and mode (``val_acc``,
    higher is better, when the stage has none); early stopping restores the weights itself."""

    name = "trainer.best_epoch"  # apart from plugin callbacks' names in the checkpoint

    def __init__(self):
        self.monitor, self.mode, self.min_delta = "val_acc", "max", 0.0
        self.value, self.epoch = None, 0

    def on_stage_start(self, stage, control) -> None:
        settings = stage.early_stopping
        self.monitor = settings.monitor if settings else "val_acc"
        self.mode = settings.mode if settings else "max"
        self.min_delta = settings.min_delta if settings else 0.0
        self.value, self.epoch = None, 0

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if improved(logs[self.monitor], self.value, self.mode, self.min_delta):
            self.value, self.epoch = logs[self.monitor], epoch

    def state_dict(self) -> dict:
        return {"value": self.value, "epoch": self.epoch}

    def load_state_dict(self, state) -> None:
        self.value, self.epoch = state["value"], state["epoch"]


class ProgressBar(Callback):
    """A bar per epoch's training batches on a terminal or in a notebook (``harness.progress``)."""

    name = "trainer.progress_bar"

    def __init__(self, label: str):
        self.label, self.stage, self.control, self.bar = label, None, None, None

    def on_stage_start(self, stage, control) -> None:
        self.stage, self.control = stage, control

    def on_epoch_start(self, epoch: int, batches: int) -> None:
        cached = " (cached features)" if self.control.features_cached else ""
        self.bar = Progress(batches, f"{self.label} {self.stage.name} {epoch}/{self.stage.epochs}{cached}".strip())

    def on_batch_end(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.bar is not None:  # before the console line, which would otherwise print into the bar
            self.bar.close()
            self.bar = None


class ConsoleLine(Callback):
    """One line per epoch on stderr (rank 0): losses, accuracies, learning rate, time."""

    name = "trainer.console_line"

    def __init__(self, label: str):
        self.label = label

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        log(f"{self.label} {logs['stage']} epoch {epoch}: loss {logs['train_loss']:.4f} acc {logs['train_acc']:.4f} "
            f"val_loss {logs['val_loss']:.4f} val_acc {logs['val_acc']:.4f} lr {logs['lr']:.2e} "
            f"({logs['time_s']:.1f}s)".strip())


class Checkpointing(Callback):
    """After every epoch, the trainer's whole state written atomically (``Trainer.save_checkpoint``),
    from which an interrupted run resumes exactly."""

    name = "trainer.checkpoint"

    def __init__(self, trainer):
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.trainer.save_checkpoint()


class OwnAndPlugins:
    """What the trainer calls: its own callbacks ``first``, the plugins' ``CallbackList`` (guarded,
    shared with the run, so a plugin switched off here is off for ``on_run_end`` too), then its own
    ``last``. A callback asks to end the stage by calling ``control.stop()``; the ones after it
    still see the epoch."""

    def __init__(self, first: list, plugins: CallbackList, last: list):
        self.first, self.plugins, self.last = first, plugins, last

    def call(self, hook: str, *args) -> None:
        for callback in self.first:
            getattr(callback, hook)(*args)
        self.plugins.call(hook, *args)
        for callback in self.last:
            getattr(callback, hook)(*args)

    def on_epoch_end(self, epoch: int, logs: dict, control) -> bool:
        for callback in self.first:
            callback.on_epoch_end(epoch, dict(logs))
        self.plugins.call("on_epoch_end", epoch, dict(logs))
        for callback in self.last:
            callback.on_epoch_end(epoch, dict(logs))
        return control.stopping

    def own(self) -> list:
        return self.first + self.last

    def state_dict(self) -> dict:
        own = {callback.name: callback.state_dict() for callback in self.own()}
        return {**self.plugins.state_dict(), **{name: state for name, state in own.items() if state is not None}}

    def load_state_dict(self, states: dict) -> None:
        self.plugins.load_state_dict(states)
        for callback in self.own():
            if callback.name in states:
                callback.load_state_dict(states[callback.name])
