"""Scale-out of the zoo: four smoke-size jobs (deep_cnn, four seeds) run by the local executor one
after another with one thread, against Ray with two one-CPU workers. Wall time of the whole command
each way, Ray's start-up included; one run. Both run inside a loopback-only network namespace (Ray
binds to the interface address otherwise). Ray's fixed cost (start 5.4 s, a worker's imports 3.3 s,
stop 1.5 s here) is a large share of shorter jobs: with baseline_cnn and deep_cnn, two seeds each
(jobs of 11 s and 50 s), the same measurement gave 1.54x and 1.61x (README).
Run: python -m pytest benchmarks/test_ray_speedup.py -q -s (nothing else running)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from helpers import loopback  # noqa: E402

JOBS = ["--model", "deep_cnn", "--profile", "smoke", "--seeds", "4"]


def timed_run(out: Path, *options, **env) -> float:
    started = time.perf_counter()
    result = loopback.run([sys.executable, "-m", "harness", "run", *JOBS, "--out", str(out), *options],
                          env=loopback.ray_environment(**env), timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:]
    return time.perf_counter() - started


def accuracies(out: Path) -> dict:
    return {str(p.parent.relative_to(out)): json.loads(p.read_text())["accuracy"] for p in out.rglob("metrics.json")}


def test_ray_with_two_workers_runs_four_jobs_at_least_1_7x_faster(tmp_path):
    pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    why = loopback.unavailable()
    if why:
        pytest.skip(why)
    local = timed_run(tmp_path / "local", OMP_NUM_THREADS="1")
    ray = timed_run(tmp_path / "ray", "--executor", "ray", "--job-cpus", "1")
    assert accuracies(tmp_path / "ray") == accuracies(tmp_path / "local")  # the same four results
    ratio = local / ray
    print(f"\nfour smoke jobs: local executor {local:.1f}s, Ray with 2 workers {ray:.1f}s, speed-up {ratio:.2f}x")
    assert ratio >= 1.7
