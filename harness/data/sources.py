"""CIFAR-10's canonical release: the pickled batches (folder or .tar.gz), and torchvision's
download of them. Image folders and zips are read by ``harness.data.folders``."""
from __future__ import annotations

import pickle
import sys
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from harness.data.images import Images
from harness.errors import HarnessError

CANONICAL_DIR = "cifar-10-batches-py"
CANONICAL_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CANONICAL_TEST = "test_batch"
CANONICAL_META = "batches.meta"


# --- canonical CIFAR-10 (the "python version" pickled batches) -------------------------------


def is_canonical(path: Path) -> bool:
    """A ``cifar-10-batches-py`` folder, a folder holding one, or the ``.tar.gz`` release."""
    path = Path(path)
    if path.is_file():
        return path.name.endswith((".tar.gz", ".tgz")) and tarfile.is_tarfile(path)
    return (path / CANONICAL_META).is_file() or (path / CANONICAL_DIR / CANONICAL_META).is_file()


def read_canonical(path: Path) -> Images:
    path = Path(path)
    if path.is_file():
        with tarfile.open(path) as tar:
            members = {PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name):
                if name not in members:
                    raise HarnessError(f"{path}: '{name}' is missing from the archive")
                return tar.extractfile(members[name]).read()

            return _assemble_canonical(read, str(path))
    folder = path if (path / CANONICAL_META).is_file() else path / CANONICAL_DIR

    def read(name):
        if not (folder / name).is_file():
            raise HarnessError(f"{folder}: '{name}' is missing; expected the cifar-10-batches-py files")
        return (folder / name).read_bytes()

    return _assemble_canonical(read, str(folder))


def _assemble_canonical(read, source: str) -> Images:
    def load(name):
        # the release was pickled by Python 2: its keys load as bytes; files written by Python 3
        # tools have str keys. Both are accepted.
        entry = pickle.loads(read(name), encoding="bytes")
        return {key.decode() if isinstance(key, bytes) else key: value for key, value in entry.items()}

    def batch(name):
        entry = load(name)
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(entry["labels"], dtype=np.int64)

    classes = [name.decode() if isinstance(name, bytes) else str(name) for name in load(CANONICAL_META)["label_names"]]
    parts = [batch(name) for name in CANONICAL_TRAIN]
    test_x, test_y = batch(CANONICAL_TEST)
    return Images(
        classes=classes,
        train_x=np.concatenate([x for x, _ in parts]),
        train_y=np.concatenate([y for _, y in parts]),
        test_x=test_x,
        test_y=test_y,
        source=source,
    )


def download_canonical(root: Path) -> Path:
    """torchvision's download of the canonical release into ``root``; returns the batches folder."""
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    print(f"harness: downloading CIFAR-10 into {root} (about 170 MB)", file=sys.stderr)
    CIFAR10(root=str(root), train=True, download=True)
    return root / CANONICAL_DIR
