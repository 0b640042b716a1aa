"""Runs models end to end: resolve each config, load the data once, train, evaluate on the test
set, write the model's files and the leaderboard. One failing model does not stop the others."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from harness import config as configuration
from harness import distributed
from harness.errors import HarnessError, one_line, unknown
from harness.fileio import WriteFailed, json_field, remove_stale_temps, save_torch, write_json, write_text
from harness.locks import LOCK

CHECKPOINT = "checkpoint.pt"
# the default accel is left out of configs, so CPU runs keep the fingerprints they always had
CPU_ACCEL = {"device": "cpu", "amp": False, "channels_last": False, "compile": False}


@dataclass
class RunRequest:
    models: list
    profile: str = "quick"
    data: str | None = None
    dataset: str | None = None
    download: bool = False
    out: Path = Path("results")
    seeds: list = field(default_factory=lambda: [0])
    overrides: dict = field(default_factory=dict)
    command: str = ""
    resume: bool = False
    overwrite: bool = False
    ablate: str | None = None
    weights_dir: Path | None = None  # pretrained weights files (default: $HARNESS_WEIGHTS_DIR)
    pretrained: bool = True  # False: transfer models train from scratch (--no-pretrained)
    skip_missing_weights: bool = False  # --all: a model without weights is skipped, not an error
    variant: str | None = None  # a name for this run's recipe variant: results go to <model>@<variant>
    accel: object = None  # harness.accel.Accel: device, mixed precision, layout, compile (default: CPU)
    sync_bn: bool = False  # several GPU processes: batch norm over the global batch
    evaluators: list = field(default_factory=list)  # --eval: evaluators beyond the default ones
    eval_options: dict = field(default_factory=dict)  # --set eval.<name>.<key>=value
    callbacks: list = field(default_factory=list)  # --callback: callbacks beyond the default ones
    executor: str = "local"  # local: one job after another in this process; ray: Ray tasks (harness.ray_executor)
    address: str | None = None  # --executor ray: an existing cluster ("auto", "ray://host:port"); None starts one
    job_cpus: float = 1  # --executor ray: CPUs (and torch threads) per job
    job_gpus: float = 0  # --executor ray: GPUs per job (fractions share a GPU)


def log(message: str) -> None:
    if distributed.is_main():  # with several processes, rank 0 speaks for all
        print(message, file=sys.stderr, flush=True)


def pick_dataset(registry, path: Path, name: str | None):
    if name:
        if name not in registry.datasets:
            raise unknown("dataset", name, registry.datasets, "see 'harness list'")
        return registry.datasets[name].spec
    specs = sorted((r.spec for r in registry.datasets.values()), key=lambda spec: spec.fallback)
    for spec in specs:
        if spec.accepts(path):
            return spec
    raise HarnessError(
        f"could not recognise the data at '{path}': expected a cifar-10-batches-py folder or .tar.gz, "
        "or a folder/zip of images laid out <class>/* or train|test/<class>/*"
    )


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"cannot write to output folder '{folder}' ({exc.strerror}); pass --out DIR") from None


@dataclass
class Job:
    """One training run: a model, a variant of its recipe, a seed, and the folder it writes."""

    spec: object
    config: dict
    name: str  # the run's folder name: model, or model@variant
    folder: Path
    weights: object = None  # harness.weights.Source
    skipped: str | None = None  # why this model cannot run (no pretrained weights)
    callbacks: object = None  # harness.callbacks.CallbackList, made for this job's config


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
            skipped = str(exc)
            log(f"{model}: skipped: {exc}")
        variants = {request.variant or "": {}}
        if request.ablate:
            if request.ablate not in configuration.ABLATIONS:
                raise unknown("ablation", request.ablate, configuration.ABLATIONS, f"choose {', '.join(configuration.ABLATIONS)}")
            variants.update(configuration.ABLATIONS[request.ablate])
        for variant, changes in variants.items():
            name = f"{model}@{variant}" if variant else model
            for seed in request.seeds:
                config = configuration.resolve(spec, request.profile, {**request.overrides, **changes}, seed)
                if changes and config == configuration.resolve(spec, request.profile, request.overrides, seed):
                    log(f"{name}: skipped, the recipe has nothing to turn off ({', '.join(changes)})")
                    break
                config["variant"] = variant or None
                if distributed.current().active:  # part of the fingerprint: --resume with the same N
                    config["world_size"] = distributed.current().size
                accel = request.accel.for_model(spec) if request.accel is not None else None
                if accel is not None and accel.describe() != CPU_ACCEL:
                    config["accel"] = accel.describe()  # part of the fingerprint: resume alike
                config["weights"] = source.describe() if source else None
                folder = request.out / name
                if len(request.seeds) > 1:
                    folder = folder / f"seed-{seed}"
                jobs.append(Job(spec, config, name, folder, source, skipped))
    return jobs


def run(registry, request: RunRequest) -> int:
    """Train and evaluate every requested model; returns the process exit code."""
    from harness import weights
    from harness.callbacks import CallbackList
    from harness.plugins import choose_evaluators
    from harness.locks import FolderLock
    from harness.provenance import git_commit

    git_commit()  # recorded now, while the checkout is the code this process loaded
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
    """Train every job planned to run (one after another), then write the reports."""
    from harness.data.locate import resolve_source

    main = distributed.is_main()
    for job, state in zip(jobs, plans):
        # recorded now: the leaderboard lists the model, with the reason; results a run with the
        # weights finished earlier stay (a --resume without --weights-dir must not erase them)
        if job.skipped and main and state != "finished":
            write_json(job.folder / "metrics.json", {**_identity(job.config), "status": "skipped",
                                                     "reason": job.skipped})
    jobs_to_train = [(job, state) for job, state in zip(jobs, plans) if not job.skipped]
    if not jobs_to_train:
        write_reports(request.out, registry)
        log(f"nothing to train; leaderboard: {request.out / 'leaderboard.md'}")
        return 0
    source = resolve_source(request.data, profile=request.profile, download=request.download)
    dataset = pick_dataset(registry, source, request.dataset)
    loaded = {}

    def images_for(size):
        """The dataset as decoded for a model input size (most datasets decode once, natively)."""
        if size not in loaded:
            images = dataset.load(source, size)
            if not loaded or images.train_x.shape[-1] != next(iter(loaded.values())).train_x.shape[-1]:
                log(f"data: {dataset.name} from {source}: {len(images.train_y)} train+val, {len(images.test_y)} "
                    f"test images of {images.train_x.shape[-1]}px, {len(images.classes)} classes")
            if not loaded and main:
                from harness.report.plots import samples_png

                augment = configuration.to_recipe(jobs_to_train[0][0].config).augment
                samples_png(request.out / "samples.png", images, augment)
            loaded[size] = images
        return loaded[size]

    runnable = []
    for job, state in jobs_to_train:
        if state == "finished":
            log(f"{job_label(job, request)}: finished earlier, skipped (--overwrite to train it again)")
        else:
            runnable.append(job)
    if request.executor == "ray":
        from harness import ray_executor

        failures = ray_executor.run_jobs(runnable, images_for, request, dataset.name)
        write_reports(request.out, registry)
    else:
        failures = run_one_by_one(registry, request, runnable, images_for, evaluators, dataset.name)
    log(f"leaderboard: {request.out / 'leaderboard.md'}, report: {request.out / 'report.md'}")
    return 1 if failures else 0


def job_label(job: Job, request: RunRequest) -> str:
    return job.name if len(request.seeds) == 1 else f"{job.name} seed {job.config['seed']}"


def run_one_by_one(registry, request: RunRequest, jobs: list, images_for, evaluators: list, dataset: str) -> int:
    """The local executor: train each job in this process, the reports rewritten after each one.
    Returns the number of jobs that failed."""
    failures = 0
    for job in jobs:
        label = job_label(job, request)
        try:
            run_model(job.spec, job.config, images_for(job.config["input_size"]), job.folder, request, job.weights,
                      callbacks=job.callbacks, evaluators=evaluators, dataset=dataset, name=job.name)
        except KeyboardInterrupt:
            resume = request.command if "--resume" in request.command else request.command + " --resume"
            log(f"{label}: interrupted; its last finished epoch is checkpointed. Resume with: {resume}")
            raise
        except WriteFailed as exc:  # a full disk, a lost permission: this job's failure, in one line
            failures += 1
            job.callbacks.call("on_run_end", record_failure(job, str(exc), traceback.format_exc(), label))
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - one model's failure is recorded, the rest go on
            failures += 1
            failed = record_failure(job, one_line(exc), traceback.format_exc(), label)
            job.callbacks.call("on_run_end", failed)
        write_reports(request.out, registry)
    if not jobs:
        write_reports(request.out, registry)
    return failures


def record_failure(job: Job, reason: str, trace: str, label: str) -> dict:
    """A failed job's row: ``metrics.json`` with the reason, ``error.log`` with the traceback."""
    log(f"{label}: failed: {reason}")
    failed = failed_row(job.config, reason)
    if distributed.is_main():
        try:
            job.folder.mkdir(parents=True, exist_ok=True)
            write_text(job.folder / "error.log", trace)
            write_json(job.folder / "metrics.json", failed)
        except (OSError, WriteFailed) as exc:  # the disk that failed the job may fail this too
            log(f"{label}: its failure could not be recorded either: {one_line(exc)}")
    return failed


