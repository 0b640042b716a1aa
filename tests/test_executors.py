"""Executors are plugins: the built-in local and ray ones and an outside package's, through the same
hook; one policy for errors inside a job, whichever executor runs it."""
from __future__ import annotations

import json

import pytest

from conftest import install_plugin, write_canonical
from harness import plugin_registry
from harness.cli import main

pytestmark = pytest.mark.slow

REVERSE_EXECUTOR = '''
from harness import ExecutorSpec, hookimpl
from harness.executors import log, run_job


def run(jobs, context):
    log(f"reverse: {len(jobs)} job(s), note {context.options['note']!r}")
    for job in reversed(jobs):
        context.finished(run_job(job, context))


@hookimpl
def register_executors(register):
    register(ExecutorSpec("reverse", run, options={"note": "none"}, help={"note": "with --executor reverse: a note"},
                          description="the jobs in reverse order"))
'''

FAILING_MODEL = '''
import torch.nn as nn
from harness import ModelSpec, Recipe, Stage, hookimpl
from harness.errors import HarnessError


def build(classes):
    raise HarnessError("this model refuses to be built")


@hookimpl
def register_models(register):
    register(ModelSpec(name="refuses", input_size=32, build=build, recipe=Recipe(stages=[Stage(epochs=1)])))
'''


@pytest.fixture
def data(tmp_path):
    return write_canonical(tmp_path / "cifar-10-batches-py", per_class=(20, 5))


SMALL = ["--profile", "smoke", "--set", "epochs=1", "--set", "data.val_size=15"]


def test_the_built_in_executors_are_plugins():
    registry = plugin_registry.load()
    assert {name: r.plugin for name, r in registry.executors.items() if name in ("local", "ray")} == \
        {"local": "executors", "ray": "executors"}
    assert set(registry.executors["ray"].spec.options) == {"address", "job_cpus", "job_gpus", "node_wait"}


def test_an_outside_executor_is_listed_and_runs_the_jobs(site, tmp_path, data, capsys):
    install_plugin(site, "reverse_executor", REVERSE_EXECUTOR, "reverse", dist="reverse-executor")
    assert main(["list", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)["executors"]}
    assert listed["reverse"]["plugin"] == "reverse" and listed["reverse"]["package"] == "reverse-executor"
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "deep_cnn", "--data", str(data), "--out", str(out), *SMALL,
                 "--executor", "reverse", "--note", "hello"]) == 0
    err = capsys.readouterr().err
    assert "reverse: 2 job(s), note 'hello'" in err
    assert err.index("deep_cnn: done") < err.index("baseline_cnn: done")  # its order, not the local one's
    board = (out / "leaderboard.csv").read_text()
    assert "baseline_cnn" in board and "deep_cnn" in board
    # an option of one executor given to another is one line
    assert main(["run", "--model", "baseline_cnn", "--data", str(data), "--out", str(tmp_path / "o2"), *SMALL,
                 "--note", "x"]) == 2
    assert capsys.readouterr().err.strip() == "harness: error: --note: only used with --executor reverse"


def test_an_error_inside_a_job_fails_its_row_and_the_others_go_on(site, tmp_path, data, capsys):
    install_plugin(site, "refusing_model", FAILING_MODEL, "refusing", dist="refusing-model")
    out = tmp_path / "out"
    assert main(["run", "--model", "refuses", "baseline_cnn", "--data", str(data), "--out", str(out), *SMALL]) == 1
    failed = json.loads((out / "refuses" / "metrics.json").read_text())
    assert failed["status"] == "failed" and failed["reason"] == "this model refuses to be built"
    assert "HarnessError" in (out / "refuses" / "error.log").read_text()
    assert json.loads((out / "baseline_cnn" / "metrics.json").read_text())["status"] == "ok"
    assert "refuses: failed: this model refuses to be built" in capsys.readouterr().err
