"""A progress bar per epoch on a terminal; nothing mid-epoch when output is not a TTY (the runner
prints one line per epoch instead)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, description: str, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.total = max(1, total)
        self.description = description
        self.started = time.perf_counter()
        self.last_draw = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.2 and done < self.total:
            return  # redraw at most five times a second
        self.last_draw = now
        width = 30
        filled = int(width * done / self.total)
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / max(rate, 1e-9)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.description} [{bar}] {done}/{self.total} {rate:.1f} it/s eta {eta:.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
