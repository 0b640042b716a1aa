"""What a run leaves behind for people to read: the leaderboard, the per-model plots and the report.
The helpers here are for evaluator plugins that write a report section."""
from __future__ import annotations

import math
from pathlib import Path


def number(value, digits: int = 4) -> str:
    """A number for a table cell; '' when missing."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return ""
    return f"{float(value):.{digits}f}"


def evaluated_stages(results: list, evaluator: str):
    """(title, stage dict, model folder) for every stage of every result that ``evaluator`` scored."""
    for result in results:
        where = Path(result["path"])
        title = result["run"] + (f" seed {result.get('seed')}" if where.name.startswith("seed-") else "")
        for stage in result.get("stages") or []:
            if isinstance(stage, dict) and evaluator in (stage.get("evaluators") or {}):
                yield title, stage, where
