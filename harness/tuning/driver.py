"""``harness tune``: one Optuna study per model, every trial a job that the chosen executor plugin
carries out. The driver asks the study for as many trials as the executor runs side by side, hands
them over as jobs, and tells the study each outcome as the executor reports it; trials that are
pruned stop early, trials that fail are recorded with their reason, and the study goes on. What is
left behind: ``<out>/<model>/tuning/`` (``study.db``, ``trials.csv``, ``best.json``, ``space.json``),
``<out>/tuning.png`` and ``<out>/report.md``."""
from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness import config as configuration
from harness.errors import HarnessError
from harness.jobs import Job, JobContext, Outcome, RunRequest, log
from harness.run_options import RunOptions, argv_of
from harness.status import Status
from harness.tuning import budget as budgets
from harness.tuning import files, study as studies
from harness.tuning.report import write_overview
from harness.tuning.space import space_for, suggest

TUNING = "tuning"  # <out>/<model>/tuning/


@dataclass
class TuneRequest:
    """What ``harness tune`` is asked: the run-like part (models, data, profile, executor) and the
    tuning's own terms, the same for every model."""

    run: RunRequest
    trials: int
    budget: budgets.Budget
    pruner: str = "hyperband"
    parallel: int | None = None  # trials asked at once (None: as many as the executor runs side by side)
    seed: int = 0


@dataclass
class ModelStudy:
    """One model's study and everything its trials share."""

    spec: object
    source: object  # harness.weights.Source, or None
    base: dict  # the model's config under the user's --set, before the budget and a trial's settings
    space: dict
    fixed: dict  # the budget's --set pairs
    folder: Path
    study: object = None
    flop_budget: float | None = None  # a FLOP budget's cap on each trial
    pruner: dict | None = None  # harness.tuning.study.pruner_of


def tune(registry, request: TuneRequest) -> int:
    """Tune every requested model; returns the exit code (1 when a study ended with no finished trial)."""
    from harness.runner import check_writable, executor_options

    studies.require_optuna()
    if request.trials < 1:
        raise HarnessError("--trials must be at least 1")
    run = request.run
    executor = registry.executors[run.executor].spec
    options = executor_options(executor, run)
    if executor.check is not None:
        executor.check(options, run)
    check_writable(run.out)
    prepared = [model for model in (prepare(registry, request, name) for name in run.models) if model is not None]
    skipped = [name for name in run.models if name not in {m.spec.name for m in prepared}]
    if skipped:
        log(f"skipped, no ImageNet weights on this machine: {', '.join(skipped)} (--weights-dir DIR with their "
            "files, or --no-pretrained)")
    if not prepared:
        raise HarnessError("no model to tune: none of them has its pretrained weights here (--weights-dir DIR, or "
                           "--no-pretrained)")
    from harness.data.locate import find_data
    from harness.runner import _images_for, warn_if_busy

    source, dataset = find_data(registry, run.data, run.dataset, profile=run.profile, download=run.download)
    images_for = _images_for(dataset, source, run, [Job(m.spec, m.base, m.spec.name, m.folder) for m in prepared])
    width = request.parallel or (executor.slots(options) if executor.slots else 1)
    warn_if_busy()
    for model in prepared:
        images = images_for(model.base["input_size"])
        settle_budget(model, request, images)
        model.study = studies.open_study(model.folder, model.spec.name, request.seed, model.pruner)
        files.write_space(model.folder, model.spec.name, model.space, request, model.fixed,
                          started=bool(model.study.trials))
        run_study(registry, request, model, executor, JobContext(
            trial_request(run), registry, [], images_for, dataset.name, options, finished=None), width)
    write_overview(run.out)
    log(f"tuning: {run.out / 'report.md'}; train with the best settings: "
        f"{best_settings_command(run, [m.spec.name for m in prepared])}")
    return 0 if all(files.best_trial(m.study) is not None for m in prepared) else 1


def best_settings_command(run: RunRequest, models: list) -> str:
    """The ``harness run`` that trains ``models`` with their best settings on what the trials had:
    the profile, the data and the pretrained weights (the tuning's own --set pairs, such as a proxy's
    smaller training set, are left to the user)."""
    options = RunOptions(models=models, profile=run.profile, data=run.data, dataset=None if run.data else run.dataset,
                         weights_dir=run.weights_dir if run.pretrained else None, no_pretrained=not run.pretrained,
                         tuned=run.out)
    return "harness " + shlex.join(argv_of(options))


def trial_request(run: RunRequest) -> RunRequest:
    """The request every trial job carries: no evaluator, no test set, nothing resumed."""
    return dataclasses.replace(run, evaluators=[], eval_options={}, resume=False, overwrite=False, ablate=None)


