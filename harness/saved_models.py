"""Using a saved model without training: predict classes for image files, or score it on a test
split. A model folder holds ``config.json`` and one ``<stage>.pt`` per finished stage.

Both take the run's own data path: the dataset recorded in ``config.json`` (unless ``--data`` /
``--dataset`` say otherwise), decoded at the same size, the same split, and the run's scoring
function (``harness.evaluate.score``) with its test-time augmentation; images given to
``predict`` are decoded and resized as the training images were."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, unknown
from harness.fileio import write_json


def load_saved(registry, model_dir: Path, stage: str | None = None):
    """(model in eval mode, the run as a job, weights file) for the last finished stage (or the
    named one)."""
    import torch

    from harness.jobs import Job

    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise HarnessError(f"'{model_dir}' has no config.json; pass a model folder written by 'harness run'")
    config = json.loads(config_path.read_text())
    stages = [s["name"] for s in config["stages"]]
    if stage and stage not in stages:
        raise unknown("stage", stage, stages, f"of '{model_dir}'; its stages: {', '.join(stages)}")
    names = [stage] if stage else list(reversed(stages))
    weights = next((Path(model_dir) / f"{n}.pt" for n in names if (Path(model_dir) / f"{n}.pt").is_file()), None)
    if weights is None:
        which = f"stage '{stage}'" if stage else "any stage"
        raise HarnessError(f"'{model_dir}' has no saved model for {which}; stages are {', '.join(stages)}")
    job = Job(registry.model(config["model"]).spec, config, Path(model_dir).name, Path(model_dir))
    model = job.spec.build(len(config["classes"]))
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is the user's to replace
        raise HarnessError(f"'{weights}' cannot be loaded into {config['model']} ({type(exc).__name__}); "
                           "train it again with 'harness run ... --overwrite'") from None
    model.eval()
    return model, job, weights


def read_images(paths, size: int):
    """Image files as a uint8 (N, 3, size, size) tensor, decoded and resized exactly as the
    image-folder datasets decode training images (``harness.data.folders.decode``)."""
    import numpy as np
    import torch

    from harness.data.folders import decode

    arrays = []
    for path in paths:
        try:
            image = decode(Path(path).read_bytes(), size)
        except OSError as exc:
            raise HarnessError(f"cannot read image '{path}' ({exc.strerror})") from None
        if image is None:
            raise HarnessError(f"cannot read image '{path}'; pass JPEG, PNG, BMP or WebP files")
        arrays.append(image)
    return torch.from_numpy(np.stack(arrays))


def predict(registry, model_dir: Path, images: list, top: int = 3, accel=None) -> list:
    """For each image: its path and the ``top`` (class, probability) pairs."""
    from harness.accel import settled
    from harness.evaluate import predictor

    model, job, _ = load_saved(registry, model_dir)
    accel = settled(accel, job.spec)  # --amp auto, as the run chose
    batch = read_images(images, job.config["image_size"])  # the size the training images had
    # the run's own scoring path
    logits = predictor(accel.place(model), job.recipe, job.config["input_size"], accel)(batch)
    return top_classes(images, logits, job.config["classes"], top)


def top_classes(images: list, logits, classes: list, top: int) -> list:
    """For each image: its path and the ``top`` (class, probability) pairs of its logits."""
    import torch

    probabilities = torch.softmax(torch.as_tensor(logits).float(), 1)
    values, indices = probabilities.topk(min(top, probabilities.shape[1]), dim=1)
    return [
        (str(path), [(classes[i], float(p)) for p, i in zip(vs.tolist(), ix.tolist())])
        for path, vs, ix in zip(images, values, indices)
    ]


def export(registry, model_dir: Path, stage: str | None, int8: bool, out: Path | None) -> tuple:
    """A saved model as an ONNX file with its preprocessing in the metadata (int8: calibrated on the
    run's own training images, the same draw as ``--eval deploy``), and a one-line check that ONNX
    Runtime loads it and maps a batch to one logit per class."""
    import torch

    from harness import deployment

    deployment.require_onnx()
    model, job, weights = load_saved(registry, model_dir, stage)
    config = job.config
    name = f"model-{weights.stem}" + (".int8" if int8 else "")
    target = out or Path(model_dir) / f"{name}.onnx"
    mean, std = deployment.model_normalisation(model)
    meta = deployment.onnx_metadata(config, config["classes"], mean, std)
    fp32 = target if not int8 else target.with_name(f".{target.name}.fp32.onnx")
    deployment.export_onnx(model, fp32, config["input_size"], meta)
    try:
        if int8:
            splits, _ = _splits_of(registry, config, None, None)
            images = _deploy_option(model_dir, "calibration_images", deployment.CALIBRATION_IMAGES)
            deployment.quantize_int8(fp32, target, deployment.calibration_sample(splits.train_x, config["input_size"],
                                                                                 int(images)))
    finally:
        if int8:
            fp32.unlink(missing_ok=True)
    size = config["input_size"]
    sess = deployment.onnx_session(target, torch.get_num_threads())
    logits = deployment.onnx_logits(sess, torch.rand(2, 3, size, size).numpy())
    if logits.shape != (2, len(config["classes"])):
        raise HarnessError(f"'{target}' gives logits of shape {logits.shape}, not (2, {len(config['classes'])})")
    kind = "int8" if int8 else "float32"
    return target, (f"ONNX Runtime loads it ({kind}): N x 3 x {size} x {size} floats in [0, 1] -> {len(config['classes'])} "
                    "logits; the input size, normalisation and class names are in its metadata")


def _deploy_option(model_dir: Path, name: str, default):
    """An option the run's deploy evaluator used (so that an export quantizes as the run did)."""
    try:
        metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
        return metrics["evaluators"]["deploy"]["options"].get(name, default)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return default


def predict_onnx(path: Path, images: list, top: int = 3) -> list:
    """The top classes of image files by an exported file, read and resized as the harness reads
    training images, through ONNX Runtime."""
    import torch

    from harness import deployment

    deployment.require_onnx()
    if not Path(path).is_file():
        raise HarnessError(f"'{path}' does not exist; write one with 'harness export --model-dir DIR'")
    meta = deployment.read_onnx_metadata(path)
    x = deployment.onnx_inputs(read_images(images, meta["input_size"]), meta["input_size"])
    logits = deployment.onnx_logits(deployment.onnx_session(path, torch.get_num_threads()), x)
    return top_classes(images, logits, meta["classes"], top)


def _splits_of(registry, config: dict, data: str | None, dataset) -> tuple:
    """(the run's data split as the run made it, or ``data``'s split the same way; its source)."""
    from harness import config as configuration
    from harness.data.locate import checked
    from harness.data.splits import make_splits

    source = checked(data or config["data_source"])
    images = dataset_of(registry, config, source, dataset).load(source, config["input_size"])
    if list(images.classes) != list(config["classes"]):
        raise HarnessError(f"'{source}' has classes {images.classes[:4]}..., the model was trained on "
                           f"{config['classes'][:4]}...; pass data with the same classes")
    settings = configuration.data_config(config)
    splits = make_splits(images, val_size=settings.val_size, train_size=settings.train_size,
                         test_size=settings.test_size, seed=settings.split_seed)
    return splits, source


def dataset_of(registry, config: dict, source: Path, name: str | None):
    """The dataset plugin to read ``source`` with: ``name``, else the one the run used, else detected."""
    from harness.data.locate import pick_dataset

    name = name or (config.get("dataset") if config.get("dataset") in registry.datasets else None)
    return pick_dataset(registry, source, name)


@dataclass(frozen=True)
class Evaluation:
    """What ``harness evaluate`` asks: a saved model (its folder; the stage, else the last
    finished), the data it is scored on (the run's own unless ``data`` / ``dataset`` say
    otherwise), the evaluators beside the defaults and their options, and where to compute
    (``None``: the CPU, with ``--amp auto``'s choice for the model)."""

    model_dir: Path
    stage: str | None = None
    data: str | None = None
    dataset: str | None = None
    evaluators: tuple = ()
    eval_options: dict | None = None
    accel: Any = None


def evaluate(registry, request: Evaluation) -> dict:
    """Test-set results of a saved model, with the default evaluators and the request's. On its
    own data the chosen evaluators' fields are added to the model's ``metrics.json`` (and its
    results folder's leaderboard and report are rebuilt)."""
    from harness.accel import settled
    from harness.evaluate import score
    from harness.plugin_registry import choose_evaluators

    chosen = choose_evaluators(registry, request.evaluators, request.eval_options)
    model, job, weights = load_saved(registry, request.model_dir, request.stage)
    config = job.config
    job = replace(job, accel=settled(request.accel, job.spec))  # --amp auto, as the run chose
    stage_name = weights.stem
    splits, source = _splits_of(registry, config, request.data, request.dataset)
    fields = score(job.accel.place(model), splits, job, evaluators=chosen, stage=stage_name,
                   keep_predictions=request.data is None)
    if request.data is None:
        add_to_results(Path(request.model_dir), stage_name, fields, registry)
    return {"model": config["model"], "stage": stage_name, "weights": str(weights), "data": str(source), **fields}


def add_to_results(model_dir: Path, stage: str, fields: dict, registry) -> None:
    """Put the evaluators' fields into ``metrics.json`` (the stage's entry, and the run's own
    fields when it is the last stage), keeping what earlier evaluations added."""
    path = model_dir / "metrics.json"
    if not path.is_file():
        return
    metrics = json.loads(path.read_text())
    added = {key: value for key, value in fields.items()
             if key not in ("evaluators", "evaluator_errors", "eval_time_s", "eval_img_s")
             and key not in (fields.get("evaluators", {}).get("classification", {}).get("fields") or [])}
    ran = {name: entry for name, entry in fields.get("evaluators", {}).items() if name != "classification"}
    for entry in metrics.get("stages") or []:
        if entry.get("name") == stage:
            entry.update(added)
            entry["evaluators"] = {**(entry.get("evaluators") or {}), **ran}
    if metrics.get("stage") == stage:
        metrics.update(added)
        metrics["evaluators"] = {**(metrics.get("evaluators") or {}), **ran}
    write_json(path, metrics)
    results = model_dir.parent.parent if model_dir.name.startswith("seed-") else model_dir.parent
    if (results / "leaderboard.md").is_file():
        from harness.runner import write_reports

        write_reports(results, registry)
