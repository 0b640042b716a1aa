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


def evaluator_fields(stage: dict) -> list:
    """The numbers an evaluator plugin added to a stage (``ece``, ``corruption_acc``, ...), which
    become leaderboard columns; the classification evaluator's are the standard columns."""
    fields = []
    for name, entry in (stage.get("evaluators") or {}).items():
        if name == "classification" or not isinstance(entry, dict):
            continue
        fields += [key for key in entry.get("fields", []) if _is_number(stage.get(key))]
    return fields


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stage_rows(result: dict) -> list[dict]:
    """One row per evaluated stage of a result (a transfer model: frozen, then finetune)."""
    stages = [s for s in result.get("stages") or [] if isinstance(s, dict) and "accuracy" in s]
    if not stages:
        return [dict(result)]
    rows = []
    for stage in stages:
        keys = (*METRICS, "best_epoch", "epochs", *evaluator_fields(stage))
        row = {**result, **{key: stage.get(key) for key in keys}}
        row["stage"] = stage.get("name")
        row["evaluated"] = evaluator_fields(stage)
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
    for key in (*AVERAGED, *ok[0].get("evaluated", [])):
        values = [r[key] for r in ok if _is_number(r.get(key))]
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
    extra = list(dict.fromkeys(key for row in rows for key in row.get("evaluated", [])))
    columns = COLUMNS + [f"{m}_ci95" for m in METRICS] + extra
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    if frame.empty:
        return frame
    frame["accuracy"] = pd.to_numeric(frame["accuracy"], errors="coerce")
    frame = frame.sort_values(["accuracy", "model", "stage"], ascending=[False, True, True], na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def _number(value, digits):
    return "" if _missing(value) else f"{float(value):.{digits}f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value == ""


def count(value) -> str:
    """1.53 M, 56.5 M, 4.11 G, 980 k: parameters and MACs for people."""
    if _missing(value):
        return ""
    value = float(value)
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f}"


def duration(seconds) -> str:
    """45 s, 4.5 min, 63 min, 2.1 h."""
    if _missing(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def short_weights(value) -> str:
    """``scratch``, ``imagenet (file sha256:1234abcd)``, ``imagenet (hub)`` from the long form."""
    if _missing(value) or value == "scratch":
        return "scratch" if value == "scratch" else ""
    text = str(value)
    kind = text.split(":", 1)[0]
    digest = text.split("sha256:", 1)[1][:8] if "sha256:" in text else None
    return f"imagenet ({kind} sha256:{digest})" if digest else f"imagenet ({kind})"


def with_ci(value, ci) -> str:
    return _number(value, 4) + ("" if _missing(ci) else f" ± {_number(ci, 4)}")


# an evaluator's headline number, shown when present (the first found), in place of a 12th column
HEADLINES = {"corruption_acc": "corruption acc", "ece": "ECE", "always_one": "always_one"}
MD_COLUMNS = ("rank", "model", "stage", "weights", "accuracy", "F1", "params", "MACs", "train time", "train img/s",
              "status")


def to_markdown(frame: pd.DataFrame) -> str:
    """The table for people: at most 12 columns of finished rows, numbers formatted (0.9154 ± 0.0031,
    1.53 M, 63 min); skipped and failed models are listed under it with their reasons. Every field
    is in ``leaderboard.csv`` / ``--format json``."""
    if frame.empty:
        return "_no results yet_\n"
    scored = frame[frame["status"] == "ok"]
    shown = pd.DataFrame({
        "rank": range(1, len(scored) + 1),
        "model": scored["model"],
        "stage": scored["stage"],
        "weights": [short_weights(v) for v in scored["weights"]],
        "accuracy": [with_ci(v, ci) for v, ci in zip(scored["accuracy"], scored["accuracy_ci95"])],
        "F1": [with_ci(v, ci) for v, ci in zip(scored["f1"], scored["f1_ci95"])],
        "params": [count(v) for v in scored["params"]],
        "MACs": [count(v) for v in scored["macs"]],
        "train time": [duration(v) for v in scored["train_time_s"]],
        "train img/s": ["" if _missing(v) else f"{float(v):,.0f}" for v in scored["train_img_s"]],
        "status": [f"{r} seeds" if not _missing(r) and r and int(r) > 1 else "ok" for r in scored["runs"]],
    })
    headline = next((key for key in HEADLINES if key in scored.columns and scored[key].notna().any()), None)
    if headline:
        shown.insert(6, HEADLINES[headline], [_number(v, 4) for v in scored[headline]])
    text = shown.to_markdown(index=False, disable_numparse=True) + "\n" if len(shown) else "_no finished model yet_\n"
    others = frame[frame["status"] != "ok"]
    if len(others):
        text += "\nNot in the table:\n\n" + "".join(
            f"- {row['model']}: {row['status']}" + (f" ({row['reason']})" if not _missing(row["reason"]) else "") + "\n"
            for _, row in others.iterrows())
    return text


def write(folder: Path) -> pd.DataFrame:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``folder`` from its result folders."""
    frame = table(read_results(folder))
    write_text(Path(folder) / "leaderboard.csv", frame.to_csv(index=False))
    text = ("# Leaderboard\n\nRanked by test accuracy (mean over seeds, with the 95% confidence interval "
            "when several ran). F1 is the macro average; MACs are for one image at the model's input size; "
            "train time is the time in training steps. Every field (precision, recall, evaluation speed, "
            "epochs, profile, seeds, evaluator numbers) is in `leaderboard.csv`.\n\n")
    write_text(Path(folder) / "leaderboard.md", text + to_markdown(frame))
    if len(frame):
        from harness.report.plots import pareto_png

        pareto_png(Path(folder) / "pareto.png", frame)
    return frame
