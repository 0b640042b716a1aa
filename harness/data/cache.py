"""Decode once, then map: decoded arrays are cached on disk as uncompressed ``.npy`` files, keyed on
the source's path, size and modification time and on the target image size, so a changed source is
decoded again. A cached dataset is memory-mapped, not read: its pages are the kernel's page cache,
shared by every process on the machine that maps the same entry (data-parallel ranks, Ray workers,
a second run), and a dataset larger than memory still trains.

An entry is a folder ``arrays/<source>-<key>/`` holding one ``.npy`` per array and ``index.json``
(classes, and each array's shape, dtype, header length and header checksum), written last and
renamed into place with the folder, so a half-written entry is never found. An entry whose files
do not match their index (a truncated or damaged file) is decoded again. One process decodes an
entry at a time (a lock beside it); the others wait and map what it wrote.

The cache lives in ``$HARNESS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/harness`` or
``~/.cache/harness``), under ``arrays/``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from harness.data.images import Images
from harness.fileio import created_mode

FORMAT_VERSION = 2  # 2: a folder of .npy files, memory-mapped (1: one .npz, read whole)
ARRAYS = ("train_x", "train_y", "test_x", "test_y")
INDEX = "index.json"


def cache_dir() -> Path:
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "harness"


def fingerprint(path: Path) -> dict:
    """Path, size and modification time of a file, or a digest of those of every file in a folder."""
    path = Path(path).resolve()
    if path.is_dir():
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return {"path": str(path), "files": len(files), "digest": digest.hexdigest()}
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class ArrayFiles:
    """Where a decoder writes arrays bigger than memory: ``allocate`` gives a writable memory map of
    a new ``.npy`` file in the entry being built; only the kernel's page cache holds what is written."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def allocate(self, name: str, shape: tuple, dtype) -> np.ndarray:
        return np.lib.format.open_memmap(self.folder / f"{name}.npy", mode="w+", dtype=dtype, shape=tuple(shape))


def cached_images(source: Path, reader: str, size, decode) -> Images:
    """``decode(files)``'s result for ``source``, memory-mapped from the cache when the source has not
    changed. ``decode`` gets an ``ArrayFiles`` and may allocate its arrays there (a decoder that
    returns arrays in memory is fine too: they are written to the entry)."""
    key = {"format": FORMAT_VERSION, "reader": reader, "size": size, **fingerprint(source)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    entry = cache_dir() / "arrays" / f"{Path(source).name}-{digest}"
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _lock(entry):
        images = open_entry(entry, str(source))
        if images is None:
            shutil.rmtree(entry, ignore_errors=True)  # damaged or partial: decoded again
            _build(entry, decode)
            images = open_entry(entry, str(source))
    return images


@contextlib.contextmanager
def _lock(entry: Path):
    # flock is released by the kernel when its holder dies, so a killed decoder blocks no one
    with open(entry.parent / f".{entry.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(entry: Path, decode) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}.{os.getpid()}.", suffix=".tmp", dir=entry.parent))
    try:
        images = decode(ArrayFiles(scratch))
        arrays = {name: getattr(images, name) for name in ARRAYS}
        index = {"format": FORMAT_VERSION, "classes": [str(c) for c in images.classes], "arrays": {}}
        for name, array in arrays.items():
            path = scratch / f"{name}.npy"
            mapped = _mapped(array)
            described = _describe(path) if mapped is not None and Path(mapped.filename) == path.resolve() else None
            if described is not None and described["shape"] == list(array.shape):
                mapped.flush()
            else:  # in memory, or the first rows of a working array: written out (from the page cache)
                path = path.with_name(f"{name}.rows.npy") if path.exists() else path
                np.save(path, np.ascontiguousarray(array))
                described = _describe(path)
            index["arrays"][name] = {"file": path.name, **described}
        kept = {scratch / described["file"] for described in index["arrays"].values()}
        for stray in set(scratch.iterdir()) - kept:
            stray.unlink()  # a decoder's working arrays
        (scratch / INDEX).write_text(json.dumps(index))
        for path in scratch.iterdir():
            os.chmod(path, created_mode())
        os.chmod(scratch, created_mode() | 0o111)
        os.rename(scratch, entry)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mapped(array):
    """The memory map an array is (a view of), or None."""
    while array is not None and not isinstance(array, np.memmap):
        array = getattr(array, "base", None)
    return array


