"""A progress bar per epoch (tqdm; ``tqdm.auto`` draws a widget in a notebook) on a terminal or in
a notebook; nothing mid-epoch otherwise, e.g. in a log file (the runner prints one line per epoch)."""
from __future__ import annotations

import sys


def interactive(stream=None) -> bool:
    """A terminal, or a Jupyter kernel (whose stderr is no TTY but shows widgets)."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class Progress:
    def __init__(self, total: int, description: str, enabled: bool = True, stream=None):
        self.bar = None
        if enabled and interactive(stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max(1, total), desc=description, leave=False, file=stream or sys.stderr,
                            unit="batch", mininterval=0.2, dynamic_ncols=True)
        self.done = 0

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
