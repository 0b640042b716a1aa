"""Trust: data files run no code, one run per model folder, bad weights caught before any work,
a failed write leaves the old files, files honour the umask."""
import errno
import io
import json
import os
import pickle
import time
from pathlib import Path

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

class FillsUp(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, path, room: int):
        self.file, self.room = open(path, "wb"), room

    def writable(self):
        return True

    def write(self, data):
        if self.room < len(data):
            self.file.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def close(self):
        self.file.close()
        super().close()


def test_a_full_disk_during_a_checkpoint_fails_the_model_in_one_line(tmp_path, capsys, monkeypatch):
    """torch's own writer meets the full disk in its stream: the row says so, the last good
    checkpoint is kept, and --resume continues from it once there is room."""
    import harness.fileio
    from harness.train import load_checkpoint

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    real_open, opened = harness.fileio.open_for_writing, []

    def the_second_checkpoint_fills_the_disk(path):
        opened.append(Path(path).name)
        checkpoints = [name for name in opened if name.startswith(".checkpoint.pt.")]
        return FillsUp(path, 4096) if len(checkpoints) == 2 and opened[-1] == checkpoints[-1] else real_open(path)

    monkeypatch.setattr(harness.fileio, "open_for_writing", the_second_checkpoint_fills_the_disk)
    assert main(smoke_args(out, data, "--set", "epochs=3")) == 1  # a failed model, not a crash
    err = capsys.readouterr().err.strip().splitlines()
    failed = [line for line in err if "failed:" in line]
    assert len(failed) == 1 and "No space left on device" in failed[0] and "checkpoint.pt'" in failed[0], err
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left on device" in metrics["reason"]
    assert "checkpoint.pt" in metrics["reason"]
    assert load_checkpoint(out / "baseline_cnn" / "checkpoint.pt")["epoch"] == 1  # the last good one, whole
    assert not list((out / "baseline_cnn").glob(".*.tmp"))
    monkeypatch.setattr(harness.fileio, "open_for_writing", real_open)
    assert main(smoke_args(out, data, "--set", "epochs=3", "--resume")) == 0
    assert "resuming from stage 'train' epoch 1" in capsys.readouterr().err


def test_results_files_honour_the_umask(tmp_path):
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    for mask, readable in ((0o022, True), (0o077, False)):
        out = tmp_path / f"out-{mask:o}"
        old = os.umask(mask)
        try:
            assert main(smoke_args(out, data)) == 0
        finally:
            os.umask(old)
        files = [path for path in out.rglob("*") if path.is_file() and path.name != ".harness.lock"]
        assert len(files) >= 8 and {"leaderboard.md", "metrics.json", "train.pt"} <= {f.name for f in files}
        for path in files:
            mode = path.stat().st_mode & 0o777
            assert mode == 0o666 & ~mask, (path.name, oct(mode))
            assert bool(mode & 0o004) == readable


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


def test_predict_lists_the_most_probable_classes_first(tmp_path, capsys):
    from PIL import Image

    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    assert main(smoke_args(out, data)) == 0
    images = []
    for i, colour in enumerate(((200, 30, 30), (30, 200, 30), (90, 90, 220))):
        images.append(tmp_path / f"{i}.png")
        Image.new("RGB", (32, 32), colour).save(images[-1])
    capsys.readouterr()
    assert main(["predict", "--model-dir", str(out / "baseline_cnn"), *map(str, images), "--top", "3"]) == 0
    for line in capsys.readouterr().out.strip().splitlines():
        probabilities = [float(entry.rsplit(" ", 1)[1]) for entry in line.split(": ", 1)[1].split(", ")]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True), line


def test_every_results_file_is_written_through_a_rename(tmp_path, monkeypatch):
    """Temp file, then rename: a reader or a crash sees the old file or the new one, never half."""
    import harness.fileio

    renamed, real_replace = [], os.replace

    def replace(source, target):
        assert Path(source).name.startswith(f".{Path(target).name}.") and str(source).endswith(".tmp")
        renamed.append(Path(target).name)
        return real_replace(source, target)

    monkeypatch.setattr(harness.fileio.os, "replace", replace)
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path / "out"
    assert main(smoke_args(out, data)) == 0
    written = {p.name for p in out.rglob("*") if p.is_file() and p.name != ".harness.lock"}
    assert {"metrics.json", "leaderboard.md", "leaderboard.csv", "report.md", "history.csv", "config.json",
            "train.pt", "predictions-train.npz"} <= written
    assert written <= set(renamed), written - set(renamed)
