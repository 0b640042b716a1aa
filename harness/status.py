"""A run's status, as ``metrics.json``, an executor's outcome and the leaderboard give it. The
values are strings (``Status.OK == "ok"``), so files written with them read back as plain text."""
from __future__ import annotations

import enum


class Status(enum.StrEnum):
    OK = "ok"  # trained and scored
    FAILED = "failed"  # raised; the one-line reason is beside it, the traceback in error.log
    SKIPPED = "skipped"  # never started: no pretrained weights, under --skip-missing-weights
    UNREADABLE = "unreadable"  # a metrics.json the leaderboard could not read
