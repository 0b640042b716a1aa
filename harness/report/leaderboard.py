"""The leaderboard: every model's ``metrics.json`` under one or more results folders, one row per
model and evaluated stage. Runs of the same model with several seeds (``<model>/seed-<n>/``) become
one row with the mean and Student's t 95% interval; a single run gets the Wilson interval of its
test images. Rows are of three sections: ``zoo`` (each model's final stage, ranked with paired
tests, see ``harness.report.compare``), ``stage`` (earlier stages: a transfer model's frozen base)
and ``variant`` (``<model>@<name>`` folders: ablations, data sizes, seed repeats, compared with
their base model).

Reading never crashes on an old or partial folder: a missing field is shown as missing.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.compute import ACCURACY_TARGETS, flop_text
from harness.cores import any_busy
from harness.fileio import json_field, write_text
from harness.machine import key as machine_key
from harness.report import is_number, number
from harness.report.compare import against_base, rank_zoo
from harness.report.stats import mean_ci95, wilson95
from harness.status import Status

COMPARED = [f"{kind}_{name}{end}" for name in ("vs_above", "vs_best") for kind, end in
            (("p", ""), ("diff", ""), ("diff", "_low"), ("diff", "_high"), ("test", ""), ("p", "_holm"), ("pab", ""),
             ("pab_low", ""), ("pab_high", ""), ("wins", ""), ("repeats", ""))]
TO_ACCURACY = [f"to_val_{round(t * 100)}_{unit}" for t in ACCURACY_TARGETS for unit in ("s", "images", "flop")]
COLUMNS = [
    "rank_raw", "section", "model", "stage", "family", "weights", "status", "accuracy", "accuracy_low",
    "accuracy_high", "interval", "precision", "recall", "f1", *COMPARED, "above_model", "best_model",
    "base", "not_comparable", "p_vs_base", "diff_vs_base", "diff_vs_base_low", "diff_vs_base_high", "test_vs_base",
    "pab_vs_base", "pab_low_vs_base", "pab_high_vs_base", "wins_vs_base", "repeats_vs_base",
    "params", "macs", "train_flop", "train_img_s", "eval_img_s", "train_time_s", "busy", "machine", *TO_ACCURACY,
    "best_epoch", "epochs", "input_size", "profile", "seed", "runs", "test_fingerprint", "tuned", "reason",
]
METRICS = ("accuracy", "precision", "recall", "f1")
AVERAGED = ("train_img_s", "eval_img_s", "train_time_s", "train_flop", "best_epoch", "epochs", *TO_ACCURACY)


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
                data = {"status": Status.UNREADABLE, "reason": f"{path.name}: {exc}"}
            data.setdefault("model", run_dir.name)
            data["run"] = run_dir.name
            data["command"] = json_field(path.parent / "config.json", "command")
            data["path"] = str(path.parent)
            results.append(data)
    return results


def without_repeats(results: list) -> list:
    """A folder's own run is dropped when the same run's ``seed-<n>/`` holds that seed too (a
    ``--seeds`` run into a folder that a single-seed run wrote first)."""
    seeded = {(r["run"], r.get("seed")) for r in results if Path(r["path"]).name.startswith("seed-")}
    return [r for r in results
            if Path(r["path"]).name.startswith("seed-") or (r["run"], r.get("seed")) not in seeded]


def evaluator_fields(stage: dict) -> list:
    """The numbers an evaluator plugin added to a stage (``ece``, ``corruption_acc``, ...), which
    become leaderboard columns; the classification evaluator's are the standard columns."""
    fields = []
    for name, entry in (stage.get("evaluators") or {}).items():
        if name == "classification" or not isinstance(entry, dict):
            continue
        fields += [key for key in entry.get("fields", []) if is_number(stage.get(key))]
    return fields


