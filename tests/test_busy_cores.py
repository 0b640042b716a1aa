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


def test_the_parts_of_an_interrupted_phase_join_into_one():
    busy = {"wall_s": 10.0, "cpu_s": 20.0, "threads": 2, "share": 1.0, "others": 1.5, "busy": True}
    quiet = {"wall_s": 30.0, "cpu_s": 60.0, "threads": 2, "share": 1.0, "others": 0.0, "busy": False}
    joined = cores.joined(busy, quiet)
    assert joined == {"wall_s": 40.0, "cpu_s": 80.0, "threads": 2, "share": 1.0, "others": 0.375, "busy": True}
    assert cores.joined(quiet, quiet)["busy"] is False and cores.joined(None, quiet) == quiet
    assert cores.joined({**quiet, "busy": None, "others": None}, quiet)["busy"] is None


class SimulatedLoad:
    """``cores.snapshot`` with the machine's counter made up: while ``others`` is set, other
    processes are taken to use that many cores' worth besides this process."""

    def __init__(self, monkeypatch):
        self.others, self.extra, self.last = 0.0, 0.0, None
        self.real = cores.snapshot
        monkeypatch.setattr(cores, "snapshot", self)
        monkeypatch.setattr(cores, "cpus", lambda: 2)

    def __call__(self) -> Snapshot:
        now = self.real()
        if self.last is not None:
            self.extra += self.others * (now.wall - self.last)
        self.last = now.wall
        return Snapshot(now.wall, now.own, now.own + self.extra)


def test_a_stage_busy_before_its_interruption_stays_busy_when_resumed_on_quiet_cores(tmp_path, monkeypatch):
    from harness.specs import Recipe, Stage
    from harness.train import Setup, Trainer, Watch, load_checkpoint

    from helpers.callbacks import after_each_epoch
    from helpers.models import default_callbacks, net, tiny_splits

    load = SimulatedLoad(monkeypatch)
    recipe = Recipe(stages=[Stage(name="train", lr=0.05, epochs=4, batch_size=16, early_stopping=None)])

    def trainer():
        return Trainer(net(), tiny_splits(), recipe, Setup(input_size=8, seed=0),
                       Watch(checkpoint=tmp_path / "c.pt", callbacks=default_callbacks(), show_progress=False))

    def busy_then_killed(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt  # epoch 2's checkpoint is the last on disk

    load.others = 2.0  # both cores taken by others while epochs 1 to 3 ran
    with pytest.raises(KeyboardInterrupt):
        after_each_epoch(trainer(), busy_then_killed).fit()
    checkpoint = load_checkpoint(tmp_path / "c.pt")
    assert checkpoint["cores"]["busy"] is True
    load.others = 0.0
    resumed = trainer()
    fit = resumed.fit(checkpoint)
    assert [row["epoch"] for row in fit.history] == [1, 2, 3, 4]
    stage_cores = fit.stages[0].cores
    assert stage_cores["busy"] is True and stage_cores["others"] > 0
    assert stage_cores["wall_s"] > checkpoint["cores"]["wall_s"]  # both parts' seconds, as train_time_s has


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
