"""``--executor ray``: a real local Ray cluster, always inside a loopback-only network namespace
(helpers/loopback.py), never a mock. Skipped, with the reason, where Ray is not installed or the
namespace cannot be made."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import loopback
from helpers.timings import without_timings

HELPERS = Path(__file__).parent / "helpers"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_namespace():
    loopback.require_ray()


def harness_run(out: Path, *options, env=None, timeout=300):
    argv = [sys.executable, "-m", "harness", "run", "--model", "baseline_cnn", "--profile", "smoke",
            "--set", "epochs=2", "--seeds", "2", "--out", str(out), *options]
    return loopback.run(argv, env=env or loopback.ray_environment(), timeout=timeout)


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def history(out: Path, seed: int) -> list:
    """history.csv's rows without the timings."""
    with (out / "baseline_cnn" / f"seed-{seed}" / "history.csv").open() as rows:
        return [without_timings(row) for row in csv.DictReader(rows)]


def assert_complete(folder: Path) -> None:
    """A finished job's folder: every file, no checkpoint or temp file left behind."""
    names = {p.name for p in folder.iterdir()}
    assert {"metrics.json", "config.json", "history.csv", "confusion.png", "curves.png", "train.pt"} <= names, names
    assert not [n for n in names if n.endswith(".tmp") or n == "checkpoint.pt"], names


