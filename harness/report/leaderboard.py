"""The leaderboard: every model's ``metrics.json`` under one or more results folders, one row per
model and evaluated stage, ranked by test accuracy. Runs of the same model with several seeds
(``<model>/seed-<n>/``) become one row with the mean and a 95% confidence interval.

Reading never crashes on an old or partial folder: a missing field is shown as missing.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.fileio import write_text
from harness.report.stats import mean_ci95

COLUMNS = [
    "model", "stage", "family", "weights", "status", "accuracy", "precision", "recall", "f1",
    "params", "macs", "train_img_s", "eval_img_s", "train_time_s", "best_epoch", "epochs",
    "input_size", "profile", "seed", "runs", "reason",
]
METRICS = ("accuracy", "precision", "recall", "f1")
AVERAGED = ("train_img_s", "eval_img_s", "train_time_s", "best_epoch", "epochs")


def result_files(folder: Path) -> list[Path]:
    """``<run>/metrics.json`` and ``<run>/seed-<n>/metrics.json`` under ``folder``."""
    folder = Path(folder)
    return sorted(folder.glob("*/metrics.json")) + sorted(folder.glob("*/seed-*/metrics.json"))


def read_results(*folders: Path) -> list[dict]:
    """One dict per metrics file, with ``run`` (the run's folder name) and ``path`` added."""
    results = []
    for folder in folders:
        for path in result_files(folder):
            run_dir = path.parent.parent if path.parent.name.startswith("seed-") else path.parent
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as exc:
                data = {"status": "unreadable", "reason": f"{path.name}: {exc}"}
            data.setdefault("model", run_dir.name)
            data["run"] = run_dir.name
            data["path"] = str(path.parent)
            results.append(data)
    return results


def stage_rows(result: dict) -> list[dict]:
    """One row per evaluated stage of a result (a transfer model: frozen, then finetune)."""
    stages = [s for s in result.get("stages") or [] if isinstance(s, dict) and "accuracy" in s]
    if not stages:
        return [dict(result)]
    rows = []
    for stage in stages:
        row = {**result, **{key: stage.get(key) for key in (*METRICS, "best_epoch", "epochs")}}
        row["stage"] = stage.get("name")
        rows.append(row)
    return rows


def aggregate(rows: list[dict]) -> dict:
    """Rows of one (run, stage) over seeds -> one row: metric means with ``<metric>_ci95``."""
    first = dict(rows[0])
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        first["runs"] = 0
        return first
    out = {**ok[0], "runs": len(ok), "seed": ",".join(str(r.get("seed")) for r in ok)}
    for key in METRICS:
        out[key], out[f"{key}_ci95"] = mean_ci95(r.get(key) for r in ok)
    for key in AVERAGED:
        values = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        out[key] = sum(values) / len(values) if values else None
    if len(ok) < len(rows):
        out["reason"] = f"{len(rows) - len(ok)} of {len(rows)} seeds did not finish"
    return out


def table(results: list[dict]) -> pd.DataFrame:
    """Ranked rows (by mean test accuracy; models without a score last) with the standard columns."""
    groups: dict = {}
    for result in results:
        for row in stage_rows(result):
            groups.setdefault((row.get("run") or row.get("model"), row.get("stage")), []).append(row)
    rows = [aggregate(group) for group in groups.values()]
    for row in rows:  # a run folder named model@variant keeps the variant in the model column
        if row.get("run") and row["run"] != row.get("model"):
            row["model"] = row["run"]
    columns = COLUMNS + [f"{m}_ci95" for m in METRICS]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    if frame.empty:
        return frame
    frame["accuracy"] = pd.to_numeric(frame["accuracy"], errors="coerce")
    frame = frame.sort_values(["accuracy", "model", "stage"], ascending=[False, True, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def _number(value, digits):
    return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def to_markdown(frame: pd.DataFrame) -> str:
    """The table for people: metrics with their 95% CI when several seeds ran, MACs in millions."""
    if frame.empty:
        return "_no results yet_\n"
    shown = pd.DataFrame({"rank": frame["rank"]})
    for column in ("model", "stage", "family", "weights", "status"):
        shown[column] = frame[column]
    for metric in METRICS:
        shown[metric] = [
            _number(v, 4) + (f" ± {_number(ci, 4)}" if ci is not None and not pd.isna(ci) else "")
            for v, ci in zip(frame[metric], frame[f"{metric}_ci95"])
        ]
    shown["params (M)"] = [_number(v / 1e6 if v is not None and not pd.isna(v) else None, 2) for v in frame["params"]]
    shown["MMACs"] = [_number(v / 1e6 if v is not None and not pd.isna(v) else None, 1) for v in frame["macs"]]
    for column, digits in (("train_img_s", 0), ("eval_img_s", 0), ("train_time_s", 0)):
        shown[column] = [_number(v, digits) for v in frame[column]]
    for column in ("best_epoch", "epochs"):  # whole numbers, or a mean over seeds
        shown[column] = [_number(v, 0 if float(v).is_integer() else 1) if v is not None and not pd.isna(v) else ""
                         for v in frame[column]]
    for column in ("input_size", "profile", "seed", "runs", "reason"):
        shown[column] = frame[column]
    shown = shown.astype(object).where(shown.notna(), "")
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


def write(folder: Path) -> pd.DataFrame:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``folder`` from its result folders."""
    frame = table(read_results(folder))
    write_text(Path(folder) / "leaderboard.csv", frame.to_csv(index=False))
    text = ("# Leaderboard\n\nRanked by test accuracy (mean over seeds, with the 95% confidence interval "
            "when several ran). Precision, recall and F1 are macro averages; MACs are for one image at "
            "the model's input size.\n\n")
    write_text(Path(folder) / "leaderboard.md", text + to_markdown(frame))
    return frame
