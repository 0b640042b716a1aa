"""The harness's warnings go through ``logging`` (logger ``harness``), so an application can route,
silence or collect them like any other library's; by default they print as one line on stderr,
``harness: warning: ...``, from rank 0 alone when several processes train one job."""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger("harness")


class _Stderr(logging.StreamHandler):
    """Whatever ``sys.stderr`` is when a record is written (a test's capture, a notebook's cell)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _MainProcessOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from harness import distributed

        return distributed.is_main()


def _default_handler() -> None:
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("harness: %(levelname_lower)s: %(message)s"))
        handler.addFilter(_MainProcessOnly())
        handler.addFilter(_lower_level)
        logger.addHandler(handler)
        logger.propagate = False  # printed once, here; an application that wants them adds its own handler


def _lower_level(record: logging.LogRecord) -> bool:
    record.levelname_lower = record.levelname.lower()
    return True


def warn(message: str) -> None:
    """One line of warning, from rank 0."""
    _default_handler()
    logger.warning(message)
