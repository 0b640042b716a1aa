"""``report.md``: the zoo's leaderboard, the CNN-vs-transfer comparison in words (citing the paired
test), time and compute to accuracy, a per-class F1 heatmap, each kind of variant in its own section
against its base model (ablations, training-set sizes, seed repeats, other named variants), every
model's confusion matrix and training curves, and what produced every row (command, config, seed,
versions, commit, weights, machine). Apart from the leaderboard's evaluator columns, no table is wider than 12
columns."""
from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pandas as pd

from harness.errors import one_line
from harness.fileio import write_text
from harness.compute import flop_text
from harness.report import is_number, leaderboard, number
from harness.report.compare import compare
from harness.status import Status

_text = partial(number, missing="n/a")  # a number in a sentence: n/a where a cell would be empty


def _href(folder: Path, target: Path) -> str:
    """A relative link; ``./`` first where the first folder has a colon (``timm:resnet18/``), which a
    Markdown viewer would otherwise read as a URL scheme."""
    relative = target.relative_to(folder).as_posix()
    return f"./{relative}" if ":" in relative.split("/", 1)[0] else relative


def _link(folder: Path, target: Path, text: str) -> str:
    return f"![{text}]({_href(folder, target)})" if target.is_file() else f"_{text}: missing_"


def _zoo_ok(rows: list) -> list:
    return [r for r in rows if r["section"] == "zoo" and r.get("status") == Status.OK and is_number(r.get("accuracy"))]


def _same_machine(a: dict, b: dict) -> bool:
    return a.get("machine") == b.get("machine") and a.get("machine") != "machine not recorded"


def cost_words(win: dict, lose: dict) -> str:
    """The cost of the winner against the loser: training compute, and seconds only when both ran
    on one machine (times from two machines are not comparable)."""
    parts = []
    if is_number(win.get("train_flop")) and is_number(lose.get("train_flop")) and lose["train_flop"]:
        parts.append(f"{flop_text(win['train_flop'])} of training compute against {flop_text(lose['train_flop'])} "
                     f"({float(win['train_flop']) / float(lose['train_flop']):.1f}x)")
    quiet = win.get("busy") is not True and lose.get("busy") is not True  # busy cores' seconds are no speed
    if _same_machine(win, lose) and quiet and is_number(win.get("train_time_s")) and is_number(lose.get("train_time_s")) \
            and lose["train_time_s"]:
        parts.append(f"{float(win['train_time_s']):.0f} s of training against {float(lose['train_time_s']):.0f} s on "
                     f"the same machine ({float(win['train_time_s']) / float(lose['train_time_s']):.1f}x the time)")
    if is_number(win.get("macs")) and is_number(lose.get("macs")) and lose["macs"]:
        parts.append(f"{float(win['macs']) / float(lose['macs']):.1f}x the MACs per image")
    if not quiet:
        parts.append("no comparison of seconds (taken while other processes used the cores)")
    return (" It costs " + ", ".join(parts) + ".") if parts else ""


def difference_words(a: dict, b: dict) -> str:
    """The paired result of ``a`` against ``b`` in words, or that the test set cannot tell them apart."""
    result = compare(a, b)
    if result is None:
        return "no paired comparison could be made (the two results were not scored on the same test set)"
    words = result.words(a["model"], b["model"])
    if not (result.better if result.beats else result.significant):
        images = ""
        test = (a.get("members") or [{}])[0].get("test_images")
        if test:
            images = f" on {int(test):,} test images"
        return f"not distinguishable{images} ({words})"
    return words


# what a family is, in the report's words: "scratch" is an architecture made for transfer learning
# trained with --no-pretrained, a CNN from scratch as much as the "cnn" family is
FAMILY_WORDS = {"cnn": "CNN", "transfer": "transfer model", "scratch": "transfer architecture trained from scratch"}


def family_words(family) -> str:
    if not family:  # a result written before families were recorded
        return "model"
    return FAMILY_WORDS.get(family, f"{family} model")


def comparison(rows: list) -> str:
    """Which family won, by how much (with the paired test), at what cost: words from the numbers."""
    best = {}
    for row in _zoo_ok(rows):
        best.setdefault(row.get("family"), row)
    if not best:
        return "No model has finished yet.\n"
    if len(best) == 1:
        (family, row), = best.items()
        return (f"Only the {family} family ran here; its best row is {row['model']} ({row['stage']}) at "
                f"{_text(row['accuracy'])} test accuracy. Run {'a CNN' if family == 'transfer' else 'transfer models'} "
                "as well to compare the two.\n")
    ranked = sorted(best.items(), key=lambda item: -item[1]["accuracy"])
    (win_family, win), (lose_family, lose) = ranked[0], ranked[1]
    text = (f"The best {family_words(win_family)}, {win['model']} ({win['stage']}), reached {_text(win['accuracy'])} "
            f"test accuracy against {_text(lose['accuracy'])} for the best {family_words(lose_family)}, "
            f"{lose['model']} ({lose['stage']}): {difference_words(win, lose)}.")
    return text + cost_words(win, lose) + "\n"