def stage_rows(result: dict) -> list[dict]:
    """One row per evaluated stage of a result (a transfer model: frozen, then finetune)."""
    stages = [s for s in result.get("stages") or [] if isinstance(s, dict) and "accuracy" in s]
    if not stages:
        return [{**result, "final": True, "machine": machine_key(result.get("machine"))}]
    rows = []
    for i, stage in enumerate(stages):
        keys = (*METRICS, "best_epoch", "epochs", "test_fingerprint", *evaluator_fields(stage))
        row = {**result, **{key: stage.get(key) for key in keys}}
        so_far = stages[:i + 1]
        if stage is not stages[-1]:  # what the run had cost when this stage ended, and nothing later
            row.update({key: stage.get(key) for key in ("train_time_s", "train_flop")})
            row["train_img_s"] = (stage["train_images"] / stage["train_time_s"]
                                  if stage.get("train_images") and stage.get("train_time_s") else None)
            row.update(_to_accuracy_until(result, [s.get("name") for s in so_far]))
        # the phases timed until this stage's end (for the last, the run's own busy)
        row["busy"] = any_busy([phase for s in so_far for phase in (s.get("cores"), s.get("eval_cores"))])
        row["stage"] = stage.get("name")
        row["final"] = stage is stages[-1]
        row["evaluated"] = evaluator_fields(stage)
        row["machine"] = machine_key(result.get("machine"))
        rows.append(row)
    return rows


def _to_accuracy_until(result: dict, stage_names: list) -> dict:
    """Time, images and compute to each validation accuracy within the run's first stages (from its
    ``history.csv``): an earlier stage's row must not show what a later stage reached."""
    import csv

    from harness.compute import time_to_accuracy

    history = Path(result.get("path") or "") / "history.csv"
    try:
        with open(history, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("stage") in stage_names]
    except OSError:
        return dict.fromkeys(TO_ACCURACY)  # unknown, rather than the whole run's
    typed = [{key: float(value) if value not in ("", None) else None for key, value in row.items() if key != "stage"}
             for row in rows]
    return time_to_accuracy(typed)


def _member(row: dict) -> dict:
    """What a paired comparison needs of one seed's run of a row."""
    return {"seed": row.get("seed"), "path": row.get("path"), "accuracy": row.get("accuracy"),
            "fingerprint": row.get("test_fingerprint"), "test_images": (row.get("data") or {}).get("test")}


def _interval(row: dict) -> None:
    """``accuracy_low`` / ``accuracy_high`` and the ``interval`` they come from."""
    accuracy, test = row.get("accuracy"), (row.get("data") or {}).get("test")
    if row.get("runs", 1) > 1 and is_number(row.get("accuracy_ci95")):
        # an accuracy lies in [0, 1] whatever a t interval over two seeds says
        row["accuracy_low"] = max(0.0, accuracy - row["accuracy_ci95"])
        row["accuracy_high"] = min(1.0, accuracy + row["accuracy_ci95"])
        row["interval"] = f"t, {row['runs']} seeds"
    elif is_number(accuracy) and test:
        row["accuracy_low"], row["accuracy_high"] = wilson95(round(accuracy * test), int(test))
        row["interval"] = f"Wilson, {int(test):,} images"


def aggregate(rows: list[dict]) -> dict:
    """Rows of one (run, stage) over seeds -> one row: metric means with ``<metric>_ci95``."""
    first = dict(rows[0])
    ok = [r for r in rows if r.get("status") == Status.OK]
    if not ok:
        first["runs"] = 0
        return first
    out = {**ok[0], "runs": len(ok), "seed": ",".join(str(r.get("seed")) for r in ok),
           "members": [_member(r) for r in ok]}
    for key in METRICS:
        out[key], out[f"{key}_ci95"] = mean_ci95(r.get(key) for r in ok)
    for key in (*AVERAGED, *ok[0].get("evaluated", [])):
        values = [r[key] for r in ok if is_number(r.get(key))]
        out[key] = sum(values) / len(values) if len(values) == len(ok) else None
    out["busy"] = any_busy([{"busy": r.get("busy")} for r in ok])
    machines = sorted({r["machine"] for r in ok})
    out["machine"] = machines[0] if len(machines) == 1 else " + ".join(machines)
    _interval(out)
    if len(ok) < len(rows):
        out["reason"] = f"{len(rows) - len(ok)} of {len(rows)} seeds did not finish"
    return out


