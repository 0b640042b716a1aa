"""Predictions on held-out data, and the one function that scores a trained model on a test split
for ``run`` and ``evaluate`` alike: one batched prediction pass, then every chosen evaluator plugin
(``classification`` always first) on those logits."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness import distributed
from harness.accel import CPU
from harness.errors import HarnessError, one_line
from harness.log import warn
from harness.data.tensors import model_input
from harness.predictions import predictions_name, write_predictions


def augmented_logits(model, x: torch.Tensor, flip: bool = False, translate: int = 0) -> torch.Tensor:
    """Test-time augmentation (``Recipe.tta_flip`` / ``tta_translate``): the mean logits of each
    image and its mirror; with ``translate``, half of that plus a quarter each for the image moved
    that many pixels up-left and down-right (reflected edges), each with its mirror too."""

    def with_mirror(images):
        logits = model(images).float()
        return (logits + model(images.flip(-1)).float()) / 2 if flip else logits

    logits = with_mirror(x)
    if translate:
        height, width = x.shape[-2:]
        padded = F.pad(x, (translate,) * 4, mode="reflect")
        up_left, down_right = padded[..., :height, :width], padded[..., 2 * translate :, 2 * translate :]
        logits = logits / 2 + (with_mirror(up_left) + with_mirror(down_right)) / 4
    return logits


@torch.inference_mode()
def predict_logits(model, x_uint8: torch.Tensor, *, input_size: int, batch_size: int = 500, tta=(False, 0),
                   accel=CPU):
    """Logits for every image (float32, on the CPU), in batches, in eval mode on ``accel``'s device,
    with the test-time augmentation ``tta``: ``augmented_logits``'s (flip, translate)."""
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(x_uint8), batch_size):
        x = accel.layout(model_input(accel.to_device(x_uint8[start : start + batch_size]), input_size,
                                     accel.channels_last))
        with accel.autocast("eval"):
            outputs.append(augmented_logits(model, x, *tta))
    model.train(was_training)
    if not outputs:
        return torch.zeros(0, 0)
    return torch.cat(outputs).cpu()


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy


@dataclass(kw_only=True)  # many fields: named, never by position
class EvalContext:
    """What ``EvaluatorSpec.evaluate(ctx)`` gets; see ``harness.specs.EvaluatorSpec``."""

    model: Any
    predict: Callable[[torch.Tensor], torch.Tensor]
    test_x: torch.Tensor
    test_y: np.ndarray
    classes: list
    input_size: int
    logits: torch.Tensor
    folder: Path
    stage: str
    config: dict
    recipe: Any  # harness.specs.Recipe: the run's, typed
    options: dict
    main: bool
    accel: Any
    batch_size: int
    # the training split's uint8 images (rows read on demand): for an evaluator that must fit
    # something on data other than the test set, such as int8 ranges; None where not given
    train_x: Any = None


def predictor(model, recipe, input_size: int, accel=CPU) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict(x_uint8) -> logits`` as a run scores: at ``input_size``, with the recipe's
    evaluation batch size and test-time augmentation, on ``accel`` (shared across data-parallel
    processes)."""

    def predict(x_uint8):
        return distributed.sharded(lambda part: predict_logits(
            model, part, input_size=input_size, batch_size=recipe.eval_batch_size,
            tta=(recipe.tta_flip, recipe.tta_translate), accel=accel), x_uint8)

    return predict


def split_fingerprint(test_x, test_y) -> str:
    """A hash of a test split's labels and pixels: two results are compared image by image only
    when theirs match (same images, same order)."""
    digest = hashlib.sha256()
    labels = np.ascontiguousarray(np.asarray(test_y, dtype=np.int64))
    pixels = test_x.numpy() if isinstance(test_x, torch.Tensor) else np.asarray(test_x)
    digest.update(str((labels.shape, pixels.shape, str(pixels.dtype))).encode())
    digest.update(memoryview(labels).cast("B"))
    digest.update(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    return "sha256:" + digest.hexdigest()


def score(model, splits, job, *, evaluators: list, stage: str, keep_predictions: bool = True) -> dict:
    """A trained model's results on the test images of ``splits`` (``job``: its config, recipe,
    folder and device): the plain pass's logits (with the recipe's test-time augmentation), then
    each evaluator's fields. An evaluator that raises is reported in one line naming it and its
    plugin; its fields stay empty and the others run."""
    from harness.cores import Meter

    config, recipe, folder, accel = job.config, job.recipe, job.folder, job.accel or CPU
    test_x, test_y = torch.from_numpy(splits.test_x), splits.test_y
    predict = predictor(model, recipe, config["input_size"], accel)

    model.eval()
    with Meter() as meter:
        started = time.perf_counter()
        logits = predict(test_x)
        eval_time = time.perf_counter() - started
    fields = {"eval_time_s": eval_time, "eval_img_s": len(test_y) / eval_time if eval_time else None,
              "eval_cores": meter.result, "test_fingerprint": split_fingerprint(test_x, test_y)}
    if keep_predictions and distributed.is_main():  # beside the stage's weights: its own test set only
        write_predictions(Path(folder) / predictions_name(stage), test_y, logits.argmax(1).numpy(),
                          torch.softmax(logits.float(), 1).numpy())
    ran, failed = {}, {}
    for evaluator in evaluators:
        ctx = EvalContext(model=model, predict=predict, test_x=test_x, test_y=np.asarray(test_y),
                          classes=list(splits.classes), input_size=config["input_size"], logits=logits,
                          folder=Path(folder), stage=stage, config=config, recipe=recipe, options=evaluator.options,
                          main=distributed.is_main(), accel=accel, batch_size=recipe.eval_batch_size,
                          train_x=splits.train_x)
        try:
            out = evaluator.spec.evaluate(ctx)
            if not isinstance(out, dict):
                raise TypeError(f"evaluate() returned {type(out).__name__}, not a dict")
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is that plugin's
            reason = one_line(exc)
            warn(f"evaluator '{evaluator.name}' (plugin '{evaluator.plugin}') failed: {reason}")
            failed[evaluator.name] = reason
            continue
        fields.update(out)
        ran[evaluator.name] = {"fields": list(out), "options": evaluator.options}
        if evaluator.spec.columns:
            ran[evaluator.name]["columns"] = [column.field for column in evaluator.spec.columns]
    fields["evaluators"] = ran
    if failed:
        fields["evaluator_errors"] = failed
    return fields
