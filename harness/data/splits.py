"""Stratified, seeded splits: validation comes out of the training set, never the test set."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from harness.data.images import Images, Splits
from harness.data.rows import Rows
from harness.errors import HarnessError


def stratified_subset(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Indices of a stratified subset of ``size`` items (all of them, in order, when size is None)."""
    everything = np.arange(len(labels))
    if size is None or size >= len(labels):
        return everything
    kept, _ = train_test_split(everything, train_size=size, stratify=labels, random_state=seed)
    return np.sort(kept)


VAL_FRACTION, VAL_MAX = 0.1, 5000


def default_val_size(train_images: int, classes: int) -> int:
    """10% of the training images, at most 5,000, at least one per class."""
    return min(VAL_MAX, max(classes, round(VAL_FRACTION * train_images)))


# the test images a capped test set keeps: the same for every run, whatever its split
TEST_SEED = 0


def make_splits(images: Images, *, val_size: int | None, train_size=None, test_size=None, seed=0,
                with_test: bool = True) -> Splits:
    """Hold out ``val_size`` stratified training images for validation (None: ``default_val_size``),
    then cap train and test; without ``with_test``, no test image is read and the test split is empty."""
    labels = images.train_y
    if val_size is None:
        val_size = default_val_size(len(labels), len(images.classes))
    if val_size <= 0 or val_size >= len(labels):
        raise HarnessError(
            f"data.val_size={val_size} must be between 1 and the {len(labels)} training images"
        )
    if len(images.test_y) == 0:
        raise HarnessError(f"{images.source}: the dataset has no test images")
    train_idx, val_idx = train_test_split(
        np.arange(len(labels)), test_size=val_size, stratify=labels, random_state=seed
    )
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    train_idx = train_idx[stratified_subset(labels[train_idx], train_size, seed)]
    if not with_test:
        return Splits(classes=list(images.classes), train_x=_rows(images, images.train_x, train_idx),
                      train_y=labels[train_idx], val_x=_rows(images, images.train_x, val_idx), val_y=labels[val_idx],
                      test_x=np.empty((0, 3, 1, 1), np.uint8), test_y=np.empty(0, np.int64), source=images.source)
    test_idx = stratified_subset(images.test_y, test_size, TEST_SEED)
    return Splits(
        classes=list(images.classes),
        train_x=_rows(images, images.train_x, train_idx),
        train_y=labels[train_idx],
        val_x=_rows(images, images.train_x, val_idx),
        val_y=labels[val_idx],
        test_x=images.test_x if len(test_idx) == len(images.test_y) else images.test_x[test_idx],
        test_y=images.test_y[test_idx],
        source=images.source,
    )


def _rows(images: Images, x: np.ndarray, index: np.ndarray):
    """``x[index]``: copied from arrays in memory (as fast as it gets), read batch by batch from a
    memory-mapped cache (a split of a dataset bigger than memory must not copy it)."""
    return Rows(x, index) if images.entry is not None else x[index]
