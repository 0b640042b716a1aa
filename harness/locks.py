"""One writer per model folder: a lock file made with O_EXCL (as git's index.lock and pip's lock
files are), naming the process that holds it. A second run that would write the same folder stops
at once, naming the first; a lock whose process is gone is taken over with a one-line notice."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from harness.errors import HarnessError

LOCK = ".harness.lock"


class FolderLock:
    def __init__(self, folder: Path, command: str = ""):
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK
        self.held = False

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": self.command}
        for _ in range(2):  # a second try after taking over a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and alive(holder):
                    raise HarnessError(f"'{self.folder}' is being written by another run: {describe(holder)}; "
                                       "wait for it to finish, or use another --out") from None
                print(f"harness: notice: taking over the lock of '{self.folder}' left by "
                      f"{describe(holder) if holder else 'an unreadable lock file'}, which is no longer running",
                      file=sys.stderr, flush=True)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(mine, handle)
            self.held = True
            return self
        raise HarnessError(f"could not lock '{self.folder}': another run took it at the same moment")

    def holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def alive(holder: dict) -> bool:
    """Whether the process that wrote ``holder`` still runs. On another host that cannot be
    known, so the lock is respected."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder["pid"]
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid of some other program is not the lock's owner
        try:
            return b"harness" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder['pid']} on {holder.get('host', '?')}, started {started}"
