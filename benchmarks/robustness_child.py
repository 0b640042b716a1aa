"""One measured process of test_robustness_memory.py: the robustness evaluator (6 corruptions x 5
severities, the clean pass) over N random 224 px images held in memory, scored by a small conv
net. Prints one JSON line: the process's peak memory before and after the evaluator.
Usage: python robustness_child.py N"""
from __future__ import annotations

import json
import resource
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

from harness import plugin_registry
from harness.accel import CPU
from harness.config import resolve
from harness_evaluators.measures import robustness

SIZE = 224


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    config = resolve(plugin_registry.load(report=False).models["baseline_cnn"].spec, "quick", {})
    config.update(input_size=SIZE, eval_batch_size=256)
    ctx = SimpleNamespace(model=model, config=config, accel=CPU, test_x=x, test_y=rng.integers(0, 10, n),
                          options={"severities": "1-5", "seed": 0}, stage="train", main=False, folder=None)
    before, started = peak_mb(), time.perf_counter()
    result = robustness(ctx)
    print(json.dumps({"images": n, "peak_before_mb": before, "peak_after_mb": peak_mb(),
                      "seconds": time.perf_counter() - started, "corruption_acc": result["corruption_acc"]}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
