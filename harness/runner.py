"""Runs models end to end: resolve each config, load the data once, train, evaluate on the test
set, write the model's files and the leaderboard. One failing model does not stop the others."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from harness import config as configuration
from harness.errors import HarnessError, unknown
from harness.fileio import atomic_path, write_json, write_text

CHECKPOINT = "checkpoint.pt"


@dataclass
class RunRequest:
    models: list
    profile: str = "quick"
    data: str | None = None
    dataset: str | None = None
    download: bool = False
    out: Path = Path("results")
    seed: int = 0
    overrides: dict = field(default_factory=dict)
    command: str = ""
    resume: bool = False
    overwrite: bool = False


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pick_dataset(registry, path: Path, name: str | None):
    if name:
        if name not in registry.datasets:
            raise unknown("dataset", name, registry.datasets, "see 'harness list'")
        return registry.datasets[name].spec
    for registered in registry.datasets.values():
        if registered.spec.accepts(path):
            return registered.spec
    raise HarnessError(
        f"could not recognise the data at '{path}': expected a cifar-10-batches-py folder or .tar.gz, "
        "or a folder/zip laid out train/<class>/* and test/<class>/*"
    )


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"cannot write to output folder '{folder}' ({exc.strerror}); pass --out DIR") from None


def run(registry, request: RunRequest) -> int:
    """Train and evaluate every requested model; returns the process exit code."""
    from harness.data.locate import resolve_source

    specs = [registry.models[name].spec for name in request.models]
    # every config is resolved before anything trains, so a bad --set fails at once
    configs = [configuration.resolve(spec, request.profile, request.overrides, request.seed) for spec in specs]
    check_writable(request.out)
    plans = {spec.name: plan(request.out / spec.name, request) for spec in specs}
    source = resolve_source(request.data, profile=request.profile, download=request.download)
    dataset = pick_dataset(registry, source, request.dataset)
    images = dataset.load(source)
    log(f"data: {dataset.name} from {source}: {len(images.train_y)} train+val, {len(images.test_y)} test images, "
        f"{len(images.classes)} classes")

    failures = 0
    for spec, config in zip(specs, configs):
        folder = request.out / spec.name
        if plans[spec.name] == "finished":
            log(f"{spec.name}: finished earlier, skipped (--overwrite to train it again)")
            continue
        try:
            run_model(spec, config, images, folder, request)
        except KeyboardInterrupt:
            resume = request.command if "--resume" in request.command else request.command + " --resume"
            log(f"{spec.name}: interrupted; its last finished epoch is checkpointed. Resume with: {resume}")
            raise
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - one model's failure is recorded, the rest go on
            failures += 1
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log(f"{spec.name}: failed: {reason}")
            folder.mkdir(parents=True, exist_ok=True)
            write_text(folder / "error.log", traceback.format_exc())
            write_json(folder / "metrics.json", {**_identity(config), "status": "failed", "reason": reason})
        _write_leaderboard(request.out)
    _write_leaderboard(request.out)
    log(f"leaderboard: {request.out / 'leaderboard.md'}")
    return 1 if failures else 0


def plan(folder: Path, request) -> str:
    """fresh | finished | interrupted, refusing to overwrite results silently."""
    metrics, checkpoint = folder / "metrics.json", folder / CHECKPOINT
    if request.overwrite and folder.exists():
        shutil.rmtree(folder)
        return "fresh"
    finished = metrics.exists() and _status(metrics) == "ok"
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


def _status(path: Path):
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _identity(config: dict) -> dict:
    keys = ("model", "family", "profile", "seed", "input_size")
    return {key: config[key] for key in keys}


def _write_leaderboard(folder: Path) -> None:
    from harness.report import leaderboard

    leaderboard.write(folder)


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def run_model(spec, config: dict, images, folder: Path, request: RunRequest) -> dict:
    import torch

    from harness.data.splits import make_splits
    from harness.evaluate import classification_metrics, predict_logits
    from harness.freezing import Parts
    from harness.report.plots import confusion_png, curves_png
    from harness.train import Trainer, load_checkpoint

    started = time.perf_counter()
    recipe = configuration.to_recipe(config)
    data = configuration.data_config(config)
    splits = make_splits(images, val_size=data.val_size, train_size=data.train_size,
                         test_size=data.test_size, seed=data.split_seed)
    torch.manual_seed(config["seed"])
    model = spec.build(len(splits.classes))
    check_output_width(model, config["input_size"], len(splits.classes))
    params = sum(p.numel() for p in model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / CHECKPOINT
    resume = None
    if checkpoint.exists():
        resume = load_checkpoint(checkpoint)
        if resume.get("fingerprint") != fingerprint(config):
            raise HarnessError(
                f"'{checkpoint}' was made with other settings than this command's; run the original "
                "command with --resume, or pass --overwrite to start again"
            )
        log(f"{spec.name}: resuming from stage '{recipe.stages[resume['stage_index']].name}' "
            f"epoch {resume['epoch']}")
    write_json(folder / "config.json", {"command": request.command, **config, "classes": splits.classes,
                                        "image_size": int(splits.train_x.shape[-1]), "data_source": splits.source})
    log(f"{spec.name}: {params / 1e6:.2f}M parameters, input {config['input_size']}px, "
        f"train {len(splits.train_y)} / val {len(splits.val_y)} / test {len(splits.test_y)}")

    def on_epoch(row):
        log(f"{spec.name} {row['stage']} epoch {row['epoch']}: loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.4f} val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
            f"lr {row['lr']:.2e} ({row['time_s']:.1f}s)")

    test_x = torch.from_numpy(splits.test_x)

    def on_stage_end(stage, trained):
        """The stage's best model: saved, then scored on the test set (reported, never selected on)."""
        with atomic_path(folder / f"{stage.name}.pt") as tmp:
            torch.save(trained.state_dict(), tmp)
        eval_started = time.perf_counter()
        logits = predict_logits(trained, test_x, input_size=config["input_size"],
                                batch_size=recipe.eval_batch_size, tta_flip=recipe.tta_flip)
        eval_time = time.perf_counter() - eval_started
        scores = classification_metrics(splits.test_y, logits, splits.classes)
        log(f"{spec.name} {stage.name}: test accuracy {scores['accuracy']:.4f}, macro F1 {scores['f1']:.4f}")
        return {**scores, "eval_time_s": eval_time, "eval_img_s": len(splits.test_y) / eval_time}

    trainer = Trainer(model, splits, recipe, input_size=config["input_size"], seed=config["seed"],
                      parts=Parts.of(model, spec.head, spec.blocks), label=spec.name, on_epoch=on_epoch,
                      on_stage_end=on_stage_end, checkpoint=checkpoint, fingerprint=fingerprint(config))
    fit = trainer.fit(resume)

    stages = [{**{k: v for k, v in vars(s).items() if k != "extra"}, **s.extra} for s in fit.stages]
    final = stages[-1]
    metrics = {
        **_identity(config),
        "status": "ok",
        "stage": final["name"],
        **{key: final[key] for key in ("accuracy", "precision", "recall", "f1")},
        "best_epoch": final["best_epoch"],
        "epochs": sum(stage["epochs"] for stage in stages),
        "stages": stages,
        "train_time_s": fit.train_time_s,
        "train_img_s": fit.train_images / fit.train_time_s if fit.train_time_s else None,
        "eval_time_s": final["eval_time_s"],
        "eval_img_s": final["eval_img_s"],
        "wall_time_s": time.perf_counter() - started,
        "params": params,
        "data": {"source": str(splits.source), **splits.sizes()},
        "tta_flip": recipe.tta_flip,
        **{key: final[key] for key in ("mean_confidence", "per_class", "classes", "confusion")},
        "environment": environment(),
    }
    write_text(folder / "history.csv", history_csv(fit.history))
    confusion_png(folder / "confusion.png", final["confusion"], splits.classes, spec.name)
    curves_png(folder / "curves.png", fit.history, spec.name)
    write_json(folder / "metrics.json", metrics)
    checkpoint.unlink(missing_ok=True)  # finished: the stage .pt files hold the models
    log(f"{spec.name}: done, test accuracy {final['accuracy']:.4f} ({metrics['epochs']} epochs, "
        f"{metrics['wall_time_s']:.0f}s)")
    return metrics


def check_output_width(model, input_size: int, num_classes: int) -> None:
    import torch

    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, input_size, input_size))
    model.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"the model returns shape {tuple(out.shape)[1:]} per batch, expected ({num_classes},) logits")


HISTORY_COLUMNS = ["stage", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s"]


def history_csv(rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def environment() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "allocator": os.environ.get("HARNESS_ALLOCATOR", "system"),
    }
