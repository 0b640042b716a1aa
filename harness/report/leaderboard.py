"""The leaderboard: every ``<model>/metrics.json`` under a results folder, ranked by test accuracy.

Reading never crashes on an old or partial folder: a missing field is shown as missing.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.fileio import write_text

COLUMNS = [
    "model", "stage", "family", "status", "accuracy", "precision", "recall", "f1",
    "best_epoch", "epochs", "train_time_s", "train_img_s", "params", "input_size",
    "profile", "seed", "reason",
]
METRICS = ("accuracy", "precision", "recall", "f1")


def read_results(folder: Path) -> list[dict]:
    """One dict per ``metrics.json`` found directly under ``folder/<model>/``."""
    rows = []
    for path in sorted(Path(folder).glob("*/metrics.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            rows.append({"model": path.parent.name, "status": "unreadable", "reason": f"{path} is not valid JSON"})
            continue
        if isinstance(data, dict):
            data.setdefault("model", path.parent.name)
            rows.append(data)
    return rows


def stage_rows(result: dict) -> list[dict]:
    """One row per evaluated stage of a model (a transfer model: frozen, then finetune)."""
    stages = [s for s in result.get("stages") or [] if isinstance(s, dict) and "accuracy" in s]
    if not stages:
        return [result]
    rows = []
    for stage in stages:
        row = {**result, **{key: stage.get(key) for key in (*METRICS, "best_epoch", "epochs")}}
        row["stage"] = stage.get("name")
        rows.append(row)
    return rows


def table(results: list[dict]) -> pd.DataFrame:
    """Rows ranked by test accuracy (models without a score last), with the standard columns."""
    rows = [row for result in results for row in stage_rows(result)]
    frame = pd.DataFrame([{column: row.get(column) for column in COLUMNS} for row in rows], columns=COLUMNS)
    if frame.empty:
        return frame
    frame["accuracy"] = pd.to_numeric(frame["accuracy"], errors="coerce")
    frame = frame.sort_values(["accuracy", "model"], ascending=[False, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no results yet_\n"
    shown = frame.copy()
    for column in METRICS:
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{float(v):.4f}")
    shown["train_time_s"] = shown["train_time_s"].map(lambda v: "" if pd.isna(v) else f"{float(v):.0f}")
    shown["train_img_s"] = shown["train_img_s"].map(lambda v: "" if pd.isna(v) else f"{float(v):.0f}")
    shown = shown.astype(object).where(shown.notna(), "")
    return shown.to_markdown(index=False) + "\n"


def write(folder: Path) -> pd.DataFrame:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``folder`` from its model folders."""
    frame = table(read_results(folder))
    write_text(Path(folder) / "leaderboard.csv", frame.to_csv(index=False))
    write_text(Path(folder) / "leaderboard.md", "# Leaderboard\n\nRanked by test accuracy.\n\n" + to_markdown(frame))
    return frame