SECTIONS = ("zoo", "stage", "variant")


def _section(row: dict) -> str:
    if "@" in str(row.get("run") or ""):
        return "variant"
    return "zoo" if row.get("final", True) else "stage"


def _by_accuracy(row: dict):
    accuracy = row.get("accuracy")
    ok = row.get("status") == Status.OK and is_number(accuracy) and not pd.isna(accuracy)
    return (not ok, -(accuracy if ok else 0), str(row.get("model")), str(row.get("stage")))


def base_of(row: dict, rows: list) -> dict | None:
    """A variant's base, of the same model and stage: for an ablation, the run that the same
    command made without turning anything off (else the one trained on as many images); for any
    other variant, the model's zoo row."""
    from harness.profiles import ABLATED_VARIANTS as ablated

    candidates = [r for r in rows if r is not row and r.get("plain_model") == row.get("plain_model")
                  and r.get("stage") == row.get("stage") and r.get("status") == Status.OK and r.get("variant") not in ablated]
    if row.get("variant") in ablated:
        same = ([r for r in candidates if row.get("command") and r.get("command") == row.get("command")]
                or [r for r in candidates if _train_size(r) == _train_size(row)])
        if same:
            return same[0]
    return next((r for r in candidates if r["section"] != "variant"), None)


def _train_size(row: dict):
    return (row.get("data") or {}).get("train")


def ranked_rows(results: list[dict]) -> list[dict]:
    """Every row as a dict, zoo first (ranked, with its paired tests), then earlier stages and
    variants (each against its base), by test accuracy within each; models without a score last.
    Each row keeps its ``members`` (one per seed), from which more comparisons can be made."""
    groups: dict = {}
    for result in without_repeats(results):
        for row in stage_rows(result):
            groups.setdefault((row.get("run") or row.get("model"), row.get("stage")), []).append(row)
    rows = [aggregate(part) for group in groups.values() for part in like_with_like(group)]
    for row in rows:  # a run folder named model@variant keeps the variant in the model column
        row["plain_model"] = row.get("model")
        row["section"] = _section(row)
        if row.get("run") and row["run"] != row.get("model"):
            row["model"] = row["run"]
    rows.sort(key=lambda row: (SECTIONS.index(row["section"]), *_by_accuracy(row)))
    rank_zoo([r for r in rows if r["section"] == "zoo" and r.get("status") == Status.OK and is_number(r.get("accuracy"))])
    for row in rows:
        if row["section"] == "variant" and row.get("status") == Status.OK:
            against_base(row, base_of(row, rows))
    return rows


KEPT_APART = re.compile(r" \[[^\]]+\]$")  # the label like_with_like gives a part of a run name

# what a run's config.json holds besides its settings: a seed's runs differ in these and nothing else
NOT_SETTINGS = ("command", "seed", "classes", "image_size", "data_source", "dataset", "callbacks", "evaluators")


def settings_of(row: dict) -> str | None:
    """The run's resolved settings without its seed, its split's seed and where its files came from,
    as one string."""
    try:
        config = json.loads((Path(row.get("path") or "") / "config.json").read_text())
    except (OSError, ValueError):
        return None
    settings = {k: v for k, v in config.items() if k not in NOT_SETTINGS}
    if isinstance(settings.get("data"), dict):  # which images validate is a draw of the randomness, as the seed is
        settings["data"] = {k: v for k, v in settings["data"].items() if k != "split_seed"}
    return json.dumps(settings, sort_keys=True, default=str)


