"""Atomic file writes: a temp file in the same folder, flushed, then renamed over the target, so a
reader (or a crash) sees either the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from harness.errors import HarnessError


class WriteFailed(HarnessError):
    """A results file could not be written (disk full, permission lost): one line, and the file's
    previous version is still there, because nothing was renamed over it."""


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temp path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "writ" not in str(exc).lower():  # torch's stream writer's
            raise
        kept = "its previous version is kept" if target.exists() else "nothing was written in its place"
        reason = getattr(exc, "strerror", None) or exc
        raise WriteFailed(f"could not write '{target}' ({reason}); {kept}, and the other files "
                          "of this model are as they were before this write") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(target: Path, data) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
