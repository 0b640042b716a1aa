"""Some rows of a memory-mapped array, read only when a batch asks for them: a split of a dataset
bigger than memory costs its index, not a copy of its images."""
from __future__ import annotations

import numpy as np
import torch


class Rows:
    """Rows ``index`` of ``base`` (an array, usually memory-mapped), in that order. Indexing gives a
    plain array of just the rows asked for; ``np.asarray`` gives all of them."""

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base = base
        self.index = np.asarray(index, dtype=np.int64)
        self.shape = (len(self.index), *base.shape[1:])
        self.dtype = base.dtype
        self.ndim = base.ndim

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        wanted = self.index[key]
        if np.ndim(wanted) == 0:
            return self.base[int(wanted)]
        # read in file order (pages of one batch lie together), returned in the order asked for
        order = np.argsort(wanted, kind="stable")
        out = np.empty((len(wanted), *self.base.shape[1:]), self.dtype)
        out[order] = self.base[wanted[order]]
        return out

    def __array__(self, dtype=None, copy=None):
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype)

    def copy(self) -> np.ndarray:
        return self[:]

    def tensor(self) -> "TensorRows":
        return TensorRows(self)


class TensorRows:
    """``Rows`` as the trainer and the prediction loop use a uint8 tensor: ``len``, ``shape``,
    slices and index tensors give tensors; ``to(device)`` stays lazy on the CPU and copies the rows
    to another device a chunk at a time."""

    CHUNK = 1024

    def __init__(self, rows: Rows):
        self.rows = rows
        self.shape = torch.Size(rows.shape)
        self.dtype = torch.uint8
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> torch.Tensor:
        return torch.from_numpy(self.rows[key])

    def dim(self) -> int:
        return len(self.shape)

    def to(self, device, non_blocking: bool = False):
        if torch.device(device).type == "cpu":
            return self
        out = torch.empty(self.shape, dtype=self.dtype, device=device)
        for start in range(0, len(self), self.CHUNK):
            out[start : start + self.CHUNK] = self[start : start + self.CHUNK].to(device, non_blocking=non_blocking)
        return out


def as_tensor(x):
    """A split's images as a tensor: arrays (memory-mapped or not) without a copy, ``Rows`` lazily."""
    return x.tensor() if isinstance(x, Rows) else torch.from_numpy(x)
