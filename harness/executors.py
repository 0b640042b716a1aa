"""The API of executor plugins: an executor gets the run's jobs and a ``JobContext`` and carries
every job out, here or elsewhere, calling ``context.finished(outcome)`` as each one ends; the
built-in ``local`` and ``ray`` executors (``plugins/harness_executors``) use exactly this.

The policy for errors is the same whatever the executor: anything wrong with what was asked
(names, settings, data, weights, the output folder, a checkpoint made with other settings) stops
the run with one line before any job starts; an error while a job trains, of any kind, fails
that job's row with a one-line reason (``error.log`` has the traceback) and the other jobs go on;
the run then exits with 1. Under torchrun, a peer process lost mid-job is not the job's failure:
the run stops as an interrupt does (``distributed.PeerLost``) and ``--resume`` continues it.
"""
from __future__ import annotations

import traceback

from harness import distributed
from harness.data.cache import open_entry
from harness.errors import HarnessError, one_line
from harness.fileio import write_bytes
from harness.jobs import CHECKPOINT, METRICS, Job, JobContext, Outcome, RunRequest, failed_row, job_label, log
from harness.plugin_registry import choose_evaluators
from harness.plugin_registry import installed as installed_registry
from harness.status import Status

__all__ = [
    # what every executor uses: a job carried out in this process, and the words of its progress lines
    "Job", "JobContext", "Outcome", "RunRequest", "Status", "run_job", "log", "job_label", "outcome_words",
    "interrupted_line", "resume_command",
    # what an executor whose jobs run in other processes or on other machines needs besides: the job
    # as plain data and rebuilt there from it with the plugins and evaluators loaded there, the image
    # cache opened there (or its bytes sent), and the job's files sent back to the driver to write
    "plain_job", "rebuild_job", "installed_registry", "choose_evaluators", "open_entry", "write_bytes", "CHECKPOINT", "METRICS",
]


def run_job(job: Job, context: JobContext) -> Outcome:
    """Train ``job`` in this process on the context's images for its input size and write its
    folder; any exception but an interrupt (the images not to be had included) becomes a ``failed``
    outcome, after the job's callbacks were told (``on_run_end`` with the failed row)."""
    from harness.model_run import run_model

    if job.config.get("trial"):  # a tuning trial: validation images only, no files
        from harness.tuning.trial import run_trial

        return run_trial(job, context)
    try:
        images = context.images_for(job.config["input_size"])
        metrics = run_model(job, context, images)
        return Outcome(job, Status.OK, metrics=metrics)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one job's failure is its row's; the others go on
        if distributed.lost_peer(exc):  # not the model's failure: the run stops, the job resumes later
            raise distributed.PeerLost(f"a process of the run was lost ({one_line(exc)[:200]})") from exc
        reason = str(exc) if isinstance(exc, HarnessError) else one_line(exc)
        if job.callbacks is not None:
            job.callbacks.call("on_run_end", failed_row(job.config, reason))
        return Outcome(job, Status.FAILED, reason=reason, traceback=traceback.format_exc())


def outcome_words(outcome: Outcome) -> str:
    """"ok, test accuracy 0.8123", "pruned, validation accuracy 0.41", "failed": a progress line's end."""
    metrics = outcome.metrics
    if outcome.status != Status.OK:
        return "failed"
    if "state" in metrics:  # a tuning trial
        value = metrics.get("value")
        return f"{metrics['state']}, validation accuracy {value:.4f}" if value is not None else metrics["state"]
    return f"ok, test accuracy {metrics['accuracy']:.4f}"


def interrupted_line(job: Job, request: RunRequest) -> str:
    """What an executor says of the job a Ctrl-C or kill interrupted."""
    if job.config.get("trial"):  # a trial is not resumed: the tuning says how it continues
        return f"{job_label(job, request)} trial {job.config['trial']['number']}: interrupted"
    return (f"{job_label(job, request)}: interrupted; its last finished epoch is checkpointed. "
            f"Resume with: {resume_command(request)}")


def resume_command(request: RunRequest) -> str:
    """The command that continues an interrupted run: a tuning continues as it was started."""
    command = request.command
    return command if "--resume" in command or command.startswith("harness tune") else command + " --resume"


def plain_job(job: Job) -> dict:
    """What another process makes ``job`` again from (``rebuild_job``): its model's name, its
    config and its name, as plain data."""
    return {"model": job.spec.name, "config": job.config, "name": job.name}


def rebuild_job(registry, request: RunRequest, plain: dict, folder, weights) -> Job:
    """A job made again from ``plain_job``'s data (in another process), writing to ``folder`` with
    ``weights`` (a ``harness.weights.Source``): its spec resolved by name as the request trains it,
    its callbacks made for its config."""
    from harness.accel import settled
    from harness.callbacks import CallbackList
    from harness.runner import spec_for

    spec, config = spec_for(registry, plain["model"], request), plain["config"]
    return Job(spec, config, plain["name"], folder, weights,
               callbacks=CallbackList.make(registry, config, request.callbacks), accel=settled(request.accel, spec))
