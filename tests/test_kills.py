"""A run killed (SIGKILL: no handler runs) at ten moments, inside epochs, during checkpoint and
results writes and during the report, resumes each time and ends with the numbers of a run that
was never interrupted; no temp file is left and every file under --out is whole."""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_canonical
from helpers.timings import without_timings

ROOT = Path(__file__).resolve().parent.parent
# lines of the run's output after which a kill lands in the phase named
TRIGGERS = {
    "inside an epoch": "train epoch 1:",
    "a later epoch or its checkpoint": "train epoch 2:",
    "the last epoch's checkpoint": "train epoch 4:",
    "the stage's weights and predictions": "train epoch 5:",
    "the results files and the report": "test accuracy",
}


def command(out: Path, data: Path, *extra) -> list:
    # on the CPU: bit-for-bit equality is a CPU promise
    return [sys.executable, "-m", "harness", "run", "--model", "baseline_cnn", "--profile", "smoke", "--data",
            str(data), "--out", str(out), "--set", "data.val_size=15", "--set", "epochs=5",
            "--set", "early_stopping=none", "--device", "cpu", *extra]


def environment() -> dict:
    return {**os.environ, "HARNESS_ALLOCATOR": "system"}


def killed_after(args: list, trigger: str, delay: float) -> bool:
    """Start the run; ``delay`` seconds after a line containing ``trigger``, SIGKILL it. Returns
    whether it was killed (False: it finished first)."""
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env=environment(), cwd=ROOT)
    seen = threading.Event()

    def watch():
        for line in process.stderr:
            if trigger in line:
                seen.set()
        seen.set()  # the output ended: finished or died

    threading.Thread(target=watch, daemon=True).start()
    seen.wait(timeout=300)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        return True
    process.wait(timeout=60)
    return False


def numbers(out: Path) -> tuple:
    folder = out / "baseline_cnn"
    metrics = without_timings(json.loads((folder / "metrics.json").read_text()))
    for key in ("stages", "environment", "machine", "accel", "resumed_from"):  # how it ran, not what it found
        metrics.pop(key, None)
    with (folder / "history.csv").open() as rows:
        history = [without_timings(row) for row in csv.DictReader(rows)]
    return metrics, history


def every_file_whole(out: Path) -> None:
    for path in out.rglob("*"):
        if not path.is_file() or path.name == ".harness.lock":
            continue
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            assert list(csv.reader(path.open())), path
        elif path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".npz":
            assert len(np.load(path)["pred"]), path
        elif path.suffix == ".md":
            assert path.read_text().endswith("\n"), path


@pytest.mark.slow
def test_ten_random_kills_resume_to_the_uninterrupted_result(tmp_path):
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    whole = tmp_path / "whole"
    subprocess.run(command(whole, data), env=environment(), cwd=ROOT, check=True, capture_output=True)
    rng = random.Random(20261129)
    kills, rounds, landed = 0, 0, set()
    while kills < 10:  # a round: a fresh run killed in each phase in turn, resumed after each kill
        rounds += 1
        assert rounds <= 15, f"only {kills} kills landed in 15 rounds"
        killed = tmp_path / f"killed-{rounds}"
        resume = []
        # each round starts at a later phase, so the late ones are aimed at by a fresh run too
        phases = list(TRIGGERS.items())[(rounds - 1) % len(TRIGGERS):]
        for phase, trigger in phases:
            # a short delay: on a fast machine the last phases last well under a second
            if kills == 10 or not killed_after(command(killed, data, *resume), trigger, rng.uniform(0, 0.05)):
                break  # the run finished before this kill: the round is over
            kills += 1
            landed.add(phase)
            resume = ["--resume"]
        finished = subprocess.run(command(killed, data, "--resume"), env=environment(), cwd=ROOT,
                                  capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr[-2000:]
        assert numbers(killed) == numbers(whole)
        every_file_whole(killed)
        assert not (killed / "baseline_cnn" / "checkpoint.pt").exists()
    assert len(landed) >= 4, landed  # kills landed in most phases, not only inside the first epochs
