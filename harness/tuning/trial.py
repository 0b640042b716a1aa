"""One trial, wherever an executor runs it: the job's settings trained by the same code as ``harness
run`` (``model_run.build``, the ``Trainer``), scored on the validation images only. The test split
is never made, so no test image is read, and the trial writes no file. A ``Pruning`` callback on
the epoch hook reports each epoch's validation accuracy to the study and ends the trial when the
study's pruner says so, or when a FLOP budget is spent."""
from __future__ import annotations

import time

from harness.callbacks import Callback, CallbackList
from harness.jobs import Outcome
from harness.status import Status


class TrialEnds(Exception):
    """Raised between stages to end a trial early: ``state`` is ``pruned`` or ``budget``."""

    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


class Pruning(Callback):
    """Reports every epoch's validation accuracy (the step counts epochs over all stages) and asks
    the pruner; a pruned trial, or one whose training compute reached ``flop_budget``, ends its
    stage at once and the trial ends with it."""

    def __init__(self, handle, flop_budget: float | None = None):
        self.handle, self.flop_budget = handle, flop_budget
        self.step, self.ended, self.control = 0, None, None

    def on_stage_start(self, stage, control) -> None:
        self.control = control

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.step += 1
        if self.handle is not None:
            self.handle.report(logs["val_acc"], self.step)
        if self.handle is not None and self.handle.should_prune():
            self.ended = "pruned"
        elif self.flop_budget is not None and (logs.get("train_flop") or 0) >= self.flop_budget:
            self.ended = "budget"
        if self.ended is not None:
            self.control.stop()


def run_trial(job, context) -> Outcome:
    """Train ``job`` (its config's ``trial`` names the study) and return its validation result."""
    import traceback

    from harness.errors import HarnessError, one_line

    try:
        return Outcome(job, Status.OK, metrics=train_trial(job, context))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a trial's error fails that trial; the study goes on
        reason = str(exc) if isinstance(exc, HarnessError) else one_line(exc)
        return Outcome(job, Status.FAILED, reason=reason, traceback=traceback.format_exc())


def train_trial(job, context) -> dict:
    from harness.cores import Meter, any_busy
    from harness.model_run import build, initialise, training_setup
    from harness.train import Trainer, Watch

    info, config, spec = job.config["trial"], job.config, job.spec
    started, started_at = time.perf_counter(), time.time()
    images = context.images_for(config["input_size"])
    built = build(job, images, context.request, with_test=False)
    initialise(spec, config, built)
    pruning = Pruning(reachable_trial(info), info.get("flop_budget"))
    callbacks = CallbackList([*(job.callbacks.entries if job.callbacks else []), ("pruning", "harness.tuning", pruning)])

    def stage_ended(stage, model):
        if pruning.ended:
            raise TrialEnds(pruning.ended)

    watch = Watch(callbacks=callbacks, label=f"{spec.name} trial {info['number']}", on_stage_end=stage_ended)
    trainer = Trainer(built.model, built.splits, built.recipe, training_setup(job, built), watch)
    state = "complete"
    with Meter() as meter:  # whether other processes took cores from the trial: its seconds say so
        try:
            trainer.fit()
        except TrialEnds as ended:
            state = ended.state
    return {**summary(state, trainer.result), "busy": any_busy([meter.result]),
            "wall_time_s": time.perf_counter() - started, "started_at": started_at, "ended_at": time.time()}


def reachable_trial(info: dict):
    """The study's handle on this trial, or None (with a warning) where its storage cannot be reached
    from this machine: the trial then trains to its budget, unpruned."""
    from harness.errors import one_line
    from harness.log import warn
    from harness.tuning.study import trial_handle

    try:
        return trial_handle(info)
    except Exception as exc:  # noqa: BLE001 - a storage another machine holds: train without pruning
        warn(f"trial {info['number']}: the study's storage cannot be reached from here ({one_line(exc)}); "
             "it trains unpruned")
        return None


def summary(state: str, result) -> dict:
    """What the driver tells the study: the validation accuracy of the model the trial ends on
    (the last stage's best epoch, whose weights early stopping restores), the last epoch reached,
    its training compute and seconds."""
    history = result.history
    last_stage = history[-1]["stage"] if history else None
    rows = [row for row in history if row["stage"] == last_stage]
    finished = result.stages[-1] if result.stages and result.stages[-1].name == last_stage else None
    best = next((row for row in rows if finished and row["epoch"] == finished.best_epoch), None)
    value = (best or max(rows, key=lambda row: row["val_acc"], default={})).get("val_acc")
    return {"state": "complete" if state == "budget" else state, "value": value, "epochs": len(history),
            "train_flop": history[-1]["train_flop"] if history else None, "train_time_s": result.train_time_s,
            "train_images": result.train_images}
