"""Image folders and zips: ``[wrapper/]train|test/<class>/*`` or ``[wrapper/]<class>/*``.

Class names are the folder names, sorted. A single wrapping top folder is looked through; hidden
files and stray files beside the folders (a README, a LICENSE) are ignored. JPEG, PNG, BMP and
WebP are read; every mode is converted to RGB (transparency onto white); unreadable, empty,
truncated or oversized files are skipped and counted in one warning.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from harness.data.images import Images, in_memory
from harness.errors import HarnessError
from harness.log import warn

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLIT_NAMES = ("train", "test")
TEST_FRACTION = 0.2  # of each class, when the folder has no test split of its own
MAX_PIXELS = 100_000_000  # larger images are skipped rather than decoded


class Tree:
    """A read-only view of a folder or a zip: relative POSIX file paths -> bytes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_dir():
            entries = [p for p in self.path.rglob("*")]
            self.files = sorted(p.relative_to(self.path).as_posix() for p in entries if p.is_file())
            self.dirs = {p.relative_to(self.path).as_posix() for p in entries if p.is_dir()}
            self.zip = None
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            try:
                self.zip = zipfile.ZipFile(self.path)
                infos = self.zip.infolist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise HarnessError(f"'{self.path}' is a damaged zip ({exc}); download or zip it again") from None
            self.files = sorted(i.filename for i in infos if not i.is_dir())
            self.dirs = {i.filename.rstrip("/") for i in infos if i.is_dir()}
            self.dirs |= {f.rsplit("/", 1)[0] for f in self.files if "/" in f}
        else:
            raise HarnessError(f"'{self.path}' is not a folder or a zip of images")

    def read(self, name: str) -> bytes:
        return self.zip.read(name) if self.zip else (self.path / name).read_bytes()


@dataclass
class Layout:
    """Where the images of a tree are: (split, class) -> file names, and the classes found."""

    prefix: str
    classes: list
    files: dict  # (split, class) -> [relative names]; split is "train"/"test", or "all"
    split: bool  # True when the tree has its own train/test folders


def _visible(name: str) -> bool:
    return not any(part.startswith((".", "__MACOSX")) for part in name.split("/"))


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def layout(path: Path, tree: Tree | None = None) -> Layout:
    """Find the wrapper, the layout and the classes of a tree, or a one-line HarnessError."""
    tree = tree or Tree(path)
    files = [f for f in tree.files if _visible(f)]
    dirs = {d for d in tree.dirs if _visible(d)}
    prefix = ""
    while True:  # look through single wrapping folders
        tops = {f.split("/", 1)[0] for f in files if "/" in f} | {d.split("/", 1)[0] for d in dirs}
        loose_images = [f for f in files if "/" not in f and _is_image(f)]
        if len(tops) != 1 or loose_images or next(iter(tops)) in SPLIT_NAMES:
            break
        top = tops.pop()
        if any(f.startswith(top + "/") and f.count("/") == 1 and _is_image(f) for f in files):
            break  # a folder holding images directly is a class, not a wrapper
        prefix += top + "/"
        files = [f[len(top) + 1 :] for f in files if f.startswith(top + "/")]
        dirs = {d[len(top) + 1 :] for d in dirs if d.startswith(top + "/")}
    tops = {f.split("/", 1)[0] for f in files if "/" in f} | {d.split("/", 1)[0] for d in dirs if d}
    split = "train" in tops
    groups = SPLIT_NAMES if split else ("all",)
    found = {}
    for group in groups:
        base = f"{group}/" if split else ""
        folders = sorted({d[len(base) :].split("/", 1)[0] for d in dirs if d.startswith(base) and d != group} - {""})
        if not split:
            folders = sorted(f for f in folders if "/" not in f)
        for cls in folders:
            found[(group, cls)] = sorted(
                f for f in files if f.startswith(f"{base}{cls}/") and _is_image(f)
            )
    train_group = "train" if split else "all"
    classes = sorted(cls for group, cls in found if group == train_group)
    if len(classes) < 2:
        where = f"{path}/{prefix}train" if split else f"{path}/{prefix}".rstrip("/")
        raise HarnessError(f"'{where}' has {len(classes)} class folder(s); a dataset needs at least 2 "
                           "(one folder of images per class)")
    for cls in classes:
        if not found[(train_group, cls)]:
            raise HarnessError(f"class folder '{prefix}{'train/' if split else ''}{cls}' in '{path}' has no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove the folder")
    extra_test = sorted(cls for group, cls in found if group == "test" and cls not in classes)
    if extra_test:
        raise HarnessError(f"'{path}': test class '{extra_test[0]}' has no training folder; the classes must match")
    return Layout(prefix, classes, found, split)


def is_split_tree(path: Path) -> bool:
    """Whether ``path`` is a folder or zip with ``train/`` and ``test/`` class folders."""
    try:
        found = layout(path)
    except HarnessError:
        return False
    return found.split and any(found.files.get(("test", c)) for c in found.classes)


def decode(data: bytes, size: int | None):
    """RGB uint8 (3, H, W) at ``size`` x ``size`` (when given), or None for a file that cannot be read."""
    if not data:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None
                if size and image.format == "JPEG":
                    image.draft("RGB", (size, size))  # decode big JPEGs at a reduced scale: much faster
                image = _to_rgb(image)
                if size and image.size != (size, size):
                    image = image.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
                return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except Exception:  # noqa: BLE001 - any file PIL cannot decode is skipped and counted
        return None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


DECODE_CHUNK = 256  # images one worker decodes before it takes the next chunk


