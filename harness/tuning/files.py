"""What a tuning leaves: per model ``tuning/space.json`` (the terms: budget, space, pruner, sampler),
``tuning/trials.csv`` (one row per trial) and ``tuning/best.json`` (the best trial's settings as
``--set`` pairs, which ``harness run --tuned`` reads). ``harness.tuning.report`` writes the folder's
``tuning.png`` and ``report.md`` from them."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import write_json, write_text
from harness.tuning.space import Choice, Range, describe, edges

SPACE, TRIALS, BEST = "space.json", "trials.csv", "best.json"
# what makes two tunings comparable: a study goes on only under the terms it began with
TERMS = ("budget", "pruner", "sampler", "seed", "profile", "set", "space")
COSTS = ("epochs", "train_flop", "train_time_s", "busy")


def write_space(folder: Path, model: str, space: dict, request, fixed: dict, started: bool) -> None:
    """The study's terms; a study that ``started`` (has trials) goes on only under the terms it
    began with, and keeps the command that began it."""
    terms = {"model": model, "trials": request.trials, "budget": {**request.budget.as_dict(), "set": fixed},
             "budget_text": request.budget.describe(), "pruner": request.pruner, "sampler": f"TPE, seed {request.seed}",
             "seed": request.seed, "profile": request.run.profile, "set": request.run.overrides,
             "space": describe(space), "command": request.run.command}
    if started and (folder / SPACE).is_file():
        before = read_space(folder)
        differ = [key for key in TERMS if json.loads(json.dumps(terms[key])) != before.get(key)]
        if differ:
            raise HarnessError(f"{model}: the study in '{folder}' was made on other terms (they differ in "
                               f"{', '.join(differ)}); tune with its own terms, or into another --out")
        terms["command"] = before.get("command", terms["command"])
    write_json(folder / SPACE, terms)


def read_space(folder: Path) -> dict:
    return json.loads((Path(folder) / SPACE).read_text())


def space_of(terms: dict) -> dict:
    """``space.json``'s space back as ranges and choices."""
    return {key: Range(d["low"], d["high"], d["log"], d["integer"]) if d["kind"] == "range" else Choice(tuple(d["values"]))
            for key, d in terms["space"].items()}


def best_trial(study):
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(done, key=lambda trial: trial.value, default=None)


def trial_rows(study, keys: list) -> list:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        values = trial.intermediate_values
        value = trial.value if trial.value is not None else (values[max(values)] if values else None)
        rows.append({"number": trial.number, "state": trial.state.name.lower(), "val_acc": value,
                     "last_epoch": max(values) if values else trial.user_attrs.get("epochs"),
                     **{key: trial.params.get(key) for key in keys},
                     **{key: trial.user_attrs.get(key) for key in COSTS if key != "epochs"},
                     "reason": trial.user_attrs.get("reason", "")})
    return rows


def write_study(folder: Path, study, space: dict) -> None:
    """``trials.csv`` and ``best.json`` as the study now stands."""
    keys = list(space)
    rows = trial_rows(study, keys)
    buffer = io.StringIO()
    columns = ["number", "state", "val_acc", "last_epoch", *keys, "train_flop", "train_time_s", "busy", "reason"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(folder / TRIALS, buffer.getvalue())
    best = best_trial(study)
    if best is None:
        return
    terms = read_space(folder)
    write_json(folder / BEST, {
        "model": terms["model"], "trial": best.number, "val_acc": best.value, "set": dict(best.params),
        "pairs": [f"{key}={value!r}" for key, value in best.params.items()], "edges": edges(best.params, space),
        "budget": terms["budget"], "budget_text": terms["budget_text"], "trials": terms["trials"],
        "finished": sum(1 for row in rows if row["state"] in ("complete", "pruned")),
        "profile": terms["profile"], "tuned_with": terms["set"]})


def studies_in(out: Path) -> list:
    """Every ``<model>/tuning`` folder under ``out`` with a study's terms, by model name."""
    return sorted(path.parent for path in Path(out).glob(f"*/tuning/{SPACE}"))


def read_trials(folder: Path) -> list:
    path = Path(folder) / TRIALS
    return list(csv.DictReader(path.open())) if path.exists() else []