def published_table(frame: pd.DataFrame, registry) -> str:
    """The zoo's accuracies beside those published for its models (``ModelSpec.published``)."""
    rows = []
    for registered in registry.models.values():
        spec = registered.spec
        for stage, figure in spec.published.items():
            match = frame[(frame["model"] == spec.name) & ((frame["stage"] == stage) if stage else True)]
            match = match[match["status"] == Status.OK]
            if not match.empty:
                ours = match.iloc[0]["accuracy"]
                rows.append([spec.name, stage or match.iloc[0]["stage"], spec.published_by, f"{figure:.4f}",
                             _text(ours), f"{100 * (ours - figure):+.1f}"])
    if not rows:
        return ""
    table = pd.DataFrame(rows, columns=["model", "stage", "published by", "published", "here", "points"])
    return "## Against published figures\n\n" + table.to_markdown(index=False, disable_numparse=True) + "\n\n"


def convergence(folder: Path, rows: list) -> str:
    """Time, images and compute to 50/70/80/90% validation accuracy per zoo row, and the plot of
    validation accuracy against training compute."""
    from harness.compute import ACCURACY_TARGETS
    from harness.report.plots import convergence_png

    series, table = {}, []
    for row in _zoo_ok(rows):
        history = _history(Path(row["members"][0]["path"]) / "history.csv") if row.get("members") else []
        points = [(float(h["train_flop"]), float(h["val_acc"])) for h in history if h.get("train_flop")]
        if points:
            series[row["model"]] = ([p[0] for p in points], [p[1] for p in points])
        cells = {}
        for target in ACCURACY_TARGETS:
            key = f"to_val_{round(target * 100)}"
            flop, seconds = row.get(f"{key}_flop"), row.get(f"{key}_s")
            cells[f"val {target:.0%}"] = ("not reached" if not is_number(flop) and not is_number(seconds) else
                                          " / ".join(x for x in (flop_text(flop) if is_number(flop) else "",
                                                                 leaderboard.duration(seconds)) if x))
        machine = str(row.get("machine")) + (" (busy: no speed figure)" if row.get("busy") is True else "")
        table.append({"model": row["model"], "machine": machine, **cells})
    if not table:
        return ""
    target = folder / "convergence.png"
    if series:
        convergence_png(target, series)
    return ("## Time and compute to accuracy\n\nThe training compute and training seconds at the end of the first "
            "epoch whose validation accuracy reached each level (seconds compare only within one machine; the "
            "machine is named). The plot is validation accuracy against training compute for every zoo row.\n\n"
            + pd.DataFrame(table).to_markdown(index=False, disable_numparse=True) + "\n\n"
            + (_link(folder, target, "validation accuracy against training compute") + "\n\n" if series else ""))


def _history(path: Path) -> list:
    import csv

    try:
        with path.open() as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def per_class_f1(folder: Path, rows: list, results: list) -> str:
    """Per-class F1 of every zoo row (mean over its seeds) as a heatmap: models x classes."""
    from harness.report.plots import f1_heatmap_png

    by_path = {r["path"]: r for r in results}
    names, values, classes = [], [], []
    for row in _zoo_ok(rows):
        per_seed = []
        for member in row.get("members") or []:
            stage = next((s for s in (by_path.get(member["path"]) or {}).get("stages") or []
                          if isinstance(s, dict) and s.get("name") == row["stage"]), {})
            if isinstance(stage.get("per_class"), dict):
                classes = classes or list(stage["per_class"])
                per_seed.append([(stage["per_class"].get(c) or {}).get("f1", float("nan")) for c in classes])
        if per_seed:
            names.append(row["model"])
            values.append([sum(v) / len(v) for v in zip(*per_seed)])
    if not names:
        return ""
    target = folder / "per_class_f1.png"
    f1_heatmap_png(target, names, classes, values)
    return ("## Per-class F1 (test set)\n\nEvery zoo model's F1 per class (the mean over its seeds); "
            "every number is in each model's `metrics.json` (`per_class`).\n\n"
            + _link(folder, target, "per-class F1 heatmap") + "\n\n")


def _ok(results: list) -> list:
    return [r for r in results if r.get("status") == Status.OK and isinstance(r.get("accuracy"), (int, float))]