def like_with_like(group: list) -> list:
    """The rows of one run name and stage as the parts that may be merged as seeds of one row:
    only runs of the same settings on the same test images, each seed once. A run name that holds
    several parts (folders run on different data, or with other settings) gets them apart, each
    named after its results folder: ``<model> [A]``, ``<model> [B]``."""
    parts: dict = {}
    ok = [row for row in group if row.get("status") == Status.OK]
    for row in ok:
        part = parts.setdefault((row.get("test_fingerprint"), settings_of(row)), [])
        if row.get("seed") not in [r.get("seed") for r in part]:  # a seed run twice alike counts once
            part.append(row)
    if not parts:
        return [group]
    first = next(iter(parts.values()))
    first += [row for row in group if row.get("status") != Status.OK]  # "1 of 3 seeds did not finish"
    if len(parts) > 1:
        folders: list = []
        for part in parts.values():
            folder = _results_folder(part[0])
            label = f"{folder} #{folders.count(folder) + 1}" if folder in folders else folder
            folders.append(folder)
            for row in part:
                row["run"] = f"{row.get('run') or row.get('model')} [{label}]"
    return list(parts.values())


def _results_folder(row: dict) -> str:
    path = Path(row.get("path") or "")
    run_dir = path.parent if path.name.startswith("seed-") else path
    return run_dir.parent.name or str(run_dir.parent)


def frame_of(rows: list[dict]) -> pd.DataFrame:
    extra = list(dict.fromkeys(key for row in rows for key in row.get("evaluated", [])))
    columns = ["rank"] + COLUMNS + [f"{m}_ci95" for m in METRICS] + extra
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    if frame.empty:
        return frame
    frame["accuracy"] = pd.to_numeric(frame["accuracy"], errors="coerce")
    frame["tuned"] = [tuned_text(value) for value in frame["tuned"]]
    return frame.reset_index(drop=True)


def table(results: list[dict]) -> pd.DataFrame:
    """``ranked_rows`` as a table with the standard columns (``leaderboard.csv``)."""
    return frame_of(ranked_rows(results))


@dataclass
class Ranked:
    """A results folder read and ranked once, for every file written from it."""

    results: list  # every result, as read
    rows: list  # ranked rows
    frame: pd.DataFrame  # the rows with the standard columns


def rank(folder: Path) -> Ranked:
    results = read_results(folder)
    rows = ranked_rows(results)
    return Ranked(results, rows, frame_of(rows))


def zoo(frame: pd.DataFrame) -> pd.DataFrame:
    """The zoo's rows: one per model, its final stage, no variants."""
    return frame[frame["section"] == "zoo"] if "section" in frame else frame


def machines(frame: pd.DataFrame) -> list:
    """The machines whose times a table shows (rows that finished), in order of first appearance."""
    ok = frame[frame["status"] == Status.OK] if len(frame) else frame
    return list(dict.fromkeys(m for value in ok.get("machine", []) for m in str(value).split(" + ") if m))


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


def with_ci(value, ci, digits: int = 4) -> str:
    return number(value, digits) + ("" if _missing(ci) else f" ± {number(ci, digits)}")


def shown_columns(frame: pd.DataFrame, registry) -> list:
    """The columns the registered evaluators declare (``EvaluatorSpec.columns``), in the order they
    were registered, that some row of ``frame`` has a value for."""
    declared = [column for registered in registry.evaluators.values() for column in registered.spec.columns]
    return [column for column in declared if column.field in frame.columns and frame[column.field].notna().any()]


def column_cells(frame: pd.DataFrame, column) -> list:
    ci = frame[f"{column.field}_ci95"] if f"{column.field}_ci95" in frame.columns else [None] * len(frame)
    return [with_ci(value, spread, column.digits) for value, spread in zip(frame[column.field], ci)]


def interval_cell(row) -> str:
    """0.9203 (0.9149-0.9255)."""
    if _missing(row.get("accuracy_low")):
        return number(row.get("accuracy"), 4)
    return f"{number(row['accuracy'], 4)} ({number(row['accuracy_low'], 4)}-{number(row['accuracy_high'], 4)})"


