"""One job in this process, in phases: build the model on the split data, restore its checkpoint or
initialise it, train the stages (each scored on the test set as it ends), then write its folder.
Executors call this through ``harness.executors.run_job``."""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import config as configuration
from harness import distributed
from harness.errors import HarnessError
from harness.fileio import remove_stale_temps, save_torch, write_json, write_text
from harness.jobs import (CHECKPOINT, CONFIG, HISTORY, METRICS, Job, JobContext, RunRequest, fingerprint, identity, log,
                          stage_weights)
from harness.log import warn
from harness.status import Status

INIT_IMAGES = 5000  # training images handed to a model's init_from_data (airbench whitens on 5,000)

# a stage's own entries, kept under "stages"; its test-set fields are also the run's
STAGE_BOOKKEEPING = ("name", "epochs", "best_epoch", "best_value", "monitor", "stopped_early", "train_time_s",
                     "train_images", "train_flop", "cores")

HISTORY_COLUMNS = ["stage", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s",
                   "train_time_s", "train_images", "train_flop"]


@dataclass
class Built:
    """The build phase's result: the model on its device's terms, the data split, the costs."""

    model: Any
    splits: Any
    recipe: Any
    accel: Any
    params: int
    macs_by_module: dict | None

    @property
    def macs(self):
        return self.macs_by_module[""] if self.macs_by_module else None


def run_model(job: Job, context: JobContext, images) -> dict:
    """Train ``job`` on ``images`` and write its folder: with its callbacks (the registry's
    defaults for its config when it has none) and the context's request, evaluators and dataset."""
    from harness.callbacks import CallbackList

    spec, config, folder, request = job.spec, job.config, job.folder, context.request
    callbacks = job.callbacks if job.callbacks is not None else \
        CallbackList.make(context.registry, config, request.callbacks)
    started = time.perf_counter()
    built = build(job, images, request)
    main = distributed.is_main()
    resume = restore_or_initialise(spec, config, built, folder, main)
    used = {"callbacks": callbacks.names(), "evaluators": [e.name for e in context.evaluators]}
    splits = built.splits
    if main:
        write_json(folder / CONFIG, {"command": request.command, **config, "classes": splits.classes,
                                     "image_size": int(splits.train_x.shape[-1]), "data_source": splits.source,
                                     "dataset": context.dataset, **used})
    log(f"{spec.name}: {built.params / 1e6:.2f}M parameters, input {config['input_size']}px, "
        f"train {len(splits.train_y)} / val {len(splits.val_y)} / test {len(splits.test_y)}")
    fit = train_stages(job, context, built, callbacks, resume)
    metrics = results(job, built, fit, context.dataset, callbacks=used["callbacks"], started=started)
    # training and cores carry over from the checkpoint, the wall clock does not: say so
    metrics["resumed_from"] = resume_point(built.recipe, resume)
    if main:
        write_folder(folder, spec, built, fit, metrics)
    callbacks.call("on_run_end", metrics)
    log(f"{spec.name}: done, test accuracy {metrics['accuracy']:.4f} ({metrics['epochs']} epochs, "
        f"{metrics['wall_time_s']:.0f}s)")
    return metrics


def build(job: Job, images, request: RunRequest, with_test: bool = True) -> Built:
    """Split the data, build the model (seeded), load its starting weights, apply the recipe's
    dropout and sync batch norm, and count its parameters and MACs. Without ``with_test`` the
    splits hold no test image and the test set is never read (a tuning trial)."""
    import torch

    from harness import weights
    from harness.accel import CPU
    from harness.data.splits import make_splits
    from harness.modelcheck import check_output_width, macs_by_module

    spec, config, recipe, accel = job.spec, job.config, job.recipe, job.accel or CPU
    data = configuration.data_config(config)
    splits = make_splits(images, val_size=data.val_size, train_size=data.train_size,
                         test_size=data.test_size, seed=data.split_seed, with_test=with_test)
    torch.manual_seed(config["seed"])
    model = spec.build(len(splits.classes))
    weights.load_into(model, job.weights or weights.Source("scratch"), spec)
    check_output_width(model, config["input_size"], len(splits.classes))
    if recipe.dropout is not None:
        set_dropout(model, recipe.dropout, spec.name)
    if request.sync_bn and distributed.current().active:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameter names
    params = sum(p.numel() for p in model.parameters())
    return Built(model, splits, recipe, accel, params, macs_by_module(model, config["input_size"]))