def prepare(registry, request: TuneRequest, model: str) -> ModelStudy | None:
    """A model's study terms, checked before any data is read: its weights, its space without the
    keys the user pinned with --set. None for a model without weights under --all (as harness run
    skips it)."""
    from harness import weights
    from harness.runner import spec_for

    run = request.run
    spec = spec_for(registry, model, run)
    try:
        source = weights.resolve(spec, weights.weights_dir(run.weights_dir), run.pretrained)
    except weights.MissingWeights:
        if not run.skip_missing_weights:
            raise
        return None
    if source is not None:
        weights.check(spec, source)
    base = configuration.resolve(spec, run.profile, run.overrides, request.seed)
    space = {key: domain for key, domain in space_for(spec, base).items() if key not in run.overrides}
    if not space:
        raise HarnessError(f"model '{model}': every key of its search space is pinned by --set; nothing to tune")
    return ModelStudy(spec, source, base, space, {}, Path(run.out) / model / TUNING)


def settle_budget(model: ModelStudy, request: TuneRequest, images) -> None:
    """Each stage's epochs under the budget (a FLOP budget needs the training images' count)."""
    per_epoch = None
    if request.budget.flop is not None:
        per_epoch = budgets.flop_per_epoch(model.spec, model.base, train_images(model.base, images),
                                           len(images.classes))
        model.flop_budget = request.budget.flop
    epochs = budgets.stage_epochs(request.budget, model.base, per_epoch)
    model.fixed = budgets.overrides(model.base, epochs)
    model.pruner = studies.pruner_of(request.pruner, sum(epochs))  # Hyperband's largest budget: every epoch


def train_images(config: dict, images) -> int:
    from harness.data.splits import default_val_size

    data = configuration.data_config(config)
    val = data.val_size if data.val_size is not None else default_val_size(len(images.train_y), len(images.classes))
    left = len(images.train_y) - val
    return min(left, data.train_size) if data.train_size else left


def run_study(registry, request: TuneRequest, model: ModelStudy, executor, context: JobContext, width: int) -> None:
    """Ask, run and tell until the study has its trials; the files are rewritten after each batch."""
    name = model.spec.name
    done = studies.counted(model.study)
    if done >= request.trials:
        log(f"{name}: {done} trials finished earlier, nothing to do")
    while (left := request.trials - studies.counted(model.study)) > 0:
        asked = [model.study.ask() for _ in range(min(width, left))]
        jobs = [job for job in (trial_job(registry, request, model, trial) for trial in asked) if job is not None]
        running = {job.config["trial"]["number"] for job in jobs}
        context.finished = lambda outcome: told(model, outcome, running)
        try:
            executor.run(jobs, context)
        except KeyboardInterrupt:
            for number in running:
                studies.fail(model.study, number, studies.INTERRUPTED)
            files.write_study(model.folder, model.study, model.space)
            log(f"{name}: interrupted; the finished trials are kept. Continue with: {request.run.command}")
            raise
        files.write_study(model.folder, model.study, model.space)
    best = files.best_trial(model.study)
    if best is not None:
        log(f"{name}: best validation accuracy {best.value:.4f} (trial {best.number}) of "
            f"{studies.counted(model.study)} trials")


def trial_job(registry, request: TuneRequest, model: ModelStudy, trial) -> Job | None:
    """The job of one asked trial; a trial whose settings the recipe refuses is failed at once."""
    from harness.accel import settled
    from harness.callbacks import CallbackList

    run = request.run
    params = suggest(trial, model.space)
    try:
        config = configuration.resolve(model.spec, run.profile, {**run.overrides, **model.fixed, **params},
                                       request.seed)
    except HarnessError as exc:
        studies.fail(model.study, trial, str(exc))
        log(f"{model.spec.name} trial {trial.number}: failed: {exc}")
        return None
    config["weights"] = model.source.describe() if model.source else None
    config["trial"] = {"study": model.spec.name, "storage": studies.storage_url(model.folder),
                       "trial_id": trial._trial_id, "number": trial.number,
                       "pruner": model.pruner, "flop_budget": model.flop_budget}
    return Job(model.spec, config, model.spec.name, model.folder / f"trial-{trial.number}", model.source,
               callbacks=CallbackList.make(registry, config, run.callbacks), accel=settled(run.accel, model.spec))


def told(model: ModelStudy, outcome: Outcome, running: set) -> None:
    """Tell the study how a trial ended, and say it in one line."""
    from harness.executors import outcome_words

    optuna = studies.require_optuna()
    number = outcome.job.config["trial"]["number"]
    running.discard(number)
    metrics = outcome.metrics
    if outcome.status != Status.OK:
        studies.fail(model.study, number, outcome.reason)
    else:
        handle = optuna.trial.Trial(model.study, outcome.job.config["trial"]["trial_id"])
        for key in ("epochs", "train_flop", "train_time_s", "train_images", "busy", "wall_time_s", "started_at",
                    "ended_at"):
            handle.set_user_attr(key, metrics.get(key))
        if metrics["state"] == "pruned":
            model.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            model.study.tell(number, metrics["value"])
    log(f"{model.spec.name} trial {number}: {outcome_words(outcome)}"
        + (f": {outcome.reason}" if outcome.status != Status.OK else ""))