def _train_images(result: dict):
    return (result.get("data") or {}).get("train")


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _ablated() -> set:
    from harness.profiles import ABLATED_VARIANTS

    return ABLATED_VARIANTS


def variant_kind(row: dict, rows: list) -> str:
    """ablation | seeds | size | other: which report section a variant row belongs to."""
    ablated = _ablated()
    if row.get("variant") in ablated or any(r.get("base") == row["model"] and r.get("variant") in ablated
                                            for r in rows):
        return "ablation"
    if (row.get("runs") or 1) > 1:
        return "seeds"
    base = next((r for r in rows if r["model"] == row.get("base")), None)
    if base is not None and _train_images(row) != _train_images(base):
        return "size"
    return "other"


def variant_table(rows: list) -> str:
    """Variants against their base models, by the same paired tests as the zoo."""
    shown = []
    for row in rows:
        shown.append({
            "variant": row["model"], "stage": row["stage"], "base": row.get("base") or "",
            "train images": f"{_train_images(row):,}" if _train_images(row) else "",
            "accuracy (95% interval)": leaderboard.interval_cell(row),
            "variant minus base (points)": _base_cell(row),
            "test": row.get("test_vs_base") or "", "epochs": _text(row.get("epochs"), 0),
            "train compute": flop_text(row.get("train_flop")) if is_number(row.get("train_flop")) else "",
            "machine": row.get("machine") or ""})
    return pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True) + "\n\n"


def _base_cell(row: dict) -> str:
    if row.get("not_comparable"):
        return f"not comparable: {row['not_comparable']}"
    if not is_number(row.get("p_vs_base")):
        return ""
    p = float(row["p_vs_base"])
    beats = (f", P(variant > base) {row['pab_vs_base']:.2f} [{row['pab_low_vs_base']:.2f}, {row['pab_high_vs_base']:.2f}]"
             if is_number(row.get("pab_vs_base")) else "")
    return (f"{100 * row['diff_vs_base']:+.2f} [{100 * row['diff_vs_base_low']:+.2f}, {100 * row['diff_vs_base_high']:+.2f}]"
            + (" p<0.001" if p < 0.001 else f" p={p:.2g}") + beats)


def ablation(rows: list) -> str:
    """The study's second question: what early stopping and ReduceLROnPlateau each bring, from
    ``--ablate callbacks`` runs compared with the recipe as it is (same model, command, data)."""
    chosen = [r for r in rows if r["section"] == "variant" and r.get("status") == Status.OK
              and variant_kind(r, rows) == "ablation"]
    if not chosen:
        return ""
    by_model = {r["model"]: r for r in rows}
    prose = []
    for row in chosen:
        base = by_model.get(row.get("base"))
        words = {"no-early-stopping": "Without early stopping", "no-reduce-lr": "Without ReduceLROnPlateau"}
        if row.get("variant") not in words or base is None:
            continue
        line = (f"{words[row['variant']]}, {row['plain_model']} ({row.get('profile')} profile, "
                f"{_train_images(row) or 0:,} training images) ran {_text(row.get('epochs'), 0)} epochs against "
                f"{_text(base.get('epochs'), 0)} and reached {_text(row['accuracy'])} test accuracy against "
                f"{_text(base['accuracy'])}: {difference_words(row, base)}.")
        if is_number(row.get("train_flop")) and is_number(base.get("train_flop")) and base["train_flop"]:
            line += f" It used {float(row['train_flop']) / float(base['train_flop']):.2f}x the training compute."
        prose.append(line)
    return ("## Early stopping and learning-rate reduction (the study's second question)\n\n"
            "`--ablate callbacks` trains the recipe as it is and with each callback turned off: without early "
            "stopping every stage runs its full epochs; without ReduceLROnPlateau the learning rate stays fixed "
            "(early stopping still ends the stage). Each variant is compared with the recipe as it is, run by "
            "the same command, on the same test images.\n\n"
            + variant_table(sorted(chosen, key=lambda r: str(r["model"])))
            + "".join(f"- {line}\n" for line in prose) + ("\n" if prose else ""))


def _runs_cell(accuracies: list) -> str:
    return _text(_mean(accuracies)) + (f" ({len(accuracies)} runs)" if len(accuracies) > 1 else "")