def _describe(path: Path) -> dict:
    """Shape, dtype, where the data starts and a checksum of the header of one ``.npy`` file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(handle)
        offset = handle.tell()
        handle.seek(0)
        header = handle.read(offset)
    return {"shape": list(shape), "dtype": dtype.str, "offset": offset,
            "header_sha256": hashlib.sha256(header).hexdigest()}


def _intact(path: Path, described: dict) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(described["offset"])
        size = path.stat().st_size
    except OSError:
        return False
    expected = described["offset"] + int(np.prod(described["shape"])) * np.dtype(described["dtype"]).itemsize
    return size == expected and hashlib.sha256(header).hexdigest() == described["header_sha256"]


def open_entry(entry: Path, source: str = "", used: bool = True) -> Images | None:
    """The cached dataset in ``entry``, memory-mapped, or None when it is missing, partial or damaged;
    ``used``: record now as its last use (its index's modification time)."""
    try:
        index = json.loads((Path(entry) / INDEX).read_text())
        described = {name: index["arrays"][name] for name in ARRAYS}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if index.get("format") != FORMAT_VERSION:
        return None
    files = {name: Path(entry) / Path(str(described[name].get("file"))).name for name in ARRAYS}
    if not all(_intact(files[name], described[name]) for name in ARRAYS):
        return None
    # copy-on-write: arrays are writable (torch wants that) but a write never reaches the file
    arrays = {name: np.load(files[name], mmap_mode="c" if name.endswith("_x") else None) for name in ARRAYS}
    if used:
        with contextlib.suppress(OSError):  # for pruning by age; a read-only cache is fine
            os.utime(Path(entry) / INDEX)
    return Images(classes=index["classes"], **arrays, source=source, entry=str(entry))


# --- what is in the cache, and taking it out (harness data cache) ---------------------------------

def listing() -> list:
    """Every entry under ``arrays/``: its name, bytes on disk, images, image size, when last used; an
    entry of an older format, damaged, or left half-built by a killed decoder says so in ``state``."""
    root = cache_dir() / "arrays"
    rows = []
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        if path.name.endswith(".lock"):
            continue
        stats = [f.stat() for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path.stat()]
        row = {"name": path.name, "bytes": sum(stat.st_size for stat in stats),
               "last_used": max((stat.st_mtime for stat in stats), default=path.stat().st_mtime)}
        if _owner(path.name) != path.name:  # a decoder's scratch
            row["state"] = "being decoded" if _decoding(_owner(path.name)) else "unfinished"  # its decoder was killed
        elif path.is_dir() and (images := open_entry(path, used=False)) is not None:
            row.update(state="ok", images=len(images.train_y) + len(images.test_y), size=int(images.train_x.shape[-1]))
        else:
            row["state"] = "older format" if path.suffix == ".npz" else "damaged"
        rows.append(row)
    return rows


def remove(name: str) -> bool:
    """Take one entry out; False, and nothing removed, while a process is decoding it (its lock is
    held). A process that has it mapped keeps its pages until it ends."""
    entry = cache_dir() / "arrays" / name
    with _lock_if_free(_owner(name)) as free:
        if free and entry.is_dir():
            shutil.rmtree(entry)
        elif free:
            entry.unlink(missing_ok=True)
    return free


def _owner(name: str) -> str:
    """The entry a name belongs to: itself, or for a decoder's scratch ``.<entry>.<pid>.<random>.tmp``
    the entry it was building."""
    if name.startswith(".") and name.endswith(".tmp"):
        return name[1:-len(".tmp")].rsplit(".", 2)[0]
    return name


def _decoding(entry_name: str) -> bool:
    """Whether a process holds the entry's lock now (it decodes it)."""
    if not (cache_dir() / "arrays" / f".{entry_name}.lock").exists():  # listing makes no lock files
        return False
    with _lock_if_free(entry_name) as free:
        return not free


@contextlib.contextmanager
def _lock_if_free(entry_name: str):
    """The entry's lock (``_lock``'s file), taken without waiting: True while held, False when
    another process holds it."""
    with open(cache_dir() / "arrays" / f".{entry_name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
