"""Times taken while other processes used the cores are marked busy, and no seconds are compared
with them: the measurement itself, and a run with both cores kept busy by other processes."""
import json
import re
import subprocess
import sys

import pytest

from harness import cores
from harness.cli import main
from harness.cores import Snapshot, use

from conftest import install_plugin


@pytest.mark.parametrize("machine_s, others, busy", [(20.0, 0.0, False), (23.0, 0.3, True), (21.5, 0.15, False),
                                                      (35.0, 1.5, True)])
def test_a_phase_is_busy_when_others_left_it_less_than_nine_tenths_of_its_cores(monkeypatch, machine_s, others, busy):
    monkeypatch.setattr(cores, "cpus", lambda: 2)
    # 10 s of wall time, 20 s of this process's CPU (both cores); the machine used machine_s in all
    got = use(Snapshot(0.0, 0.0, 100.0), Snapshot(10.0, 20.0, 100.0 + machine_s), threads=2)
    assert (got["share"], got["others"], got["busy"]) == (1.0, others, busy)


def test_without_the_machines_counters_busy_is_unknown(monkeypatch):
    monkeypatch.setattr(cores, "cpus", lambda: 2)
    assert use(Snapshot(0.0, 0.0, None), Snapshot(10.0, 5.0, None), threads=2)["busy"] is None
    assert cores.any_busy([{"busy": None}, None]) is None and cores.any_busy([{"busy": False}, {"busy": True}])


@pytest.fixture
def both_cores_busy():
    """Two processes that spin on the CPU for the length of the test, stopped by their ids."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores.cpus())]
    yield
    for process in spinners:
        process.kill()
        process.wait()


TINY = """
import torch
from harness import ModelSpec, Recipe, Stage, hookimpl

@hookimpl
def register_models(register):
    register(ModelSpec(name="tiny_other", family="transfer", input_size=32,
                       build=lambda n: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, n)),
                       recipe=Recipe(stages=[Stage("train", epochs=1)])))
"""


@pytest.mark.slow
def test_a_run_on_busy_cores_says_so_and_compares_no_seconds(site, both_cores_busy, tmp_path, capsys):
    install_plugin(site, "tiny_other", TINY, "tiny_other")  # a second family: the report compares the two
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "tiny_other", "--profile", "smoke", "--out", str(out),
                 "--set", "epochs=1", "--set", "data.train_size=200", "--set", "data.test_size=100"]) == 0
    err = capsys.readouterr().err
    assert "other processes are using" in err and "marked busy" in err
    for model in ("baseline_cnn", "tiny_other"):
        metrics = json.loads((out / model / "metrics.json").read_text())
        assert metrics["busy"] is True and metrics["stages"][0]["cores"]["busy"] is True
        assert metrics["stages"][0]["cores"]["others"] > 0.2
    board = (out / "leaderboard.md").read_text()
    assert len(re.findall(r" s busy +\|", board)) == 2
    report = (out / "report.md").read_text()
    assert "the time)" not in report and "no comparison of seconds" in report
