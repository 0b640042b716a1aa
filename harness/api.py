"""The notebook API (fastai-style): ``harness.run(...)`` and ``harness.leaderboard(...)``.

``run``'s keywords are ``harness run``'s options (``harness.run_options.RunOptions``) plus the
chosen executor's; they become the same ``RunOptions`` the command line's flags do, and the same
``start`` runs them, in this process (``nproc`` starts torchrun's processes as children and waits).
A user error raises ``HarnessError`` (one line) instead of exiting. It returns the leaderboard as a
pandas DataFrame.
"""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

LISTS = ("seed", "eval", "callback")  # a keyword that takes one value or a list of them


def run(models="all", *, data=None, profile="quick", out="results", **keywords):
    """Train and evaluate ``models`` ("all" or a list of names) like ``harness run``; returns the
    leaderboard of ``out`` as a DataFrame (every column of ``leaderboard.csv``). Keywords:
    ``set={"epochs": 3}``, ``eval=["calibration"]``, ``callback="tensorboard"``, ``seed=[0, 1]``
    or ``seeds=3``, ``amp=True``, ``nproc=2``, ``executor="ray", job_cpus=1``, ..."""
    from harness import plugin_registry
    from harness.errors import HarnessError
    from harness.run_options import argv_of, start

    registry = plugin_registry.load()
    options = options_from_keywords(registry, models, data=data, profile=profile, out=out, **keywords)
    code = start(options, registry, "harness " + shlex.join(argv_of(options)))  # recorded in config.json
    if code not in (0, 1):  # 1: some model failed; its row says why
        raise HarnessError(f"harness run stopped with exit code {code}")
    return leaderboard(out)


def options_from_keywords(registry, models="all", **keywords):
    """The ``RunOptions`` of ``harness.run``'s arguments; an unknown keyword is a one-line error."""
    from harness.errors import unknown
    from harness.run_options import RunOptions, executor_option_names

    fields = {f.name for f in dataclasses.fields(RunOptions)} - {"models", "executor_options"}
    executor_keys = executor_option_names(registry)
    for key in keywords:
        if key not in fields and key not in executor_keys:
            raise unknown("option", key, sorted(fields) + executor_keys, "of harness.run()")
    given = {key: value for key, value in keywords.items() if key in fields}
    for key in LISTS:
        if key in given and isinstance(given[key], (str, int)):
            given[key] = [given[key]]
        elif key in given and given[key] is not None:
            given[key] = list(given[key])
    if "out" in given:
        given["out"] = Path(given["out"])
    names = None if models == "all" else [models] if isinstance(models, str) else list(models)
    return RunOptions(models=names, **given, executor_options={k: v for k, v in keywords.items() if k in executor_keys})


def leaderboard(*paths):
    """The leaderboard of one or more results folders as a DataFrame, recomputing nothing."""
    from harness.errors import HarnessError
    from harness.report import leaderboard as board

    folders = [Path(p) for p in (paths or ("results",))]
    for folder in folders:
        if not folder.is_dir():
            raise HarnessError(f"results folder '{folder}' does not exist")
    return board.table(board.read_results(*folders))
