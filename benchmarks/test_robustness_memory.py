"""The robustness evaluator's memory does not grow with the test set: it corrupts and scores the
images a chunk at a time. Each size runs in a fresh process (robustness_child.py) that reports its
peak memory before and after the evaluator; the evaluator's share is the difference.

Run, with nothing else on the machine (about 3 minutes on 2 cores):
python -m pytest benchmarks/test_robustness_memory.py -q -s
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SIZES = (500, 1_500)
FLAT_MB = 300  # what the larger set may add over the smaller one's share
ALLOWED_MB = 3_000  # the evaluator's share at 224 px, whatever the size
CHILD = Path(__file__).with_name("robustness_child.py")


def measure(n: int) -> dict:
    done = subprocess.run([sys.executable, str(CHILD), str(n)], capture_output=True, text=True, timeout=900,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_robustness_memory_is_flat_in_the_test_sets_size():
    runs = [measure(n) for n in SIZES]
    added = [run["peak_after_mb"] - run["peak_before_mb"] for run in runs]
    for run, extra in zip(runs, added):
        print(f"{run['images']} images at 224 px: peak {run['peak_before_mb']:.0f} MB before the evaluator, "
              f"{run['peak_after_mb']:.0f} MB after (+{extra:.0f} MB), {run['seconds']:.0f} s")
    assert added[1] <= added[0] + FLAT_MB, added
    assert max(added) <= ALLOWED_MB, added
