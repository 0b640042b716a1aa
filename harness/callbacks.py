"""How the trainer calls callbacks: the objects ``CallbackSpec.make`` returns, in registration order,
each guarded so that one that raises is switched off with a one-line warning naming it and its
plugin while training goes on. The callbacks themselves (early stopping, ReduceLROnPlateau, the
loggers) are plugins: ``plugins/harness_callbacks``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import one_line
from harness.log import warn

def improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta``, in ``mode`` ``max`` (higher is
    better) or ``min`` (a monitor's settings name theirs: ``settings.mode``)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be max or min, got {mode!r}")
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


class Callback:
    """The hooks a training callback may implement (``CallbackSpec.make`` returns one); every one
    is a no-op here, so a callback overrides only what it needs. ``control.stop()`` (the handle
    ``on_stage_start`` gets) ends the stage after the epoch; ``state_dict`` / ``load_state_dict`` carry the
    callback's state through the checkpoint, so ``--resume`` continues it. The trainer's own
    progress bar, console line, best-epoch tracking and checkpoint are callbacks on these hooks
    (``harness.loop_callbacks``)."""

    def on_run_start(self, run: "RunInfo") -> None:
        """Before training; ``run.main`` is False on the other processes of a data-parallel run."""

    def on_stage_start(self, stage, control: "Control") -> None:
        """At each stage's start, with the handle on the model and the learning rate."""

    def on_epoch_start(self, epoch: int, batches: int) -> None:
        """Before an epoch's ``batches`` training steps."""

    def on_batch_end(self, step: int) -> None:
        """After training step ``step`` (1 to ``batches``) of the epoch."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After each epoch: ``logs`` has train_loss, train_acc, val_loss, val_acc, lr, stage."""

    def on_stage_end(self, stage, control: "Control") -> None:
        """At each stage's end, before the stage is scored."""

    def on_run_end(self, metrics: dict) -> None:
        """After the run: its ``metrics.json`` (or the failed row)."""

    def state_dict(self):
        return None

    def load_state_dict(self, state) -> None:
        """Take back what ``state_dict`` gave."""


@dataclass
class RunInfo:
    """What ``on_run_start`` sees: the run's folder name, resolved config and output folder."""

    name: str
    config: dict
    folder: Path
    out: Path  # the results folder (--out) the model's folder is in
    main: bool = True  # False on the other processes of a data-parallel run: they write nothing
    # where the run's results end up when this process writes elsewhere first (a Ray task's scratch
    # folder holds what the driver then writes under its --out): that --out, as the driver names it
    results: Path | None = None


class Control:
    """The handle a callback gets at ``on_stage_start``: the model, the learning rate, the stage's end.

    ``lr`` is the head's learning rate (the one ``history.csv`` records); ``set_lr`` changes it and
    keeps every other parameter group at its ratio to it (a lower ``base_lr``, ``norm_lr_scale``).
    ``stop()`` ends the stage after the epoch; ``stopping`` says whether one asked.
    ``features_cached``: the stage trains the head on the frozen base's cached features.
    """

    def __init__(self, model, optimizer, stage):
        self.model, self.optimizer, self.stage = model, optimizer, stage
        self.starting_lrs = [group["lr"] for group in optimizer.param_groups]
        self.stopping, self.features_cached = False, False

    def stop(self) -> None:
        self.stopping = True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_lr(self, value: float) -> None:
        ratio = value / self.lr
        self.optimizer.param_groups[0]["lr"] = value
        for group in self.optimizer.param_groups[1:]:
            group["lr"] *= ratio

    def scale_lr(self, factor: float, min_lr: float = 0.0) -> None:
        """Multiply every group's learning rate by ``factor``, each floored at ``min_lr`` times the
        group's starting ratio to the head (so a lower base LR keeps its own floor); a change
        smaller than 1e-8 is skipped (torch's ReduceLROnPlateau does the same arithmetic)."""
        for group, floor in zip(self.optimizer.param_groups, self.floors(min_lr)):
            new = max(group["lr"] * factor, floor)
            if group["lr"] - new > 1e-8:
                group["lr"] = new

    def floors(self, min_lr: float) -> list:
        return [min_lr * start / self.stage.lr for start in self.starting_lrs]


class CallbackList:
    """Named callback objects, called in order; a failing one is reported and switched off."""

    def __init__(self, entries=()):
        self.entries = list(entries)  # (name, plugin, object)

    @classmethod
    def make(cls, registry, config: dict, chosen=()) -> "CallbackList":
        """The default callbacks of ``registry`` and the ``chosen`` ones, made for ``config``."""
        names = [name for name, r in registry.callbacks.items() if r.spec.default]
        names += [name for name in chosen if name not in names]
        entries = []
        for name in names:
            registered = registry.callbacks[name]
            try:
                entries.append((name, registered.plugin, registered.spec.make(config)))
            except Exception as exc:  # noqa: BLE001 - a plugin's failure is that plugin's
                if getattr(exc, "exit_code", None):  # a HarnessError (a missing extra): the user's to fix
                    raise
                _warn(name, registered.plugin, "make", exc)
        return cls(entries)

    def call(self, hook: str, *args) -> list:
        results = []
        for entry in list(self.entries):
            name, plugin, callback = entry
            method = getattr(callback, hook, None)
            if method is None:
                continue
            try:
                results.append(method(*args))
                if hook == "on_epoch_end" and results[-1]:  # one way to end a stage, not two
                    raise TypeError(f"on_epoch_end returned {results[-1]!r}: end the stage with control.stop() "
                                    "(the handle on_stage_start gets)")
            except Exception as exc:  # noqa: BLE001
                _warn(name, plugin, hook, exc)
                self.entries.remove(entry)
        return results

    def state_dict(self) -> dict:
        return {name: callback.state_dict() for name, _, callback in self.entries if hasattr(callback, "state_dict")}

    def load_state_dict(self, states: dict) -> None:
        for name, _, callback in self.entries:
            if name in states and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(states[name])

    def names(self) -> list:  # what config.json and metrics.json list
        return [name for name, _, _ in self.entries]


def _warn(name: str, plugin: str, hook: str, exc: BaseException) -> None:
    reason = one_line(exc)
    warn(f"callback '{name}' (plugin '{plugin}') failed in {hook}: {reason}; switched off")
