"""The ``classification`` evaluator's numbers (scikit-learn): accuracy, macro precision / recall /
F1, per-class scores and the confusion matrix."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


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