def failed_row(config: dict, reason: str) -> dict:
    """What a failed job's ``metrics.json`` holds, and what callbacks' ``on_run_end`` is given."""
    return {**_identity(config), "status": "failed", "reason": reason}


def plan(folder: Path, request) -> str:
    """fresh | finished | interrupted, refusing to overwrite results silently."""
    metrics, checkpoint = folder / "metrics.json", folder / CHECKPOINT
    if request.overwrite and folder.exists():
        for entry in folder.iterdir():  # everything but this run's own lock
            if entry.name != LOCK:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return "fresh"
    finished = metrics.exists() and json_field(metrics, "status") == "ok"
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


def _identity(config: dict) -> dict:
    keys = ("model", "family", "profile", "seed", "input_size", "variant", "weights")
    return {key: config.get(key) for key in keys}


def write_reports(folder: Path, registry=None) -> None:
    if not distributed.is_main():
        return
    from harness.report import leaderboard, markdown

    remove_stale_temps(folder)
    leaderboard.write(folder, registry)
    markdown.write_report(folder, registry)


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


INIT_IMAGES = 5000  # training images handed to a model's init_from_data (airbench whitens on 5,000)


def run_model(spec, config: dict, images, folder: Path, request: RunRequest, source=None, *, callbacks=None,
              evaluators=None, dataset: str | None = None, name: str | None = None, registry=None) -> dict:
    """Train one job and write its folder. ``callbacks`` (a ``CallbackList``) and ``evaluators``
    default to the installed plugins' default ones."""
    import numpy as np
    import torch

    from harness import plugins
    from harness.accel import CPU
    from harness.callbacks import CallbackList, RunInfo
    from harness.data.splits import make_splits
    from harness.evaluate import score
    from harness.plugins import choose_evaluators
    from harness.freezing import Parts
    from harness import machine
    from harness.compute import TrainingCost, time_to_accuracy
    from harness.modelcheck import check_output_width, macs_by_module
    from harness.provenance import environment
    from harness.report.plots import confusion_png, curves_png
    from harness.train import Trainer, load_checkpoint

    registry = registry or plugins.installed()
    callbacks = callbacks if callbacks is not None else CallbackList.make(registry, config, request.callbacks)
    evaluators = evaluators if evaluators is not None else choose_evaluators(registry, request.evaluators,
                                                                             request.eval_options)
    accel = (request.accel or CPU).for_model(spec)  # --amp auto settled for this model
    started = time.perf_counter()
    recipe = configuration.to_recipe(config)
    data = configuration.data_config(config)
    splits = make_splits(images, val_size=data.val_size, train_size=data.train_size,
                         test_size=data.test_size, seed=data.split_seed)
    from harness import weights

    torch.manual_seed(config["seed"])
    model = spec.build(len(splits.classes))
    source = source or weights.Source("scratch")
    weights.load_into(model, source, spec)
    check_output_width(model, config["input_size"], len(splits.classes))
    if recipe.dropout is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.dropout._DropoutNd):
                module.p = recipe.dropout
    if request.sync_bn and distributed.current().active:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameter names
    params = sum(p.numel() for p in model.parameters())
    macs_per_module = macs_by_module(model, config["input_size"])
    macs = macs_per_module[""] if macs_per_module else None
    main = distributed.is_main()
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)  # what a killed run of this job left half written
    checkpoint = folder / CHECKPOINT
    resume = None
    if checkpoint.exists():
        try:
            resume = load_checkpoint(checkpoint)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is the user's to replace
            raise HarnessError(f"checkpoint '{checkpoint}' cannot be read ({type(exc).__name__}); "
                               "pass --overwrite to train this model again") from None
        if resume.get("fingerprint") != fingerprint(config):
            raise HarnessError(
                f"'{checkpoint}' was made with other settings than this command's; run the original "
                "command with --resume, or pass --overwrite to start again"
            )
        log(f"{spec.name}: resuming from stage '{recipe.stages[resume['stage_index']].name}' "
            f"epoch {resume['epoch']}")
    elif spec.init_from_data is not None:  # a resumed run loads the state this made
        from harness.evaluate import model_input

        # a seeded sample of the whole training set: sources list images class by class, so the
        # first 5,000 would be airplanes
        chosen = np.sort(np.random.default_rng(config["seed"]).permutation(len(splits.train_y))[:INIT_IMAGES])
        with torch.no_grad():
            spec.init_from_data(model, model_input(torch.from_numpy(splits.train_x[chosen]), config["input_size"]))
    plugins_used = {"callbacks": callbacks.names(), "evaluators": [e.name for e in evaluators]}
    if main:
        write_json(folder / "config.json", {"command": request.command, **config, "classes": splits.classes,
                                            "image_size": int(splits.train_x.shape[-1]), "data_source": splits.source,
                                            "dataset": dataset, **plugins_used})
    log(f"{spec.name}: {params / 1e6:.2f}M parameters, input {config['input_size']}px, "
        f"train {len(splits.train_y)} / val {len(splits.val_y)} / test {len(splits.test_y)}")

    def on_epoch(row):
        log(f"{spec.name} {row['stage']} epoch {row['epoch']}: loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.4f} val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
            f"lr {row['lr']:.2e} ({row['time_s']:.1f}s)")

    test_x = torch.from_numpy(splits.test_x)

    def on_stage_end(stage, trained):
        """The stage's best model: saved, then scored on the test set (reported, never selected on)."""
        if main:
            save_torch(folder / f"{stage.name}.pt", {key: value.cpu() for key, value in trained.state_dict().items()})
        scores = score(trained, test_x, splits.test_y, splits.classes, config, evaluators=evaluators, folder=folder,
                       stage=stage.name, accel=accel)
        log(f"{spec.name} {stage.name}: test accuracy {scores['accuracy']:.4f}, macro F1 {scores['f1']:.4f}")
        return scores

    callbacks.call("on_run_start", RunInfo(name or spec.name, config, folder, request.out, main))
    trainer = Trainer(model, splits, recipe, input_size=config["input_size"], seed=config["seed"],
                      parts=Parts.of(model, spec.head, spec.blocks), label=spec.name, on_epoch=on_epoch,
                      on_stage_end=on_stage_end, checkpoint=checkpoint, fingerprint=fingerprint(config), accel=accel,
                      callbacks=callbacks, cost=TrainingCost(macs_per_module, spec.head))
    fit = trainer.fit(resume)

    stages = [{**{k: v for k, v in vars(s).items() if k != "extra"}, **s.extra} for s in fit.stages]
    final = stages[-1]
    metrics = {
        **_identity(config),
        "status": "ok",
        "stage": final["name"],
        **{key: value for key, value in final.items() if key not in STAGE_BOOKKEEPING},
        "best_epoch": final["best_epoch"],
        "epochs": sum(stage["epochs"] for stage in stages),
        "stages": stages,
        "train_time_s": fit.train_time_s,
        "train_img_s": fit.train_images / fit.train_time_s if fit.train_time_s else None,
        "train_images": fit.train_images,
        "train_flop": fit.train_flop if macs is not None else None,
        **time_to_accuracy(fit.history),
        "wall_time_s": time.perf_counter() - started,
        "params": params,
        "macs": macs,
        "weights": source.describe(),
        "weights_source": source.as_dict(),
        "data": {"source": str(splits.source), "dataset": dataset, **splits.sizes()},
        "tta_flip": recipe.tta_flip,
        "tta_translate": recipe.tta_translate,
        "accel": {**accel.describe(), "eval_amp": accel.evaluates_in_bf16, "amp_reason": accel.amp_reason},
        "callbacks": plugins_used["callbacks"],
        "environment": environment(),
        "machine": machine.describe(),
    }
    if main:
        write_text(folder / "history.csv", history_csv(fit.history))
        confusion_png(folder / "confusion.png", final["confusion"], splits.classes, spec.name)
        curves_png(folder / "curves.png", fit.history, spec.name)
        write_json(folder / "metrics.json", metrics)
        checkpoint.unlink(missing_ok=True)  # finished: the stage .pt files hold the models
    callbacks.call("on_run_end", metrics)
    log(f"{spec.name}: done, test accuracy {final['accuracy']:.4f} ({metrics['epochs']} epochs, "
        f"{metrics['wall_time_s']:.0f}s)")
    return metrics


# a stage's own entries, kept under "stages"; its test-set fields are also the run's
STAGE_BOOKKEEPING = ("name", "epochs", "best_epoch", "best_value", "monitor", "stopped_early", "train_time_s",
                     "train_images", "train_flop")


HISTORY_COLUMNS = ["stage", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s",
                   "train_time_s", "train_images", "train_flop"]


def history_csv(rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
