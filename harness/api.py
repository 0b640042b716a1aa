"""The notebook API (fastai-style): ``harness.run(...)`` and ``harness.leaderboard(...)``.

``run`` turns its arguments into the command line's and calls the very function ``harness run``
calls, so a notebook and a shell run the same code; a user error raises ``HarnessError`` (one line)
instead of exiting. It returns the leaderboard as a pandas DataFrame.
"""
from __future__ import annotations

from pathlib import Path

# keyword -> command-line option, for the options that take a value
VALUED = {"seeds": "--seeds", "variant": "--variant", "ablate": "--ablate", "weights_dir": "--weights-dir",
          "dataset": "--dataset", "device": "--device", "nproc": "--nproc",
          "executor": "--executor", "address": "--address", "job_cpus": "--job-cpus", "job_gpus": "--job-gpus"}
FLAGS = {"resume": "--resume", "overwrite": "--overwrite", "download": "--download", "compile": "--compile",
         "no_pretrained": "--no-pretrained", "sync_bn": "--sync-bn"}


def run_arguments(models="all", *, data=None, profile="quick", out="results", **options) -> list:
    """The ``harness run`` arguments for these keywords (``set={"epochs": 3}`` -> ``--set epochs=3``,
    ``eval=["calibration"]``, ``callback=["tensorboard"]``, ``seed=[0, 1]``, ``amp=True``, ``seeds=3``, ...)."""
    argv = ["run", *(["--all"] if models == "all" else ["--model", *([models] if isinstance(models, str) else models)])]
    argv += ["--profile", profile, "--out", str(out)] + (["--data", str(data)] if data is not None else [])
    for key, value in options.items():
        if key == "set":
            argv += [item for k, v in value.items() for item in ("--set", f"{k}={_text(v)}")]
        elif key in ("eval", "callback", "seed"):
            values = [value] if isinstance(value, (str, int)) else list(value)
            argv += [item for v in values for item in (f"--{key}", str(v))]
        elif key in ("amp", "channels_last"):
            argv.append(f"--{'' if value else 'no-'}{key.replace('_', '-')}")
        elif key in VALUED:
            argv += [VALUED[key], str(value)]
        elif key in FLAGS:
            argv += [FLAGS[key]] if value else []
        else:
            from harness.errors import unknown

            raise unknown("option", key, ["set", "eval", "callback", "seed", "amp", "channels_last", *VALUED, *FLAGS],
                          "of harness.run()")
    return argv


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run(models="all", *, data=None, profile="quick", out="results", **options):
    """Train and evaluate ``models`` ("all" or a list of names) like ``harness run``; returns the
    leaderboard of ``out`` as a DataFrame (every column of ``leaderboard.csv``)."""
    from harness.cli import build_parser, cmd_run
    from harness.errors import HarnessError

    argv = run_arguments(models, data=data, profile=profile, out=out, **options)
    code = cmd_run(build_parser().parse_args(argv), argv)
    if code not in (0, 1):  # 1: some model failed; its row says why
        raise HarnessError(f"harness run stopped with exit code {code}")
    return leaderboard(out)


def leaderboard(*paths):
    """The leaderboard of one or more results folders as a DataFrame, recomputing nothing."""
    from harness.errors import HarnessError
    from harness.report import leaderboard as board

    folders = [Path(p) for p in (paths or ("results",))]
    for folder in folders:
        if not folder.is_dir():
            raise HarnessError(f"results folder '{folder}' does not exist")
    return board.table(board.read_results(*folders))
