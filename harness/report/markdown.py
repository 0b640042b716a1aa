"""``report.md``: the leaderboard, the CNN-vs-transfer comparison in words, per-class F1, every
model's confusion matrix and training curves, the sample grid, ablations, data efficiency, and
what produced every row (command, config, seed, versions, commit, weights)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.fileio import write_text
from harness.report import leaderboard

# the original study's test accuracies, to compare against
STUDY = {
    ("baseline_cnn", None): 0.6900,
    ("deep_cnn", None): 0.7653,
    ("mobilenetv3", "frozen"): 0.9084,
    ("mobilenetv3", "finetune"): 0.9518,
}


def _fmt(value, digits=4):
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _link(folder: Path, target: Path, text: str) -> str:
    return f"![{text}]({target.relative_to(folder).as_posix()})" if target.is_file() else f"_{text}: missing_"


def comparison(frame: pd.DataFrame) -> str:
    """Which family won, by how much, at what cost in training time: words from the numbers."""
    ok = frame[(frame["status"] == "ok") & frame["accuracy"].notna()]
    best = {family: rows.iloc[0] for family, rows in ok.groupby("family", sort=False)}
    if not best:
        return "No model has finished yet.\n"
    if len(best) == 1:
        (family, row), = best.items()
        return (f"Only the {family} family ran here; its best row is {row['model']} ({row['stage']}) at "
                f"{_fmt(row['accuracy'])} test accuracy. Run transfer models as well to compare the two.\n")
    ranked = sorted(best.items(), key=lambda item: -item[1]["accuracy"])
    (win_family, win), (lose_family, lose) = ranked[0], ranked[1]
    margin = win["accuracy"] - lose["accuracy"]
    text = (f"The best {win_family} model, {win['model']} ({win['stage']}), reached {_fmt(win['accuracy'])} test "
            f"accuracy: {100 * margin:.1f} points above the best {lose_family} model, {lose['model']} "
            f"({lose['stage']}), at {_fmt(lose['accuracy'])}.")
    if win["train_time_s"] and lose["train_time_s"]:
        ratio = float(win["train_time_s"]) / float(lose["train_time_s"])
        text += (f" It trained for {float(win['train_time_s']):.0f} s against {float(lose['train_time_s']):.0f} s "
                 f"({ratio:.1f}x the time)")
        if win["macs"] and lose["macs"] and not pd.isna(win["macs"]) and not pd.isna(lose["macs"]):
            text += f" and costs {float(win['macs']) / float(lose['macs']):.1f}x the MACs per image"
        text += "."
    return text + "\n"


def study_table(frame: pd.DataFrame) -> str:
    rows = []
    for (model, stage), figure in STUDY.items():
        match = frame[(frame["model"] == model) & ((frame["stage"] == stage) if stage else True)]
        match = match[match["status"] == "ok"]
        if not match.empty:
            ours = match.iloc[0]["accuracy"]
            rows.append([model, stage or match.iloc[0]["stage"], f"{figure:.4f}", _fmt(ours), f"{100 * (ours - figure):+.1f}"])
    if not rows:
        return ""
    table = pd.DataFrame(rows, columns=["model", "stage", "study", "here", "points"])
    return "## Against the original study\n\n" + table.to_markdown(index=False, disable_numparse=True) + "\n\n"


def per_class_f1(results: list) -> str:
    columns = {}
    classes = []
    for result in results:
        for stage in result.get("stages") or []:
            if isinstance(stage, dict) and isinstance(stage.get("per_class"), dict):
                key = f"{result['run']} ({stage.get('name')})" + (f" seed {result.get('seed')}" if "seed-" in result["path"] else "")
                columns[key] = {c: v.get("f1") for c, v in stage["per_class"].items()}
                classes = classes or list(stage["per_class"])
    if not columns:
        return ""
    table = pd.DataFrame({k: [_fmt(v.get(c), 3) for c in classes] for k, v in columns.items()}, index=classes)
    return "## Per-class F1 (test set)\n\n" + table.to_markdown(disable_numparse=True) + "\n\n"


def ablation(frame: pd.DataFrame) -> str:
    variants = frame[frame["model"].str.contains("@", na=False)]
    if variants.empty:
        return ""
    bases = {m.split("@")[0] for m in variants["model"]}
    shown = frame[frame["model"].map(lambda m: str(m).split("@")[0] in bases)]
    table = pd.DataFrame({
        "model": shown["model"].map(lambda m: str(m).split("@")[0]),
        "variant": shown["model"].map(lambda m: str(m).split("@")[1] if "@" in str(m) else "as recipe"),
        "stage": shown["stage"],
        "accuracy": shown["accuracy"].map(_fmt),
        "epochs": shown["epochs"],
        "best_epoch": shown["best_epoch"],
        "train_time_s": shown["train_time_s"].map(lambda v: _fmt(v, 0)),
    }).sort_values(["model", "stage", "variant"])
    return ("## Variants and ablations\n\nThe same model with parts of its recipe changed (`--ablate callbacks`: "
            "early stopping off trains the stage's full epochs; ReduceLROnPlateau off keeps the LR fixed).\n\n"
            + table.to_markdown(index=False, disable_numparse=True) + "\n\n")


def data_efficiency(folder: Path, results: list) -> str:
    from harness.runner import ABLATIONS

    ablated = {name for variants in ABLATIONS.values() for name in variants}
    points = {}
    for result in results:
        train = (result.get("data") or {}).get("train")
        if result.get("status") == "ok" and train and result.get("variant") not in ablated:
            points.setdefault((result.get("model"), result.get("family")), {}).setdefault(train, []).append(result["accuracy"])
    series = {key: value for key, value in points.items() if len(value) > 1}
    if not series:
        return ""
    from harness.report.plots import data_efficiency_png

    target = folder / "data_efficiency.png"
    data_efficiency_png(target, series)
    return ("## Accuracy against training-set size\n\n" + _link(folder, target, "accuracy against training images")
            + "\n\n")


def weights_line(result: dict) -> str:
    source = result.get("weights_source") or {}
    if source.get("sha256"):
        where = source.get("tag") or source.get("path")
        return f"{source.get('kind')} `{where}`, sha256 `{source['sha256']}`"
    return str(result.get("weights", "n/a"))


def provenance(folder: Path, result: dict) -> str:
    config_path = Path(result["path"]) / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    env = result.get("environment") or {}
    stages = ", ".join(
        f"{s['name']}: {s['optimizer']} lr {s['lr']}, {s['epochs']} epochs max, batch {s['batch_size']}"
        + (", early stopping" if s.get("early_stopping") else "") + (", plateau" if s.get("reduce_lr") else "")
        + (f", {s['schedule']} schedule" if s.get("schedule") else "")
        for s in config.get("stages", [])
    )
    lines = [
        f"- command: `{config.get('command', 'n/a')}`",
        f"- seed {result.get('seed')}, profile {result.get('profile')}, input {result.get('input_size')} px, "
        f"data {json.dumps(result.get('data', {}))}",
        f"- recipe: {stages or 'n/a'}; augment {json.dumps(config.get('augment', {}))}",
        f"- weights: {weights_line(result)}",
        f"- harness commit {env.get('harness_commit', 'n/a')}, python {env.get('python', 'n/a')}, torch "
        f"{env.get('torch', 'n/a')}, " + "".join(f"{k} {v}, " for k, v in (env.get("packages") or {}).items())
        + f"{env.get('threads', '?')} threads, allocator {env.get('allocator', 'n/a')}",
        f"- full config: [{config_path.relative_to(folder).as_posix()}]({config_path.relative_to(folder).as_posix()})"
        if config_path.is_file() else "- full config: missing",
    ]
    return "\n".join(lines) + "\n"


def write_report(folder: Path) -> Path:
    """Write ``folder/report.md`` from what the folder holds; nothing is recomputed."""
    folder = Path(folder)
    results = leaderboard.read_results(folder)
    frame = leaderboard.table(results)
    parts = ["# Report\n\n", "## Leaderboard\n\n", leaderboard.to_markdown(frame), "\n"]
    if not frame.empty:
        parts += ["## CNN against transfer learning\n\n", comparison(frame), "\n", study_table(frame)]
    parts += [per_class_f1(results), ablation(frame) if not frame.empty else "", data_efficiency(folder, results)]
    if (folder / "samples.png").is_file():
        parts += ["## The data\n\n", _link(folder, folder / "samples.png", "sample training images"), "\n\n"]
    parts.append("## Models\n\n")
    for result in results:
        where = Path(result["path"])
        title = result["run"] + (f" (seed {result.get('seed')})" if where.name.startswith("seed-") else "")
        parts.append(f"### {title}\n\n")
        if result.get("status") != "ok":
            parts.append(f"status: {result.get('status')} — {result.get('reason', '')}\n\n")
            continue
        parts.append(provenance(folder, result) + "\n")
        parts.append(_link(folder, where / "confusion.png", f"{title} confusion matrix") + "\n\n")
        parts.append(_link(folder, where / "curves.png", f"{title} training curves") + "\n\n")
    target = folder / "report.md"
    write_text(target, "".join(parts))
    return target
