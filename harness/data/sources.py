"""Readers that turn a data source into ``Images``: CIFAR-10's canonical pickled batches (folder
or .tar.gz), a folder or zip of images laid out ``<split>/<class>/*``, and torchvision's download."""
from __future__ import annotations

import io
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from harness.data.images import Images
from harness.errors import HarnessError

CANONICAL_DIR = "cifar-10-batches-py"
CANONICAL_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CANONICAL_TEST = "test_batch"
CANONICAL_META = "batches.meta"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLIT_NAMES = ("train", "test")


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


# --- image folders and zips ------------------------------------------------------------------


class _Tree:
    """A read-only view of a folder or a zip: relative POSIX paths -> bytes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_dir():
            self.files = sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
            self.zip = None
        elif zipfile.is_zipfile(self.path):
            self.zip = zipfile.ZipFile(self.path)
            self.files = sorted(i.filename for i in self.zip.infolist() if not i.is_dir())
        else:
            raise HarnessError(f"{self.path}: not a folder, a zip, or a CIFAR-10 archive")

    def read(self, name: str) -> bytes:
        return self.zip.read(name) if self.zip else (self.path / name).read_bytes()


def _strip_wrapper(files: list) -> tuple[str, list]:
    """Look through single wrapping top folders (``cifar10-jpeg/train/...``); hidden files and
    stray files beside the folders (a README, a LICENSE) are ignored."""
    prefix = ""
    files = [f for f in files if not any(part.startswith((".", "__MACOSX")) for part in f.split("/"))]
    while True:
        tops = {f.split("/", 1)[0] for f in files if "/" in f}
        loose_images = [f for f in files if "/" not in f and Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if len(tops) != 1 or loose_images or next(iter(tops)) in SPLIT_NAMES:
            return prefix, files
        top = tops.pop()
        prefix += top + "/"
        files = [f[len(top) + 1 :] for f in files if f.startswith(top + "/")]


def is_split_image_tree(path: Path) -> bool:
    """A folder or zip laid out ``[wrapper/]train/<class>/*`` and ``test/<class>/*``."""
    path = Path(path)
    if not (path.is_dir() or zipfile.is_zipfile(path)):
        return False
    _, files = _strip_wrapper(_Tree(path).files)
    return {f.split("/", 1)[0] for f in files if f.count("/") >= 2} >= set(SPLIT_NAMES)


def read_split_image_tree(path: Path, size: int | None = None) -> Images:
    """Decode every image of a ``train|test/<class>/*`` tree into uint8 arrays."""
    tree = _Tree(path)
    prefix, files = _strip_wrapper(tree.files)
    by_split = {split: {} for split in SPLIT_NAMES}
    for name in files:
        parts = name.split("/")
        if len(parts) == 3 and parts[0] in by_split and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            by_split[parts[0]].setdefault(parts[1], []).append(name)
    classes = sorted(set(by_split["train"]) | set(by_split["test"]))
    if len(classes) < 2:
        raise HarnessError(f"{path}: found {len(classes)} class folder(s) under train/; need at least 2")
    for cls in classes:
        if not by_split["train"].get(cls):
            raise HarnessError(f"{path}: class folder 'train/{cls}' has no images; add images or remove it")
    skipped = []
    arrays = {}
    for split, groups in by_split.items():
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for name in groups.get(cls, []):
                image = _decode(tree.read(prefix + name), size)
                if image is None:
                    skipped.append(prefix + name)
                    continue
                xs.append(image)
                ys.append(label)
        arrays[split] = _stack(xs, ys)
    if skipped:
        shown = ", ".join(skipped[:3])
        print(f"harness: warning: skipped {len(skipped)} unreadable image(s) in {path}: {shown}", file=sys.stderr)
    return Images(classes, *arrays["train"], *arrays["test"], source=str(path))


def _decode(data: bytes, size: int | None):
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
            if size and image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except Exception:  # noqa: BLE001 - any undecodable file is skipped and counted
        return None


def _stack(xs, ys):
    if not xs:
        return np.zeros((0, 3, 1, 1), np.uint8), np.zeros(0, np.int64)
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise HarnessError(f"images have different sizes {sorted(shapes)[:3]}; set an input size to resize them")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)
