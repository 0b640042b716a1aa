"""A run end to end: resolve every job's config and check everything that needs no data, decide
what each folder needs (fresh, finished, interrupted), load the data once, hand the jobs to the
chosen executor plugin (``harness.executors``), write the leaderboard and the report. One failing
job does not stop the others."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness import config as configuration
from harness import distributed
from harness.accel import settled
from harness.errors import HarnessError, one_line, unknown
from harness.fileio import WriteFailed, json_field, remove_stale_temps, write_json, write_text
from harness.jobs import (CHECKPOINT, ERROR_LOG, METRICS, Job, JobContext, Outcome, RunRequest, failed_row,
                          identity, job_folder, job_label, log)
from harness.locks import LOCK
from harness.profiles import ABLATIONS
from harness.status import Status

__all__ = ["RunRequest", "Job", "run", "jobs_for", "spec_for", "write_reports"]
# the default accel is left out of configs, so CPU runs keep the fingerprints they always had
CPU_ACCEL = {"device": "cpu", "amp": False, "channels_last": False, "compile": False}


def warn_if_busy() -> None:
    """One line before anything is timed when other processes already load the cores."""
    import torch

    from harness.cores import busy_warning
    from harness.log import warn

    line = busy_warning(torch.get_num_threads())
    if line:
        warn(line)


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"cannot write to output folder '{folder}' ({exc.strerror}); pass --out DIR") from None


def spec_for(registry, name: str, request: RunRequest):
    """The model's spec as this request trains it: its from-scratch recipe under --no-pretrained."""
    spec = registry.model(name).spec
    return spec if request.pretrained else spec.from_scratch()


def jobs_for(registry, request: RunRequest) -> list:
    """Every (model, variant, seed) to train, with its resolved config (so a bad --set fails at once)."""
    from harness import weights

    jobs = []
    for model in request.models:
        spec = spec_for(registry, model, request)
        skipped, source = None, None
        try:
            source = weights.resolve(spec, weights.weights_dir(request.weights_dir), request.pretrained)
        except weights.MissingWeights as exc:
            if not request.skip_missing_weights:
                raise
            skipped = exc.short
        variants = {request.variant or "": {}}
        if request.ablate:
            if request.ablate not in ABLATIONS:
                raise unknown("ablation", request.ablate, ABLATIONS, f"choose {', '.join(ABLATIONS)}")
            variants.update(ABLATIONS[request.ablate])
        tuned = request.tuned.get(model)
        accel = settled(request.accel, spec)  # the same for every variant and seed of the model
        overrides = {**tuned["set"], **request.overrides} if tuned else request.overrides  # --set wins
        for variant, changes in variants.items():
            name = f"{model}@{variant}" if variant else model
            for seed in request.seeds:
                config = configuration.resolve(spec, request.profile, {**overrides, **changes}, seed)
                if changes and config == configuration.resolve(spec, request.profile, overrides, seed):
                    log(f"{name}: skipped, the recipe has nothing to turn off ({', '.join(changes)})")
                    break
                config["variant"] = variant or None
                if tuned:
                    config["tuned"] = {key: value for key, value in tuned.items() if key != "set"}
                if distributed.current().active:  # part of the fingerprint: --resume with the same N
                    config["world_size"] = distributed.current().size
                if request.accel is not None and accel.describe() != CPU_ACCEL:
                    config["accel"] = accel.describe()  # part of the fingerprint: resume alike
                config["weights"] = source.describe() if source else None
                folder = job_folder(request.out, name, seed, len(request.seeds) > 1)
                jobs.append(Job(spec, config, name, folder, source, skipped, accel=accel))
    return jobs


def say_skipped(jobs: list) -> None:
    """One line for every model without weights: the first run on a new machine has several."""
    names = list(dict.fromkeys(job.spec.name for job in jobs if job.skipped))
    if names:
        log(f"skipped, no ImageNet weights on this machine: {', '.join(names)} (--weights-dir DIR with their "
            "files, named in leaderboard.md, or --no-pretrained)")


