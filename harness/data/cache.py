"""Decode once, then reuse: decoded arrays are cached on disk, keyed on the source's path, size
and modification time and on the target image size, so a changed source is decoded again.

The cache lives in ``$HARNESS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/harness`` or
``~/.cache/harness``), under ``arrays/``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from harness.data.images import Images
from harness.fileio import atomic_path

FORMAT_VERSION = 1


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


def cached_images(source: Path, reader: str, size, decode) -> Images:
    """``decode()``'s result for ``source``, from the cache when the source has not changed."""
    key = {"format": FORMAT_VERSION, "reader": reader, "size": size, **fingerprint(source)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    target = cache_dir() / "arrays" / f"{Path(source).name}-{digest}.npz"
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as saved:
                return Images(
                    classes=[str(c) for c in saved["classes"]],
                    train_x=saved["train_x"],
                    train_y=saved["train_y"],
                    test_x=saved["test_x"],
                    test_y=saved["test_y"],
                    source=str(source),
                )
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    images = decode()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                classes=np.asarray(images.classes),
                train_x=images.train_x,
                train_y=images.train_y,
                test_x=images.test_x,
                test_y=images.test_y,
            )
    return images
