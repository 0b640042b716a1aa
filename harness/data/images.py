"""The in-memory form of a dataset: uint8 arrays in (N, 3, H, W) layout, labels as int64."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def in_memory(name: str, shape: tuple, dtype) -> np.ndarray:
    """The allocator of arrays held in memory (a decoder's default; the cache's maps files)."""
    return np.empty(shape, dtype)


@dataclass
class Images:
    """A whole dataset as loaded from its source, before any split is made."""

    classes: list
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray  # may be empty when the source has no test split
    test_y: np.ndarray
    source: str = ""
    entry: str | None = None  # the cache folder the arrays are memory-mapped from, if they are

    def __post_init__(self):
        # one memory layout whatever the source: a different layout picks other conv kernels,
        # whose results differ in the last bits, and runs must be bit-for-bit reproducible
        self.train_x = np.ascontiguousarray(self.train_x)
        self.test_x = np.ascontiguousarray(self.test_x)
        for x, y in ((self.train_x, self.train_y), (self.test_x, self.test_y)):
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"images must be uint8 (N, 3, H, W), got {x.dtype} {x.shape}")
            if len(x) != len(y):
                raise ValueError(f"{len(x)} images but {len(y)} labels")


@dataclass
class Splits:
    """What training and evaluation see: train and val come from the source's training set."""

    classes: list
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str = ""

    def sizes(self) -> dict:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}