def data_efficiency(folder: Path, results: list, rows: list) -> str:
    """The study's third question: accuracy against training-set size, per model and profile; the
    plot and, where a transfer model and another family share sizes, the gap between them in words."""
    ablated = _ablated()
    points: dict = {}
    for result in _ok(results):
        train = _train_images(result)
        if train and result.get("variant") not in ablated:
            key = (result.get("model"), result.get("family"), result.get("profile"))
            # a seed counts once at a size: a seed-repeat variant's seed 0 is the zoo run's seed again
            points.setdefault(key, {}).setdefault(train, {}).setdefault(result.get("seed"), result["accuracy"])
    series = {key: {size: list(by_seed.values()) for size, by_seed in value.items()}
              for key, value in points.items() if len(value) > 1}
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
    final = [r for r in rows if r.get("status") == Status.OK and r["section"] in ("zoo", "variant")
             and r.get("variant") not in ablated and (r.get("runs") or 1) == 1 and is_number(r.get("accuracy"))]
    for size in sizes:
        at = [r for r in final if _train_images(r) == size and r.get("final", True)]
        transfer = [r for r in at if r.get("family") == "transfer"]
        others = [r for r in at if r.get("family") != "transfer"]  # CNNs, architectures from scratch, plugins'
        if transfer and others:
            t, c = max(transfer, key=lambda r: r["accuracy"]), max(others, key=lambda r: r["accuracy"])
            lines.append(f"With {size:,} training images the best transfer model, {t['model']}, reached "
                         f"{_text(t['accuracy'])} against {_text(c['accuracy'])} for the best "
                         f"{family_words(c.get('family'))}, {c['model']}: {difference_words(t, c)}.")
    sized = [r for r in rows if r["section"] == "variant" and r.get("status") == Status.OK and variant_kind(r, rows) == "size"]
    return ("## Accuracy against training-set size (the study's third question)\n\n"
            "Test accuracy of the same recipe trained on stratified subsets of the training set "
            "(`--set data.train_size=N`; validation and test sets unchanged). A cell with several runs "
            "(seeds, or variants trained on the same number of images) is their mean.\n\n"
            + table.to_markdown(index=False, disable_numparse=True) + "\n\n"
            + "".join(f"- {line}\n" for line in lines) + ("\n" if lines else "")
            + _link(folder, target, "accuracy against training images") + "\n\n"
            + ("Each size against the model trained on the whole training set:\n\n"
               + variant_table(sorted(sized, key=lambda r: str(r["model"]))) if sized else ""))


def seeds(rows: list) -> str:
    """Rows over several seeds: zoo rows with their interval in words, and seed-repeat variants
    against their base by the same tests."""
    several = [r for r in rows if r.get("status") == Status.OK and (r.get("runs") or 1) > 1 and r["section"] == "zoo"]
    repeats = [r for r in rows if r["section"] == "variant" and r.get("status") == Status.OK
               and variant_kind(r, rows) == "seeds"]
    if not several and not repeats:
        return ""
    lines = [f"- {row['model']} ({row['stage']}): {_text(row['accuracy'])} ± {_text(row['accuracy_ci95'])} test "
             f"accuracy over {int(row['runs'])} seeds ({row['seed']}); the 95% interval is Student's t over the "
             f"seeds' accuracies, so a difference smaller than it is not one this many runs can show.\n"
             for row in several + repeats]
    return ("## Runs over several seeds\n\n" + "".join(lines) + "\n" + paired_repeats(several)
            + (variant_table(repeats) if repeats else ""))


def tuned(rows: list, folder: Path) -> str:
    """Which rows trained with settings 'harness tune' found, and on what terms."""
    chosen = [r for r in rows if r["section"] == "zoo" and isinstance(r.get("tuned"), dict)]
    if not chosen:
        return ""
    lines = [f"- {row['model']}: the best of {row['tuned']['trials']} trials of {row['tuned']['budget']} in "
             f"`{os.path.relpath(Path(row['tuned']['from']).resolve(), Path(folder).resolve())}` (trial {row['tuned']['trial']}, validation accuracy "
             f"{_text(row['tuned']['val_acc'])} on the tuning's terms; its report.md has the search space)\n"
             for row in chosen]
    return ("## Tuned recipes\n\nThese models trained with the settings `harness tune` found for them (`--tuned`); "
            "every other setting is the profile's:\n\n" + "".join(lines) + "\n")


def paired_repeats(zoo_rows: list) -> str:
    """Each zoo row against the one above over their paired repeats: P(A > B) and the rule the ranks use."""
    lines = []
    for row in zoo_rows:
        if is_number(row.get("pab_vs_above")) and row.get("above_model"):
            above, this = row["above_model"], row["model"]
            lines.append(f"- {above} beats {this} in {int(row['wins_vs_above'])} of {int(row['repeats_vs_above'])} "
                         f"paired runs, P({above} > {this}) = {row['pab_vs_above']:.2f} "
                         f"[{row['pab_low_vs_above']:.2f}, {row['pab_high_vs_above']:.2f}]\n")
    if not lines:
        return ""
    return ("Over paired repeats (the same seeds, each with its own training and validation images and the same "
            "test images), the chance that one model beats the other, with a bootstrap 95% interval over the "
            "repeats; a model ranks above another when that chance is at least 0.75 and its interval's low end is "
            "above 0.5 (Bouthillier et al., MLSys 2021):\n\n" + "".join(lines) + "\n")