def set_dropout(model, rate: float, name: str) -> None:
    """Every dropout of the model at ``rate``: its dropout modules, and the dropout timm's models
    apply as a function of their ``drop_rate`` before the classifier. A model with neither trains
    as it is, with a warning."""
    import torch

    found = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p, found = rate, found + 1
        elif isinstance(getattr(module, "drop_rate", None), float):
            module.drop_rate, found = rate, found + 1
    if not found:
        warn(f"{name}: dropout={rate} is not applied: the model has no dropout to set")


def restore_or_initialise(spec, config: dict, built: Built, folder: Path, main: bool) -> dict | None:
    """The checkpoint an interrupted run left (checked against this job's settings), or None after
    the model's data-dependent initialisation, if it has one."""
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)  # what a killed run of this job left half written
    checkpoint = folder / CHECKPOINT
    if checkpoint.exists():
        resume = read_checkpoint(checkpoint, config)
        point = resume_point(built.recipe, resume)
        log(f"{spec.name}: resuming from stage '{point['stage']}' epoch {point['epoch']}")
        return resume
    initialise(spec, config, built)  # a resumed run loads the state this made
    return None


def resume_point(recipe, resume: dict | None) -> dict | None:
    """Where a run went on from its checkpoint: the stage's name and its last finished epoch (None
    for a run started from nothing)."""
    return None if resume is None else {"stage": recipe.stages[resume["stage_index"]].name, "epoch": resume["epoch"]}


def initialise(spec, config: dict, built: Built) -> None:
    """The model's data-dependent initialisation, if it has one."""
    import numpy as np
    import torch

    if spec.init_from_data is not None:
        from harness.data.tensors import model_input

        # a seeded sample of the whole training set: sources list images class by class, so the
        # first 5,000 would be airplanes
        splits = built.splits
        chosen = np.sort(np.random.default_rng(config["seed"]).permutation(len(splits.train_y))[:INIT_IMAGES])
        with torch.no_grad():
            spec.init_from_data(built.model, model_input(torch.from_numpy(splits.train_x[chosen]),
                                                         config["input_size"]))


def read_checkpoint(checkpoint: Path, config: dict) -> dict:
    """An interrupted run's checkpoint, or a one-line error when it is damaged or was made with other
    settings (checked before any job starts, and again by the job that resumes it)."""
    from harness.train import load_checkpoint

    try:
        resume = load_checkpoint(checkpoint)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is the user's to replace
        raise HarnessError(f"checkpoint '{checkpoint}' cannot be read ({type(exc).__name__}); "
                           "pass --overwrite to train this model again") from None
    if resume.get("fingerprint") != fingerprint(config):
        raise HarnessError(f"'{checkpoint}' was made with other settings than this command's; run the original "
                           "command with --resume, or pass --overwrite to start again")
    return resume


