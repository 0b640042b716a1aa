"""CIFAR-10's canonical release: the pickled batches (folder or .tar.gz), torchvision's download
of them, the names it is found under in the data folder, and the small sample the smoke profile
trains on when no data is given. Image trees and zips are read by the harness's folder reader."""
from __future__ import annotations

import pickle
import sys
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from harness.toolkit import HarnessError, Images

CANONICAL_DIR = "cifar-10-batches-py"
CANONICAL_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CANONICAL_TEST = "test_batch"
CANONICAL_META = "batches.meta"
# looked for, in this order, in the data folder when no --data is given
DEFAULT_NAMES = ("cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10-jpeg.zip", "cifar10-jpeg")
SAMPLE = Path(__file__).parent / "sample" / "cifar10-sample.zip"  # 30 images a class, for --profile smoke


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


class BatchUnpickler(pickle.Unpickler):
    """Unpickles what the canonical batches hold and nothing else: dicts, lists, str/bytes,
    numbers and numpy arrays of numeric dtypes. Any other global (``os.system``,
    ``builtins.eval``, ...) is refused before it can be called (Python's documented restricted
    ``find_class``), so a crafted file runs no code."""

    NUMPY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
             ("numpy", "ndarray")}

    def find_class(self, module, name):
        if (module, name) in self.NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("numpy", "dtype"):
            return _numeric_dtype
        raise pickle.UnpicklingError(f"it refers to '{module}.{name}', which a CIFAR-10 batch never holds")


def _numeric_dtype(*args):
    import numpy

    dtype = numpy.dtype(*args)
    if dtype.kind not in "biufc":
        raise pickle.UnpicklingError(f"it holds an array of dtype {dtype}, not numbers")
    return dtype


def load_batch(data: bytes, where: str) -> dict:
    """One canonical batch file's dict, read with ``BatchUnpickler``; a one-line HarnessError
    naming the file for anything else."""
    import io

    try:
        # the release was pickled by Python 2: its keys load as bytes; files written by Python 3
        # tools have str keys. Both are accepted.
        entry = BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, nothing of it ran
        raise HarnessError(f"'{where}' is not a CIFAR-10 batch file: {exc}".splitlines()[0]) from None
    if not isinstance(entry, dict):
        raise HarnessError(f"'{where}' is not a CIFAR-10 batch file: it holds a {type(entry).__name__}, not a dict")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in entry.items()}


def _assemble_canonical(read, source: str) -> Images:
    def load(name):
        return load_batch(read(name), f"{source}/{name}")

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


def describe_canonical(path: Path) -> dict:
    """``harness data info`` of the canonical release: class counts per split, its one image size."""
    images = read_canonical(path)
    counts = {"train": _counts(images.classes, images.train_y), "test": _counts(images.classes, images.test_y)}
    return {"source": str(path), "classes": images.classes, "layout": CANONICAL_DIR, "counts": counts,
            "sizes": {"32x32": len(images.train_y) + len(images.test_y)}, "unreadable": 0}


def _counts(classes, labels) -> dict:
    return {cls: int((labels == i).sum()) for i, cls in enumerate(classes)}
