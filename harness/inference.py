"""Using a saved model without training: predict classes for image files, or re-evaluate it on a
test set. A model folder holds ``config.json`` and one ``<stage>.pt`` per finished stage."""
from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError, unknown


def load_saved(registry, model_dir: Path, stage: str | None = None):
    """(model in eval mode, config) for the last finished stage (or the named one) in ``model_dir``."""
    import torch

    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise HarnessError(f"'{model_dir}' has no config.json; pass a model folder written by 'harness run'")
    config = json.loads(config_path.read_text())
    stages = [s["name"] for s in config["stages"]]
    names = [stage] if stage else list(reversed(stages))
    weights = next((Path(model_dir) / f"{n}.pt" for n in names if (Path(model_dir) / f"{n}.pt").is_file()), None)
    if weights is None:
        which = f"stage '{stage}'" if stage else "any stage"
        raise HarnessError(f"'{model_dir}' has no saved model for {which}; stages are {', '.join(stages)}")
    if config["model"] not in registry.models:
        raise unknown("model", config["model"], registry.models, "is its plugin installed? see 'harness list'")
    model = registry.models[config["model"]].spec.build(len(config["classes"]))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    return model, config, weights


def read_images(paths, size: int):
    """Image files as a uint8 (N, 3, size, size) tensor, at the size the model was trained on."""
    import numpy as np
    import torch
    from PIL import Image

    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB").resize((size, size), Image.BILINEAR)
                arrays.append(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
        except (OSError, ValueError) as exc:
            raise HarnessError(f"cannot read image '{path}' ({exc}); pass JPEG, PNG, BMP or WebP files") from None
    return torch.from_numpy(np.stack(arrays))


def predict(registry, model_dir: Path, images: list, top: int = 3) -> list:
    """For each image: its path and the ``top`` (class, probability) pairs."""
    import torch

    from harness.evaluate import predict_logits

    model, config, _ = load_saved(registry, model_dir)
    batch = read_images(images, config["image_size"])
    logits = predict_logits(model, batch, input_size=config["input_size"], tta_flip=config.get("tta_flip", False),
                            tta_translate=config.get("tta_translate", 0))
    probabilities = torch.softmax(logits, 1)
    values, indices = probabilities.topk(min(top, probabilities.shape[1]), dim=1)
    return [
        (str(path), [(config["classes"][i], float(p)) for p, i in zip(vs.tolist(), ix.tolist())])
        for path, vs, ix in zip(images, values, indices)
    ]


def evaluate(registry, model_dir: Path, data: str | None, stage: str | None = None) -> dict:
    """Test-set metrics of a saved model, on its own data source or on ``data``."""
    import torch

    from harness import config as configuration
    from harness.data.locate import resolve_source
    from harness.data.splits import make_splits
    from harness.evaluate import classification_metrics, predict_logits
    from harness.runner import pick_dataset

    model, config, weights = load_saved(registry, model_dir, stage)
    source = resolve_source(data or config["data_source"], profile=config["profile"], download=False)
    images = pick_dataset(registry, source, None).load(source)
    if list(images.classes) != list(config["classes"]):
        raise HarnessError(f"'{source}' has classes {images.classes[:4]}..., the model was trained on "
                           f"{config['classes'][:4]}...; pass data with the same classes")
    settings = configuration.data_config(config)
    splits = make_splits(images, val_size=settings.val_size, train_size=settings.train_size,
                         test_size=settings.test_size, seed=settings.split_seed)
    logits = predict_logits(model, torch.from_numpy(splits.test_x), input_size=config["input_size"],
                            batch_size=config["eval_batch_size"], tta_flip=config["tta_flip"],
                            tta_translate=config.get("tta_translate", 0))
    return {"model": config["model"], "weights": str(weights), "data": str(source),
            **classification_metrics(splits.test_y, logits, splits.classes)}