def test_ray_jobs_match_the_local_executor_seed_for_seed(ray_namespace, tmp_path):
    local = harness_run(tmp_path / "local", env=loopback.ray_environment(OMP_NUM_THREADS="1"))
    assert local.returncode == 0, local.stdout[-3000:]
    remote = harness_run(tmp_path / "ray", "--executor", "ray", "--job-cpus", "1")
    assert remote.returncode == 0, remote.stdout[-3000:]
    assert "ray: 2/2 done" in remote.stdout
    # one machine: each worker maps the driver's cache entry, nothing is copied into the object store
    assert remote.stdout.count("data: mapped from the cache entry") == 2, remote.stdout[-3000:]
    assert "copied from the object store" not in remote.stdout
    for seed in (0, 1):
        mine, theirs = (metrics_of(tmp_path / kind / "baseline_cnn" / f"seed-{seed}") for kind in ("local", "ray"))
        assert mine["environment"]["threads"] == theirs["environment"]["threads"] == 1
        assert theirs["status"] == "ok"
        assert theirs["accuracy"] == mine["accuracy"], seed  # same seed, same threads: the same numbers
        assert history(tmp_path / "ray", seed) == history(tmp_path / "local", seed)
        assert_complete(tmp_path / "ray" / "baseline_cnn" / f"seed-{seed}")
    with open(tmp_path / "ray" / "leaderboard.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["runs"] == "2" and rows[0]["seed"] == "0,1"  # one row: the mean over both
    # resume: both jobs are finished, nothing is handed to Ray again
    again = harness_run(tmp_path / "ray", "--executor", "ray", "--resume")
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("finished earlier") == 2 and "ray:" not in again.stdout


def kill_scenario(out: Path, kills: int, epochs: int = 6) -> dict:
    result = loopback.run([sys.executable, str(HELPERS / "ray_kill.py"), str(out), str(kills), str(epochs)],
                          env=loopback.ray_environment(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def pids_that_trained(log: str, label: str) -> set:
    return set(re.findall(rf"{re.escape(label)} pid=(\d+)\).*epoch 1:", log))


def test_a_killed_worker_is_retried_and_the_other_job_finishes(ray_namespace, tmp_path):
    outcome = kill_scenario(tmp_path / "out", kills=1)
    log = outcome["log"]
    assert len(outcome["killed"]) == 1, log[-3000:]
    assert outcome["returncode"] == 0, log[-3000:]
    # the job started again in another worker, from its first epoch
    assert len(pids_that_trained(log, "harness:baseline_cnn seed 0")) == 2, log[-3000:]
    for seed in (0, 1):
        folder = tmp_path / "out" / "baseline_cnn" / f"seed-{seed}"
        assert metrics_of(folder)["status"] == "ok"
        assert_complete(folder)
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_a_worker_killed_on_every_try_is_a_failed_row(ray_namespace, tmp_path):
    outcome = kill_scenario(tmp_path / "out", kills=2)
    log = outcome["log"]
    assert len(outcome["killed"]) == 2, log[-3000:]
    assert outcome["returncode"] == 1, log[-3000:]  # a model failed; its row says why
    failed = metrics_of(tmp_path / "out" / "baseline_cnn" / "seed-0")
    assert failed["status"] == "failed" and "worker lost after 2 tries" in failed["reason"]
    assert (tmp_path / "out" / "baseline_cnn" / "seed-0" / "error.log").is_file()
    assert metrics_of(tmp_path / "out" / "baseline_cnn" / "seed-1")["status"] == "ok"
    assert not list((tmp_path / "out").rglob("*.tmp"))


def scratch_folders() -> set:
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("harness-ray-*"))


def test_ctrl_c_keeps_finished_jobs_and_resume_trains_the_rest(ray_namespace, tmp_path):
    out = tmp_path / "out"
    before = scratch_folders()
    outcome = kill_scenario(out, kills=-1, epochs=2)
    assert scratch_folders() <= before  # the cancelled task's scratch folder went with the run
    log = outcome["log"]
    assert outcome["returncode"] == 130, log[-3000:]
    assert "ray: interrupted; 1 finished jobs kept, 1 cancelled" in log
    assert metrics_of(out / "baseline_cnn")["status"] == "ok"
    assert_complete(out / "baseline_cnn")
    assert not (out / "deep_cnn" / "metrics.json").exists()
    resumed = loopback.run([sys.executable, "-m", "harness", "run", "--model", "baseline_cnn", "deep_cnn", "--profile",
                            "smoke", "--set", "epochs=2", "--executor", "ray", "--out", str(out), "--resume"],
                           env=loopback.ray_environment(), timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "baseline_cnn: finished earlier" in resumed.stdout and "ray: 1/1 done: deep_cnn ok" in resumed.stdout
    assert_complete(out / "deep_cnn")


def test_without_ray_the_executor_is_a_one_line_error(tmp_path):
    """Ray hidden from the import system: the refusal names the pip command, before any data."""
    script = ("import sys; sys.modules['ray'] = None; from harness.cli import main; "
              f"sys.exit(main(['run', '--model', 'baseline_cnn', '--executor', 'ray', '--out', {str(tmp_path)!r}]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("harness: error: --executor ray needs Ray: pip install -e '.[ray]' "
                                     "(or pip install 'ray>=2.9')")
    assert not (tmp_path / "baseline_cnn").exists()


@pytest.mark.parametrize("options, message", [
    (["--address", "auto"], "--address: only used with --executor ray"),
    (["--executor", "ray", "--nproc", "2"], "--executor ray runs each job in one process"),
    (["--executor", "ray", "--job-cpus", "0"], "--job-cpus must be above 0"),
])
def test_executor_options_that_cannot_work_are_refused(tmp_path, capsys, options, message):
    from harness.cli import main

    assert main(["run", "--model", "baseline_cnn", "--out", str(tmp_path), *options]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "baseline_cnn").exists()


def test_ray_under_torchrun_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """torchrun started by hand around --executor ray: the same line as --nproc with it, before anything."""
    from harness.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", "--model", "baseline_cnn", "--out", str(tmp_path), "--executor", "ray"]) == 2
    assert "--executor ray runs each job in one process; --nproc/torchrun spread" in capsys.readouterr().err
    assert not (tmp_path / "baseline_cnn").exists()


def test_ray_jobs_keep_one_mlflow_run_each_with_artifacts_under_out(ray_namespace, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="pip install -e .[mlflow]")
    out = tmp_path / "ray"
    env = {k: v for k, v in loopback.ray_environment().items() if k != "MLFLOW_TRACKING_URI"}  # --out's store
    result = harness_run(out, "--executor", "ray", "--job-cpus", "1", "--callback", "mlflow", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    runs = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["baseline_cnn seed 0", "baseline_cnn seed 1"]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.metrics["test_accuracy"] >= 0
        assert run.info.artifact_uri.startswith((out.resolve() / "mlflow-artifacts").as_uri())
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "history.csv"} <= names, names
