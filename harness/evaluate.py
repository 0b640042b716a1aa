"""Predictions on held-out data and the metrics reported for them (scikit-learn)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from harness.accel import CPU


def model_input(x_uint8: torch.Tensor, input_size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float in [0, 1] at the model's input size (resized as a batch)."""
    x = x_uint8.float().div_(255)
    if x.shape[-1] != input_size or x.shape[-2] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    return x


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
def predict_logits(model, x_uint8: torch.Tensor, *, input_size: int, batch_size: int = 500, tta_flip=False,
                   tta_translate=0, accel=CPU):
    """Logits for every image (float32, on the CPU), in batches, in eval mode on ``accel``'s device,
    with the test-time augmentation ``augmented_logits`` describes."""
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(x_uint8), batch_size):
        x = accel.layout(model_input(accel.to_device(x_uint8[start : start + batch_size]), input_size))
        with accel.autocast():
            outputs.append(augmented_logits(model, x, tta_flip, tta_translate))
    model.train(was_training)
    if not outputs:
        return torch.zeros(0, 0)
    return torch.cat(outputs).cpu()


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy


def classification_metrics(labels, logits: torch.Tensor, classes: list) -> dict:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix
    (rows: true class, columns: predicted class). Probabilities are the softmax of the logits."""
    labels = np.asarray(labels)
    predicted = logits.argmax(1).numpy()
    every = list(range(len(classes)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, labels=every, average="macro", zero_division=0
    )
    per_p, per_r, per_f, support = precision_recall_fscore_support(
        labels, predicted, labels=every, average=None, zero_division=0
    )
    confidence = torch.softmax(logits, 1).max(1).values.mean().item()
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "mean_confidence": confidence,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, per_p, per_r, per_f, support)
        },
        "classes": list(classes),
        "confusion": confusion_matrix(labels, predicted, labels=every).tolist(),
    }