def train_stages(job: Job, context: JobContext, built: Built, callbacks, resume):
    """Every stage of the recipe through the trainer; each stage's best model is saved and scored on
    the test set as the stage ends (reported, never selected on)."""
    from harness.callbacks import RunInfo
    from harness.evaluate import score
    from harness.train import Trainer, Watch

    spec, config, folder, request = job.spec, job.config, job.folder, context.request
    main, splits = distributed.is_main(), built.splits

    def on_stage_end(stage, trained):
        if main:
            save_torch(stage_weights(folder, stage.name), {k: v.cpu() for k, v in trained.state_dict().items()})
        scores = score(trained, splits, job, evaluators=context.evaluators, stage=stage.name)
        log(f"{spec.name} {stage.name}: test accuracy {scores['accuracy']:.4f}, macro F1 {scores['f1']:.4f}")
        return scores

    callbacks.call("on_run_start", RunInfo(job.name, config, folder, request.out, main, request.results_dir))
    watch = Watch(callbacks=callbacks, label=spec.name, checkpoint=folder / CHECKPOINT,
                  fingerprint=fingerprint(config), on_stage_end=on_stage_end)
    return Trainer(built.model, splits, built.recipe, training_setup(job, built), watch).fit(resume)


def training_setup(job: Job, built: Built):
    """How the job's model trains beside its recipe (``harness.train.Setup``): its input size and
    seed, its device and precision, the parts a stage freezes and its compute per image."""
    from harness.compute import TrainingCost
    from harness.freezing import Parts
    from harness.train import Setup

    spec = job.spec
    return Setup(input_size=job.config["input_size"], seed=job.config["seed"], accel=built.accel,
                 parts=Parts.of(built.model, spec.head, spec.blocks), cost=TrainingCost(built.macs_by_module, spec.head))


def results(job: Job, built: Built, fit, dataset, *, callbacks: list, started: float) -> dict:
    """``metrics.json``: the final stage's test fields, every stage, costs, provenance."""
    from harness import machine, weights
    from harness.compute import time_to_accuracy
    from harness.cores import any_busy
    from harness.provenance import environment

    stages = [{**{k: v for k, v in vars(s).items() if k != "extra"}, **s.extra} for s in fit.stages]
    final, recipe, accel = stages[-1], built.recipe, built.accel
    source = job.weights or weights.Source("scratch")
    return {
        **identity(job.config),
        "status": Status.OK,
        "stage": final["name"],
        **{key: value for key, value in final.items() if key not in STAGE_BOOKKEEPING},
        "best_epoch": final["best_epoch"],
        "epochs": sum(stage["epochs"] for stage in stages),
        "stages": stages,
        "train_time_s": fit.train_time_s,
        # whether other processes took cores from any timed phase: then its seconds are no speed figure
        "busy": any_busy([phase for stage in stages for phase in (stage.get("cores"), stage.get("eval_cores"))]),
        "train_img_s": fit.train_images / fit.train_time_s if fit.train_time_s else None,
        "train_images": fit.train_images,
        "train_flop": fit.train_flop if built.macs is not None else None,
        **time_to_accuracy(fit.history),
        "wall_time_s": time.perf_counter() - started,
        "params": built.params,
        "macs": built.macs,
        "weights": source.describe(),
        "weights_source": source.as_dict(),
        "data": {"source": str(built.splits.source), "dataset": dataset, **built.splits.sizes()},
        "tta_flip": recipe.tta_flip,
        "tta_translate": recipe.tta_translate,
        "accel": {**accel.describe(), "eval_amp": accel.evaluates_in_bf16, "amp_reason": accel.amp_reason},
        "callbacks": callbacks,
        "environment": environment(),
        "machine": machine.describe(),
    }


def write_folder(folder: Path, spec, built: Built, fit, metrics: dict) -> None:
    """History, plots, then ``metrics.json`` last (a folder with one is complete); the checkpoint goes."""
    from harness.report.plots import confusion_png, curves_png

    write_text(folder / HISTORY, history_csv(fit.history))
    confusion_png(folder / "confusion.png", metrics["stages"][-1]["confusion"], built.splits.classes, spec.name)
    curves_png(folder / "curves.png", fit.history, spec.name)
    write_json(folder / METRICS, metrics)
    (folder / CHECKPOINT).unlink(missing_ok=True)  # finished: the stage .pt files hold the models


def history_csv(rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