def above_cell(row) -> str:
    """How much better the row above is: +0.35 [-0.41, +1.12] p=0.37 (points of accuracy)."""
    if _missing(row.get("p_vs_above")):
        return ""
    p, holm = float(row["p_vs_above"]), row.get("p_vs_above_holm")
    adjusted = "" if _missing(holm) or float(holm) == p else \
        (", Holm<0.001" if float(holm) < 0.001 else f", Holm {float(holm):.2g}")  # what the ranks use
    beats = "" if _missing(row.get("pab_vs_above")) else (  # what the ranks use for paired repeats
        f", P(above > this) {float(row['pab_vs_above']):.2f} [{float(row['pab_low_vs_above']):.2f}, "
        f"{float(row['pab_high_vs_above']):.2f}]")
    return (f"{100 * float(row['diff_vs_above']):+.2f} [{100 * float(row['diff_vs_above_low']):+.2f}, "
            f"{100 * float(row['diff_vs_above_high']):+.2f}] " + ("p<0.001" if p < 0.001 else f"p={p:.2g}") + adjusted
            + beats)


def machine_letters(frame: pd.DataFrame) -> dict:
    """Machine label -> footnote letter, when the rows shown ran on more than one machine."""
    found = machines(frame)
    return {name: chr(ord("a") + i) for i, name in enumerate(found)} if len(found) > 1 else {}


def time_cell(row, letters: dict) -> str:
    text = duration(row.get("train_time_s"))
    if text and row.get("busy") is True:
        text += " busy"
    if text and letters:
        text += " " + ",".join(f"({letters[m]})" for m in str(row.get("machine")).split(" + ") if m in letters)
    return text


def to_markdown(frame: pd.DataFrame, registry, all_rows: bool = False) -> str:
    """The table for people, numbers formatted: by default the zoo (one row per model, its final
    stage, with the paired comparison to the row above and the rank the test set supports);
    ``all_rows``: every stage and variant in one list by accuracy. The evaluators' declared
    columns follow the accuracy (F1 is classification's). Skipped and
    failed models are listed under it with their reasons; times from several machines carry a
    footnote letter naming each. Every field is in ``leaderboard.csv`` / ``--format json``."""
    if frame.empty:
        return "_no results yet_\n"
    rows = frame if all_rows else zoo(frame)
    scored = rows[rows["status"] == Status.OK]
    if all_rows:
        scored = scored.sort_values(["accuracy", "model", "stage"], ascending=[False, True, True])
    letters = machine_letters(scored)
    columns = {
        "rank": range(1, len(scored) + 1) if all_rows else [_rank(r) for r in scored["rank"]],
        "model": [model_cell(r) for _, r in scored.iterrows()],
        **({"stage": scored["stage"]} if all_rows else {}),
        "weights": [short_weights(v) for v in scored["weights"]],
        "accuracy (95% interval)": [interval_cell(r) for _, r in scored.iterrows()],
        **{column.title: column_cells(scored, column) for column in shown_columns(scored, registry)},
        **({} if all_rows else {"above minus this (points)": [above_cell(r) for _, r in scored.iterrows()]}),
        "params": [count(v) for v in scored["params"]],
        "MACs": [count(v) for v in scored["macs"]],
        "train compute": [flop_text(v) for v in scored["train_flop"]],
        "train time": [time_cell(r, letters) for _, r in scored.iterrows()],
        "interval": [r if not _missing(r) else "" for r in scored["interval"]],
    }
    shown = pd.DataFrame(columns)
    text = shown.to_markdown(index=False, disable_numparse=True) + "\n" if len(shown) else "_no finished model yet_\n"
    if letters:
        text += "\nTimes come from different machines; compare them only within one: " + "; ".join(
            f"({letter}) {name}" + (" (results older than the machine record: these may differ among themselves)"
                                    if name == machine_key(None) else "")
            for name, letter in letters.items()) + ".\n"
    elif len(scored) and machines(scored)[0] != machine_key(None):
        text += f"\nAll times measured on one machine: {machines(scored)[0]}.\n"
    elif len(scored):
        text += "\nThe machine behind these times was not recorded.\n"
    others = rows[rows["status"] != Status.OK]
    if len(others):
        text += "\nNot in the table:\n\n" + "".join(
            f"- {row['model']}: {row['status']}" + (f" ({row['reason']})" if not _missing(row["reason"]) else "") + "\n"
            for _, row in others.iterrows())
    return text


