"""A scored stage's test predictions, kept beside its weights as ``predictions-<stage>.npz``: every
test image's label, predicted class and class probabilities (float16), in test-set order. Paired
comparisons between models are computed from these files (``harness.report.compare``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.fileio import atomic_path


def predictions_name(stage: str) -> str:
    return f"predictions-{stage}.npz"


def write_predictions(target: Path, labels, predicted, probabilities) -> None:
    """Written atomically: a reader sees the old file or the new one, never half of one."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, label=np.asarray(labels, dtype=np.int64),
                            pred=np.asarray(predicted, dtype=np.int64),
                            prob=np.asarray(probabilities).astype(np.float16))


def read_predictions(path: Path) -> dict:
    with np.load(path) as data:
        return {key: data[key] for key in ("label", "pred", "prob")}
