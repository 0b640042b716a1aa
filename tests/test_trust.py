"""Trust: data files run no code, one run per model folder, bad weights caught before any work,
a failed write leaves the old files."""
import json
from pathlib import Path
import os
import pickle
import time

import numpy as np
import pytest

from harness.cli import main

from conftest import write_canonical


class Payload:
    """Unpickling this calls ``os.system`` (or ``eval``), which would create ``target``."""

    def __init__(self, target, via="system"):
        self.target, self.via = str(target), via

    def __reduce__(self):
        if self.via == "eval":
            return (eval, (f"open({self.target!r}, 'w').close()",))
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("via", ["system", "eval"])
def test_a_crafted_batch_runs_no_code(tmp_path, capsys, via):
    folder = write_canonical(tmp_path / "cifar-10-batches-py")
    target = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload(target, via), b"labels": [0]}))
    code = main(["data", "info", "--data", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert len(err.strip().splitlines()) == 1
    assert "data_batch_1' is not a CIFAR-10 batch file" in err
    assert ("posix.system" if via == "system" else "builtins.eval") in err


def test_object_arrays_are_refused_and_real_batches_load(tmp_path, capsys):
    folder = write_canonical(tmp_path / "cifar-10-batches-py")
    assert main(["data", "info", "--data", str(folder)]) == 0  # numpy arrays, lists, bytes: allowed
    capsys.readouterr()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.array([1, "x"], dtype=object), "labels": [0]}))
    assert main(["data", "info", "--data", str(folder)]) == 2
    assert "test_batch' is not a CIFAR-10 batch file: it holds an array of dtype object" in capsys.readouterr().err


# --- one run per model folder ------------------------------------------------------------------

def smoke_args(out, data, *extra):
    return ["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
            "--set", "data.val_size=15", "--set", "epochs=2", *extra]


def holder_process():
    """A live process whose command line names harness, as a real run's would."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "harness"])


def test_a_second_run_into_a_locked_model_folder_stops_at_once(tmp_path, capsys):
    from harness.locks import FolderLock

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    other = holder_process()
    try:
        lock = FolderLock(out / "baseline_cnn")
        lock.acquire()
        (out / "baseline_cnn" / ".harness.lock").write_text(json.dumps(
            {"pid": other.pid, "host": __import__("socket").gethostname(), "started": time.time(), "command": "x"}))
        for flags in ((), ("--resume",), ("--overwrite",)):
            assert main(smoke_args(out, data, *flags)) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"is being written by another run: pid {other.pid} on" in err[0], err
            assert "data:" not in "".join(err)
        assert not (out / "baseline_cnn" / "metrics.json").exists()
        # another model into the same --out at the same time is fine
        assert main(smoke_args(out, data)[:2] + ["deep_cnn"] + smoke_args(out, data)[3:]) == 0
    finally:
        other.kill()
        other.wait()
    # its process gone, the lock is taken over with a notice
    assert main(smoke_args(out, data)) == 0
    err = capsys.readouterr().err
    assert f"taking over the lock of '{out / 'baseline_cnn'}' left by pid {other.pid}" in err
    assert not (out / "baseline_cnn" / ".harness.lock").exists()  # released at the end
    board = (out / "leaderboard.csv").read_text()
    assert "baseline_cnn" in board and "deep_cnn" in board


def test_two_commands_at_once_one_stops_within_seconds(tmp_path):
    """The same command started twice at once: the second exits non-zero within 5 s naming the
    first; the first finishes whole."""
    import subprocess
    import sys

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "harness", *smoke_args(out, data)[:-1], "epochs=6"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        lock = out / "baseline_cnn" / ".harness.lock"
        deadline = time.time() + 60
        while not lock.exists() and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(command, stderr=subprocess.PIPE, text=True, timeout=60)
        first_still_running = first.poll() is None
    finally:
        _, first_err = first.communicate(timeout=300)
    # refused at once: while the first was still training, before any data was decoded (the
    # seconds it takes are measured outside the unit tests; see the issue note)
    assert second.returncode == 2 and first_still_running
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.pid} on" in lines[0]
    assert first.returncode == 0, first_err
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 6


# --- checks before the data ---------------------------------------------------------------------

def test_a_damaged_weights_file_stops_before_any_data_within_seconds(tmp_path):
    import subprocess
    import sys

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "tf_mobilenetv3_small_100.in1k.safetensors").write_bytes(b"\x00" * 1000)
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    cache = tmp_path / "cache"
    result = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "mobilenetv3", "--profile", "smoke",
                             "--data", str(data), "--weights-dir", str(weights), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "HARNESS_CACHE_DIR": str(cache)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be read" in lines[0] and "tf_mobilenetv3_small_100" in lines[0], lines
    assert not cache.exists() or not any(cache.rglob("*.npz"))  # no data was decoded (nor cached)


# --- a write that fails midway -------------------------------------------------------------------

def test_a_failed_checkpoint_write_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    import errno

    import torch

    import harness.train
    from harness.train import load_checkpoint

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    real_save, saves = torch.save, []

    def save_then_fill_the_disk(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # the second epoch's checkpoint: half written, then the disk is full
            Path(path).write_bytes(b"PK\x03\x04 half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(harness.train.torch, "save", save_then_fill_the_disk)
    assert main(smoke_args(out, data, "--set", "epochs=3")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "checkpoint.pt' (No space left on device); its previous version is kept" in err[-1]
    assert len([line for line in err if "error" in line]) == 1
    state = load_checkpoint(out / "baseline_cnn" / "checkpoint.pt")
    assert state["epoch"] == 1  # the last good checkpoint, whole
    assert not list((out / "baseline_cnn").glob(".*.tmp"))
    monkeypatch.setattr(harness.train.torch, "save", real_save)
    assert main(smoke_args(out, data, "--set", "epochs=3", "--resume")) == 0
    assert "resuming from stage 'train' epoch 1" in capsys.readouterr().err


def test_a_failed_metrics_write_keeps_the_old_results(tmp_path, capsys, monkeypatch):
    import errno

    import harness.fileio

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    assert main(smoke_args(out, data)) == 0
    before = (out / "baseline_cnn" / "metrics.json").read_bytes()
    capsys.readouterr()

    def no_permission(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(harness.fileio.Path, "write_text", no_permission)
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--eval", "calibration"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metrics.json' (Permission denied); its previous version is kept" in err[0]
    assert (out / "baseline_cnn" / "metrics.json").read_bytes() == before
