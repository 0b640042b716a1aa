"""The tuning's report section: the terms every model had, then per model its trials, its best
validation accuracy and settings, and the best values at an end of their range."""
from __future__ import annotations

import json
from pathlib import Path

from harness.fileio import write_text
from harness.tuning import files


def _count(rows: list, state: str) -> int:
    return sum(1 for row in rows if row["state"] == state)


def model_row(folder: Path) -> dict:
    terms, rows = files.read_space(folder), files.read_trials(folder)
    best_path = Path(folder) / files.BEST
    best = json.loads(best_path.read_text()) if best_path.exists() else None
    return {"model": terms["model"], "terms": terms, "rows": rows, "best": best}


def tuning_markdown(out: Path, folders: list) -> str:
    models = [model_row(folder) for folder in folders]
    lines = ["# Tuning", ""]
    if not models:
        return "\n".join(lines + ["No study in this folder.", ""])
    first = models[0]["terms"]
    same = all((m["terms"]["trials"], m["terms"]["budget_text"], m["terms"]["pruner"], m["terms"]["set"])
               == (first["trials"], first["budget_text"], first["pruner"], first["set"]) for m in models)
    lines += [("Every model had the same terms: " if same else f"**The models had different terms**: {first['model']} ")
              + f"{first['trials']} trials of {first['budget_text']} each, profile {first['profile']}, "
              f"Optuna's {first['sampler']} sampler, pruner {first['pruner']}"
              + (f", data and recipe settings {_pairs(first['set'])}" if first["set"] else "")
              + ("" if same else "; " + "; ".join(_terms_text(m["terms"]) for m in models[1:]))
              + ". Trials are scored on validation images only; the test set is not read while tuning.", ""]
    lines += ["| model | trials (finished / pruned / failed) | best val. acc. | best trial | settings |",
              "|---|---|---|---|---|"]
    for m in models:
        rows, best = m["rows"], m["best"]
        counts = f"{_count(rows, 'complete')} / {_count(rows, 'pruned')} / {_count(rows, 'fail')}"
        cells = (f"{best['val_acc']:.4f} | {best['trial']} | {_pairs(best['set'])}" if best
                 else "no finished trial | | ")
        lines.append(f"| {m['model']} | {counts} | {cells} |")
    flagged = [f"- {m['model']}: {line}" for m in models if m["best"] for line in m["best"]["edges"]]
    if flagged:
        lines += ["", "Best values at an end of their range (the optimum may lie outside it):", "", *flagged]
    lines += ["", "![best validation accuracy so far](tuning.png)", "", "Search spaces:", ""]
    for m in models:
        space = "; ".join(f"{key}: {d['text']}" for key, d in m["terms"]["space"].items())
        lines.append(f"- {m['model']} ({m['terms']['budget_text']}: {_pairs(m['terms']['budget']['set'])}): {space}")
    commands = [f"- {m['model']}: `{m['terms']['command']}`" for m in models if m["terms"].get("command")]
    if commands:
        lines += ["", "The command that began each study:", "", *commands]
    names = " ".join(m["model"] for m in models)
    closing = f"Train with the best settings: `harness run --model {names} --tuned {out}`"
    if commands:  # --tuned reads best.json's settings only: the rest is in each study's command
        closing += (", with the profile, data, weights and `--set` pairs of each model's command that should hold at "
                    "full scale (a proxy's `data.train_size` should not).")
    return "\n".join(lines + ["", closing, ""])


def _terms_text(terms: dict) -> str:
    settings = f", settings {_pairs(terms['set'])}" if terms["set"] else ""
    return f"{terms['model']} {terms['trials']} trials of {terms['budget_text']}, pruner {terms['pruner']}{settings}"


def _pairs(values: dict) -> str:
    return ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in values.items())


def write_overview(out: Path) -> None:
    """``tuning.png`` and ``report.md`` for every study under ``out``."""
    from harness.report.plots import tuning_png

    folders = files.studies_in(out)
    curves = {files.read_space(folder)["model"]: files.read_trials(folder) for folder in folders}
    tuning_png(Path(out) / "tuning.png", curves)
    write_text(Path(out) / "report.md", tuning_markdown(out, folders))