def run(registry, request: RunRequest) -> int:
    """Train and evaluate every requested model; returns the process exit code."""
    from harness import weights
    from harness.callbacks import CallbackList
    from harness.plugin_registry import choose_evaluators
    from harness.locks import FolderLock
    from harness.model_run import read_checkpoint
    from harness.provenance import git_commit

    git_commit()  # recorded now, while the checkout is the code this process loaded
    executor = registry.executors[request.executor].spec
    if executor.check is not None:  # options that cannot work stop the run before anything is loaded
        executor.check(executor_options(executor, request), request)
    jobs = jobs_for(registry, request)
    # every check that needs no data comes before the data is decoded: plugin lookups, the
    # loggers' extras, the weights files (read and fitted to the architecture once per model)
    evaluators = choose_evaluators(registry, request.evaluators, request.eval_options)
    for job in jobs:
        job.callbacks = CallbackList.make(registry, job.config, request.callbacks)
    for spec, source in {(job.spec.name, job.weights.describe()): (job.spec, job.weights)
                         for job in jobs if job.weights is not None and not job.skipped}.values():
        weights.check(spec, source)

    held = []  # one lock per model folder this run writes (rank 0's)

    def decide():  # files are looked at (and --overwrite removes them) by rank 0 alone
        check_writable(request.out)
        plans = []
        for job in jobs:
            held.append(FolderLock(job.folder, request.command).acquire())
            plans.append(plan(job.folder, request))
            if plans[-1] == "interrupted" and not job.skipped:  # one that cannot resume stops the run now
                read_checkpoint(job.folder / CHECKPOINT, job.config)
        return plans

    try:
        plans = distributed.agree(decide)
        for lock, job, state in zip(held, jobs, plans):
            if state == "finished" and not job.skipped:
                lock.release()  # nothing to write there
        return train_jobs(registry, request, jobs, plans, evaluators)
    finally:
        for lock in held:
            lock.release()


def train_jobs(registry, request: RunRequest, jobs: list, plans: list, evaluators: list) -> int:
    """Hand every job planned to run to the chosen executor plugin, then write the reports."""
    from harness.data.locate import find_data

    main = distributed.is_main()
    runnable = []
    for job, state in zip(jobs, plans):
        if job.skipped:
            continue
        if state == "finished":
            log(f"{job_label(job, request)}: finished earlier, skipped (--overwrite to train it again)")
        else:
            runnable.append(job)
    if runnable:  # the data first: data that cannot be trained on stops the run before any file is written
        source, dataset = find_data(registry, request.data, request.dataset, profile=request.profile,
                                    download=request.download)
        images_for = _images_for(dataset, source, request, runnable)
        for size in dict.fromkeys(job.config["input_size"] for job in runnable):
            images_for(size)  # a data error stops the run before any job starts, whatever the executor
    say_skipped(jobs)  # after the data: data that cannot be used is the only line such a run prints
    for job, state in zip(jobs, plans):
        # recorded now: the leaderboard lists the model, with the reason; results a run with the
        # weights finished earlier stay (a --resume without --weights-dir must not erase them)
        if job.skipped and main and state != "finished":
            write_json(job.folder / METRICS, {**identity(job.config), "status": Status.SKIPPED, "reason": job.skipped})
    if not runnable:
        write_reports(request.out, registry)
        log(f"nothing to train; leaderboard: {request.out / 'leaderboard.md'}")
        return 0
    failures = []

    def finished(outcome: Outcome) -> None:
        if outcome.status != Status.OK:
            failures.append(outcome)
            record_failure(outcome.job, outcome.reason, outcome.traceback, job_label(outcome.job, request))
        write_reports(request.out, registry)

    if main:
        warn_if_busy()  # just before the first timed phase: everything that could refuse the run has
    executor = registry.executors[request.executor].spec
    context = JobContext(request, registry, evaluators, images_for, dataset.name,
                         executor_options(executor, request), finished)
    executor.run(runnable, context)
    summarise(request, write_reports(request.out, registry) if main else None)
    return 1 if failures else 0


# what the smoke profile's accuracies are for, said where a first-time user reads them
SMOKE_NOTE = ("smoke profile: a few epochs on a small sample, to show that everything runs; its accuracies "
              "say nothing about the models (--profile quick for a real comparison)")


