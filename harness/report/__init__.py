"""What a run leaves behind for people to read: the leaderboard, the per-model plots and the report.
The helpers here are for evaluator plugins that write a report section."""
from __future__ import annotations

import math
import numbers
from pathlib import Path


def is_number(value) -> bool:
    """Whether ``value`` is a measured number: not missing, not NaN, not a yes/no."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def number(value, digits: int = 4, missing: str = "") -> str:
    """A number for a table cell or a sentence; ``missing`` when there is none."""
    return f"{float(value):.{digits}f}" if is_number(value) else missing


def evaluated_stages(results: list, evaluator: str):
    """(title, stage dict, model folder) for every stage of every result that ``evaluator`` scored."""
    for result in results:
        where = Path(result["path"])
        title = result["run"] + (f" seed {result.get('seed')}" if where.name.startswith("seed-") else "")
        for stage in result.get("stages") or []:
            if isinstance(stage, dict) and evaluator in (stage.get("evaluators") or {}):
                yield title, stage, where