def tuned_text(value) -> str | None:
    """A tuned row's budget: "tuned: 20 trials of 4 epochs"."""
    if isinstance(value, dict):
        return f"tuned: {value.get('trials')} trials of {value.get('budget')}"
    return value if isinstance(value, str) else None


def model_cell(row) -> str:
    tuned = tuned_text(row.get("tuned"))
    return f"{row['model']} ({tuned})" if tuned else str(row["model"])


def console_lines(frame: pd.DataFrame) -> list:
    """The zoo in a few lines for the end of a run: rank, model, accuracy with its interval."""
    scored = zoo(frame)
    scored = scored[scored["status"] == Status.OK] if len(scored) else scored
    if not len(scored):
        return []
    width = max([len("model"), *(len(str(m)) for m in scored.get("model", []))])
    return [f"rank  {'model':<{width}}  accuracy (95% interval)"] + [
        f"{_rank(row['rank']):>4}  {row['model']:<{width}}  {interval_cell(row)}" for _, row in scored.iterrows()]


def _rank(value) -> str:
    return "" if _missing(value) else str(int(value))


LEGEND = ("The zoo: one row per model, its final stage (variants, ablations, seed repeats and earlier stages are "
          "in `report.md` and in `leaderboard.csv`; `harness leaderboard --all-rows` lists every row). The "
          "accuracy's 95% interval is the Wilson score interval over the test images for one run, Student's t "
          "over the seeds for several (the `interval` column says which). `above minus this` is the row above's "
          "accuracy minus this row's, in points, with the 95% paired-bootstrap interval and the exact McNemar "
          "p-value on the test images both scored (with its Holm-adjusted p where that differs: the ranks use "
          "it); rows run on two or more of the same seeds get a paired t "
          "over those seeds, and a row of several seeds is otherwise compared through the run of the seed both "
          "share (or its first). The rank is 1 + the number of models significantly better (p < 0.05, "
          "Holm-corrected over every pair of rows): rows the test set cannot separate share a rank. MACs are "
          "for one image at the model's input size; train compute is 6 x MACs x "
          "training images processed, in FLOPs (a frozen base's features counted once); train time is the "
          "time in training steps, marked busy when other processes used the cores meanwhile (then it is no "
          "speed figure, and no seconds are compared with it).")


def legend(frame: pd.DataFrame, registry) -> str:
    """What the table above says: ``LEGEND``, then the legend line of each evaluator column shown."""
    rows = zoo(frame) if len(frame) else frame
    lines = [column.legend for column in shown_columns(rows, registry) if column.legend]
    return " ".join([LEGEND, *lines]) + "\n\n"


def write(folder: Path, registry, ranked: Ranked | None = None) -> pd.DataFrame:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``folder`` from its result folders
    (``ranked``: as ``rank(folder)`` gives them)."""
    frame = (ranked or rank(folder)).frame
    write_text(Path(folder) / "leaderboard.csv", frame.to_csv(index=False))
    write_text(Path(folder) / "leaderboard.md", "# Leaderboard\n\n" + legend(frame, registry) + to_markdown(frame, registry))
    if len(frame):
        from harness.report.plots import pareto_png

        pareto_png(Path(folder) / "pareto.png", zoo(frame))
    return frame