def summarise(request: RunRequest, frame) -> None:
    """The zoo's ranks and accuracies, the files to read and, after a smoke run, what it is for."""
    from harness.report import leaderboard

    lines = leaderboard.console_lines(frame) if frame is not None and len(frame) else []
    if lines:
        log("\n".join(["", *lines, ""]))
    log(f"leaderboard: {request.out / 'leaderboard.md'}, report: {request.out / 'report.md'}")
    if request.profile == "smoke":
        log(SMOKE_NOTE)


def _images_for(dataset, source, request: RunRequest, jobs: list):
    """``images_for(size)``: the dataset as decoded for a model input size, once per size (most
    datasets decode once, natively); the first writes ``samples.png``."""
    loaded = {}

    def images_for(size):
        if size not in loaded:
            images = usable(dataset.load(source, size), source)
            if not loaded or images.train_x.shape[-1] != next(iter(loaded.values())).train_x.shape[-1]:
                log(f"data: {dataset.name} from {source}: {len(images.train_y)} train+val, {len(images.test_y)} "
                    f"test images of {images.train_x.shape[-1]}px, {len(images.classes)} classes")
            if not loaded and distributed.is_main():
                from harness.report.plots import samples_png

                samples_png(request.out / "samples.png", images, jobs[0].recipe.augment)
            loaded[size] = images
        return loaded[size]

    return images_for


def usable(images, source):
    """``images``, if a model can train and be scored on them: every class with training images, a
    test set; otherwise one line naming the data (whatever dataset plugin read it)."""
    import numpy as np

    counts = np.bincount(np.asarray(images.train_y), minlength=len(images.classes))
    if not counts.any():
        what = "no training image"
    elif not counts.all():
        what = f"no training image of class '{images.classes[int(np.argmin(counts))]}'"
    elif not len(images.test_y):
        what = "no test image"
    else:
        return images
    raise HarnessError(f"the data at '{source}' has {what}; a model needs training images of every class "
                       "and a test set ('harness data info' shows its counts)")


def executor_options(spec, request: RunRequest) -> dict:
    """The executor's options: its spec's defaults, then what the request gives."""
    return {**spec.options, **{k: v for k, v in request.executor_options.items() if k in spec.options}}


def record_failure(job: Job, reason: str, trace: str, label: str) -> None:
    """A failed job's row: ``metrics.json`` with the reason, ``error.log`` with the traceback."""
    log(f"{label}: failed: {reason}")
    if distributed.is_main():
        try:
            job.folder.mkdir(parents=True, exist_ok=True)
            write_text(job.folder / ERROR_LOG, trace)
            write_json(job.folder / METRICS, failed_row(job.config, reason))
        except (OSError, WriteFailed) as exc:  # the disk that failed the job may fail this too
            log(f"{label}: its failure could not be recorded either: {one_line(exc)}")


def plan(folder: Path, request) -> str:
    """fresh | finished | interrupted, refusing to overwrite results silently."""
    metrics, checkpoint = folder / METRICS, folder / CHECKPOINT
    if request.overwrite and folder.exists():
        for entry in folder.iterdir():  # everything but this run's own lock
            if entry.name != LOCK:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return "fresh"
    finished = metrics.exists() and json_field(metrics, "status") == Status.OK
    if not (metrics.exists() or checkpoint.exists()):
        return "fresh"
    if not request.resume:
        raise HarnessError(
            f"'{folder}' already holds results; pass --resume to skip finished models and continue "
            "interrupted ones, or --overwrite to replace them"
        )
    if finished:
        return "finished"
    return "interrupted" if checkpoint.exists() else "fresh"


def write_reports(folder: Path, registry):
    """``leaderboard.md``/``.csv`` and ``report.md`` from every result in ``folder``; the leaderboard's
    table (None on other ranks than 0)."""
    if not distributed.is_main():
        return None
    from harness.report import leaderboard, markdown

    remove_stale_temps(folder)
    ranked = leaderboard.rank(folder)  # read and ranked once for both files
    leaderboard.write(folder, registry, ranked)
    markdown.write_report(folder, registry, ranked)
    return ranked.frame


