"""``report.md``: the leaderboard, the CNN-vs-transfer comparison in words, per-class F1, every
model's confusion matrix and training curves, the sample grid, ablations, data efficiency, and
what produced every row (command, config, seed, versions, commit, weights)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.errors import one_line
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


def _ok(results: list) -> list:
    return [r for r in results if r.get("status") == "ok" and isinstance(r.get("accuracy"), (int, float))]


def _train_images(result: dict):
    return (result.get("data") or {}).get("train")


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def ablation(results: list) -> str:
    """The study's second question: what early stopping and ReduceLROnPlateau each bring, from
    ``--ablate callbacks`` runs compared with the recipe as it is (same model, profile, data)."""
    from harness.config import ABLATIONS

    ablated = {name for variants in ABLATIONS.values() for name in variants}
    groups: dict = {}
    for result in _ok(results):
        key = (result.get("model"), result.get("profile"), _train_images(result))
        groups.setdefault(key, {}).setdefault(result.get("variant") or "as recipe", []).append(result)
    rows, prose = [], []
    for (model, profile, train), variants in sorted(groups.items(), key=lambda item: str(item[0])):
        if not ablated & set(variants):
            continue
        summary = {name: {"accuracy": _mean(r["accuracy"] for r in runs), "epochs": _mean(r.get("epochs") or 0 for r in runs),
                          "best": _mean(r.get("best_epoch") or 0 for r in runs),
                          "time": _mean(r.get("train_time_s") or 0 for r in runs), "runs": len(runs)}
                   for name, runs in variants.items()}
        for name, numbers in sorted(summary.items(), key=lambda item: (item[0] in ablated, item[0])):
            rows.append({"model": model, "profile": profile, "train images": train, "variant": name,
                         "epochs run": f"{numbers['epochs']:.0f}", "best epoch": f"{numbers['best']:.0f}",
                         "test accuracy": _fmt(numbers["accuracy"]), "training time": f"{numbers['time']:.0f} s"})
        base_name = next((name for name in summary if name not in ablated), None)
        if base_name is None:
            continue
        base = summary[base_name]
        for name, words in (("no-early-stopping", "Without early stopping"), ("no-reduce-lr", "Without ReduceLROnPlateau")):
            if name in summary:
                other = summary[name]
                prose.append(
                    f"{words}, {model} ({profile} profile, {train:,} training images) ran {other['epochs']:.0f} epochs "
                    f"against {base['epochs']:.0f} and reached {_fmt(other['accuracy'])} test accuracy against "
                    f"{_fmt(base['accuracy'])} ({100 * (other['accuracy'] - base['accuracy']):+.1f} points) in "
                    f"{other['time']:.0f} s of training against {base['time']:.0f} s"
                    f" ({other['time'] / base['time']:.1f}x)." if base["time"] else ".")
    if not rows:
        return ""
    return ("## Early stopping and learning-rate reduction (the study's second question)\n\n"
            "`--ablate callbacks` trains the recipe as it is and with each callback turned off: without early "
            "stopping every stage runs its full epochs; without ReduceLROnPlateau the learning rate stays fixed "
            "(early stopping still ends the stage).\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n"
            + "".join(f"- {line}\n" for line in prose) + "\n")


def _runs_cell(accuracies: list) -> str:
    return _fmt(_mean(accuracies)) + (f" ({len(accuracies)} runs)" if len(accuracies) > 1 else "")


def data_efficiency(folder: Path, results: list) -> str:
    """The study's third question: accuracy against training-set size, per model and profile; the
    plot and, where a transfer model and CNNs share sizes, the gap between them in words."""
    from harness.config import ABLATIONS

    ablated = {name for variants in ABLATIONS.values() for name in variants}
    points: dict = {}
    for result in _ok(results):
        train = _train_images(result)
        if train and result.get("variant") not in ablated:
            key = (result.get("model"), result.get("family"), result.get("profile"))
            points.setdefault(key, {}).setdefault(train, []).append(result["accuracy"])
    series = {key: value for key, value in points.items() if len(value) > 1}
    if not series:
        return ""
    from harness.report.plots import data_efficiency_png

    target = folder / "data_efficiency.png"
    data_efficiency_png(target, {(f"{model} ({profile})", family): value
                                 for (model, family, profile), value in series.items()})
    sizes = sorted({size for value in series.values() for size in value})
    table = pd.DataFrame([{"model": f"{model} ({family}, {profile})",
                           **{f"{size:,}": _runs_cell(value[size]) if size in value else "" for size in sizes}}
                          for (model, family, profile), value in sorted(series.items(), key=lambda i: str(i[0]))])
    lines = []
    for size in sizes:
        at = {key: _mean(value[size]) for key, value in series.items() if size in value}
        transfer = {k: v for k, v in at.items() if k[1] == "transfer"}
        cnn = {k: v for k, v in at.items() if k[1] != "transfer"}
        if transfer and cnn:
            (t_key, t_acc), (c_key, c_acc) = max(transfer.items(), key=lambda i: i[1]), max(cnn.items(), key=lambda i: i[1])
            lines.append(f"With {size:,} training images the best transfer model, {t_key[0]}, reached {_fmt(t_acc)} "
                         f"against {_fmt(c_acc)} for the best CNN, {c_key[0]} ({100 * (t_acc - c_acc):+.1f} points).")
    return ("## Accuracy against training-set size (the study's third question)\n\n"
            "Test accuracy of the same recipe trained on stratified subsets of the training set "
            "(`--set data.train_size=N`; validation and test sets unchanged). A cell with several runs "
            "(seeds, or variants trained on the same number of images) is their mean.\n\n"
            + table.to_markdown(index=False, disable_numparse=True) + "\n\n"
            + "".join(f"- {line}\n" for line in lines) + ("\n" if lines else "")
            + _link(folder, target, "accuracy against training images") + "\n\n")


def seeds(frame: pd.DataFrame) -> str:
    """Rows averaged over several seeds, with their 95% intervals in words."""
    several = frame[(frame["status"] == "ok") & (pd.to_numeric(frame["runs"], errors="coerce") > 1)]
    if several.empty:
        return ""
    lines = [f"- {row['model']} ({row['stage']}): {_fmt(row['accuracy'])} ± {_fmt(row['accuracy_ci95'])} test "
             f"accuracy over {int(row['runs'])} seeds ({row['seed']}); the 95% interval is Student's t over the "
             f"seeds' accuracies, so a difference smaller than it is not one this many runs can show.\n"
             for _, row in several.iterrows()]
    return "## Runs over several seeds\n\n" + "".join(lines) + "\n"


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


def evaluator_sections(results: list, folder: Path, registry=None) -> list:
    """The section of every installed evaluator with a ``report`` function (those whose numbers
    are not in the results write nothing)."""
    if registry is None:
        from harness import plugins

        registry = plugins.installed()
    parts = []
    for name, registered in registry.evaluators.items():
        if registered.spec.report is None:
            continue
        try:
            parts.append(registered.spec.report(results, folder) or "")
        except Exception as exc:  # noqa: BLE001 - a plugin's section failing leaves the rest of the report
            reason = one_line(exc)
            parts.append(f"## {name}\n\n_the section of evaluator '{name}' (plugin '{registered.plugin}') "
                         f"failed: {reason}_\n\n")
    return parts


def write_report(folder: Path, registry=None) -> Path:
    """Write ``folder/report.md`` from what the folder holds; nothing is recomputed."""
    folder = Path(folder)
    results = leaderboard.read_results(folder)
    frame = leaderboard.table(results)
    parts = ["# Report\n\n", "## Leaderboard\n\n", leaderboard.to_markdown(frame), "\n"]
    if (folder / "pareto.png").is_file():
        parts += [_link(folder, folder / "pareto.png", "accuracy against training time and MACs"), "\n\n"]
    if not frame.empty:
        parts += ["## CNN against transfer learning\n\n", comparison(frame), "\n", study_table(frame)]
    parts += [seeds(frame) if not frame.empty else "", per_class_f1(results), ablation(results),
              data_efficiency(folder, results)]
    parts += evaluator_sections(results, folder, registry)
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
