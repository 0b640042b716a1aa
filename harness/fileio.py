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


def created_mode() -> int:
    """The mode a new file gets under the current umask (``mkstemp`` alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _os_error(exc: BaseException):
    """The ``OSError`` behind a failed write: the exception itself, or the one torch's writer met in
    the Python stream it wrote to (its RuntimeError names only a file position)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temp path beside ``target``; on success it replaces ``target`` atomically. The file
    gets the mode any new file gets under the umask (0644 under the usual 022)."""
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, created_mode())
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except (OSError, RuntimeError) as exc:
        cause = _os_error(exc)
        if cause is None and "writ" not in str(exc).lower():  # not a write that failed: a bug, raised
            raise
        kept = "its previous version is kept" if target.exists() else "nothing was written in its place"
        reason = getattr(cause, "strerror", None) or cause or exc
        raise WriteFailed(f"could not write '{target}' ({reason}); {kept}, and the other files "
                          "of this model are as they were before this write") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temps(folder: Path) -> int:
    """Delete the temp files that a process killed mid-write left in ``folder`` (their names carry
    the writer's pid; a temp file of a process still running is left alone). Returns how many."""
    removed = 0
    for path in Path(folder).glob(".*.tmp"):
        parts = path.name.rsplit(".", 3)  # .<target>.<pid>.<random>.tmp
        if len(parts) == 4 and parts[1].isdigit() and not _alive(int(parts[1])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def open_for_writing(path: Path):
    """The stream a writer (``torch.save``) writes to: a Python file, so that a full disk surfaces
    as the ``OSError`` it is rather than as torch's file-position error."""
    return open(path, "wb")


def save_torch(target: Path, obj) -> None:
    """``torch.save`` to ``target`` atomically; a failed write is one line naming the file."""
    import torch

    with atomic_path(target) as tmp, open_for_writing(tmp) as handle:
        torch.save(obj, handle)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def json_field(path: Path, key: str):
    """One top-level field of a JSON file; None when the file is missing, unreadable or not an object."""
    try:
        return json.loads(Path(path).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def write_json(target: Path, data) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