def read_tree(path: Path, size: int | None, *, seed: int = 0, allocate=in_memory) -> Images:
    """Decode every image of a tree into uint8 arrays that ``allocate(name, shape, dtype)`` gives
    (plain arrays by default; the cache's memory-mapped files when it decodes), on every core, so
    that decoding holds no more than the images being decoded; without a test folder, a stratified
    ``TEST_FRACTION`` of each class (seeded) becomes the test set."""
    tree = Tree(path)
    found = layout(path, tree)
    skipped = []
    arrays = {}
    for group in (SPLIT_NAMES if found.split else ("all",)):
        names, labels = [], []
        for label, cls in enumerate(found.classes):
            for name in found.files.get((group, cls), []):
                names.append(found.prefix + name)
                labels.append(label)
        arrays[group] = _decode_all(tree, names, np.asarray(labels, dtype=np.int64), size,
                                    partial(allocate, f"{group}_x"), skipped)
    _check_each_class_read(path, found, arrays, skipped)
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warn(f"skipped {len(skipped)} unreadable image file(s) in {path}: {shown}")
    if found.split:
        return Images(found.classes, *arrays["train"], *arrays["test"], source=str(path))
    x, y = arrays["all"]
    test = _stratified_fraction(y, TEST_FRACTION, seed)
    train = np.setdiff1d(np.arange(len(y)), test)
    return Images(found.classes, _gather(x, train, allocate, "train_x"), y[train],
                  _gather(x, test, allocate, "test_x"), y[test], source=str(path))


def _check_each_class_read(path: Path, found, arrays: dict, skipped: list) -> None:
    """Stop before anything trains when a class (or the whole tree) has no image that decodes; the
    folder is named, so the user knows where to look."""
    group = "train" if found.split else "all"
    counts = np.bincount(arrays[group][1], minlength=len(found.classes))
    example = f" (e.g. {skipped[0]})" if skipped else ""
    if not counts.any():
        raise HarnessError(f"no readable image in '{path}': {len(skipped)} file(s) could not be decoded{example}")
    empty = [cls for cls, n in zip(found.classes, counts) if n == 0]
    if empty:
        where = f"{found.prefix}{'train/' if found.split else ''}{empty[0]}"
        others = f" ({len(empty)} classes have none)" if len(empty) > 1 else ""
        raise HarnessError(f"class folder '{where}' in '{path}' has no readable image{others}: every class needs "
                           f"training images")


def _decode_all(tree: Tree, names: list, labels: np.ndarray, size: int | None, allocate, skipped: list):
    """``names`` decoded into one (N, 3, H, W) array that ``allocate(shape, dtype)`` gives, by a
    thread per core (PIL decodes and resizes without the interpreter lock), unreadable files dropped
    and appended to ``skipped``."""
    first = next((image for image in (decode(tree.read(n), size) for n in names) if image is not None), None)
    if first is None:
        skipped.extend(names)
        return np.zeros((0, 3, 1, 1), np.uint8), np.zeros(0, np.int64)
    out = allocate((len(names), *first.shape), np.uint8)
    ok = np.zeros(len(names), dtype=bool)
    shapes = {first.shape}
    read = _thread_reader(tree)

    def chunk(start):
        for i in range(start, min(start + DECODE_CHUNK, len(names))):
            image = decode(read(names[i]), size)
            if image is not None and image.shape == first.shape:
                out[i] = image
                ok[i] = True
            elif image is not None:
                shapes.add(image.shape)

    workers = min(len(os.sched_getaffinity(0)), 8)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(chunk, range(0, len(names), DECODE_CHUNK)))
    if len(shapes) > 1:
        raise HarnessError(f"images in '{tree.path}' have different sizes ({len(shapes)} sizes); "
                           "read them with a dataset that resizes them to the model's input size (--dataset NAME, "
                           "see 'harness list')")
    skipped.extend(n for n, good in zip(names, ok) if not good)
    if ok.all():
        return out, labels
    kept = np.flatnonzero(ok)
    for start in range(0, len(kept), DECODE_CHUNK):  # in place: each row moves towards the front
        rows = kept[start : start + DECODE_CHUNK]
        out[start : start + len(rows)] = out[rows]
    return out[: len(kept)], labels[kept]


def _thread_reader(tree: Tree):
    """``tree.read`` for many threads at once: each reads a zip through a handle of its own."""
    if tree.zip is None:
        return tree.read
    local = threading.local()

    def read(name):
        if not hasattr(local, "zip"):
            local.zip = zipfile.ZipFile(tree.path)
        return local.zip.read(name)

    return read


def _gather(x: np.ndarray, rows: np.ndarray, allocate, name: str) -> np.ndarray:
    """``x[rows]`` in an allocated array, copied a chunk at a time."""
    out = allocate(name, (len(rows), *x.shape[1:]), x.dtype)
    for start in range(0, len(rows), DECODE_CHUNK):
        out[start : start + DECODE_CHUNK] = x[rows[start : start + DECODE_CHUNK]]
    return out


def _stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(len(members) * fraction)) if len(members) > 1 else 0
        chosen.extend(rng.choice(members, size=count, replace=False).tolist())
    return np.sort(np.asarray(chosen, dtype=np.int64))


def describe(path: Path) -> dict:
    """Class counts per split and the image sizes found (read from headers, nothing decoded)."""
    tree = Tree(path)
    found = layout(path, tree)
    counts, sizes, unreadable = {}, Counter(), 0
    for (group, cls), names in found.files.items():
        counts.setdefault(group, {})[cls] = len(names)
        for name in names:
            try:
                with Image.open(io.BytesIO(tree.read(found.prefix + name))) as image:
                    sizes[f"{image.width}x{image.height}"] += 1
            except Exception:  # noqa: BLE001
                unreadable += 1
    return {"source": str(path), "classes": found.classes, "layout": "train/test" if found.split else "class folders",
            "counts": counts, "sizes": dict(sizes.most_common()), "unreadable": unreadable}