def other_variants(rows: list) -> str:
    chosen = [r for r in rows if r["section"] == "variant" and r.get("status") == Status.OK
              and variant_kind(r, rows) == "other"]
    if not chosen:
        return ""
    return ("## Other variants\n\nNamed variants (`--variant NAME`) against their base model, by the same paired "
            "tests as the zoo.\n\n" + variant_table(chosen))


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
        f"- full config: [{config_path.relative_to(folder).as_posix()}]({_href(folder, config_path)})"
        if config_path.is_file() else "- full config: missing",
    ]
    return "\n".join(lines) + "\n"


def models_section(folder: Path, results: list) -> str:
    """A link per run to the ``README.md`` written beside its results: what produced it (command,
    recipe, seed, versions, commit, weights, machine), its confusion matrix and curves."""
    links, others = [], []
    for result in results:
        where = Path(result["path"])
        title = result["run"] + (f" seed {result.get('seed')}" if where.name.startswith("seed-") else "")
        if result.get("status") != Status.OK:
            others.append(f"{title} ({result.get('status')})")
            continue
        readme = where / "README.md"
        write_text(readme, model_readme(title, where, result))
        links.append(f"[{title}]({_href(folder, readme)})")
    if not links and not others:
        return ""
    return ("## Models\n\nWhat produced each run (command, recipe, seed, versions, commit, weights, machine), with "
            "its confusion matrix and training curves, is in the `README.md` beside its results: "
            + ", ".join(links) + "." + (f" Not run: {', '.join(others)} (the leaderboard says why)." if others else "")
            + "\n")


def model_readme(title: str, where: Path, result: dict) -> str:
    machine = (result.get("machine") or {}).get("label") or "not recorded"
    busy = " (other processes used the cores: its times are no speed figure)" if result.get("busy") is True else ""
    point = result.get("resumed_from")
    resumed = (f" Resumed from its checkpoint after stage '{point['stage']}' epoch {point['epoch']}: the "
               f"training time counts every epoch, the wall time (`wall_time_s`) only the resumed part."
               if isinstance(point, dict) else "")
    return (f"# {title}\n\nTest accuracy {_text(result.get('accuracy'))} ({result.get('stage')}), machine: "
            f"{machine}{busy}.{resumed}\n\n" + provenance(where, result) + "\n"
            + _link(where, where / "confusion.png", f"{title} confusion matrix") + "\n\n"
            + _link(where, where / "curves.png", f"{title} training curves") + "\n")


def evaluator_sections(results: list, folder: Path, registry) -> list:
    """The section of every registered evaluator with a ``report`` function (those whose numbers
    are not in the results write nothing)."""
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


def write_report(folder: Path, registry, ranked: "leaderboard.Ranked | None" = None) -> Path:
    """Write ``folder/report.md`` from what the folder holds (``ranked``: as ``leaderboard.rank``
    gives it); nothing is retrained."""
    folder = Path(folder)
    ranked = ranked or leaderboard.rank(folder)
    results, rows, frame = ranked.results, ranked.rows, ranked.frame
    parts = ["# Report\n\n"]
    if not frame.empty:  # the answers first: the study's question, in words from the paired tests
        parts += ["## CNN against transfer learning\n\n", comparison(rows), "\n", published_table(frame, registry)]
    parts += ["## Leaderboard\n\n", leaderboard.legend(frame, registry), leaderboard.to_markdown(frame, registry), "\n"]
    if (folder / "pareto.png").is_file():
        parts += [_link(folder, folder / "pareto.png", "accuracy against training compute and MACs"), "\n\n"]
    parts += [tuned(rows, folder), ablation(rows), data_efficiency(folder, results, rows), seeds(rows), convergence(folder, rows),
              per_class_f1(folder, rows, results), other_variants(rows)]
    parts += evaluator_sections(results, folder, registry)
    if (folder / "samples.png").is_file():
        parts += ["## The data\n\n", _link(folder, folder / "samples.png", "sample training images"), "\n\n"]
    parts.append(models_section(folder, results))
    target = folder / "report.md"
    write_text(target, "".join(parts))
    return target
