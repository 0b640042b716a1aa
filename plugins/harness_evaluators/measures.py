"""The optional evaluators' measurements: calibration, robustness to corruptions, latency."""
from __future__ import annotations

import time

import numpy as np
import torch

from harness_evaluators.corruptions import CORRUPTIONS, corrupt


def calibration_numbers(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error over ``bins`` equal-width confidence bins (Guo et al. 2017), the
    negative log-likelihood and the (multi-class) Brier score, with the per-bin table."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        accuracy = float(correct[inside].mean()) if count else None
        mean_confidence = float(confidence[inside].mean()) if count else None
        if count:
            ece += count / len(labels) * abs(accuracy - mean_confidence)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                      "accuracy": accuracy, "confidence": mean_confidence})
    picked = probabilities[np.arange(len(labels)), labels]
    onehot = np.eye(probabilities.shape[1])[labels]
    return {
        "ece": float(ece),
        "nll": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "brier": float(((probabilities - onehot) ** 2).sum(1).mean()),
        "bins": table,
    }


def calibration(ctx) -> dict:
    probabilities = torch.softmax(ctx.logits.double(), 1).numpy()
    numbers = calibration_numbers(probabilities, ctx.test_y, int(ctx.options["bins"]))
    picture = f"reliability-{ctx.stage}.png"
    if ctx.main:
        from harness.report.plots import reliability_png

        reliability_png(ctx.folder / picture, numbers["bins"], f"{ctx.config['model']} ({ctx.stage})", numbers["ece"])
    return {"ece": numbers["ece"], "nll": numbers["nll"], "brier": numbers["brier"],
            "reliability_bins": numbers["bins"], "reliability_png": picture}


def robustness(ctx) -> dict:
    severity, seed = int(ctx.options["severity"]), int(ctx.options["seed"])
    labels = torch.as_tensor(ctx.test_y)
    per_corruption = {}
    for name in CORRUPTIONS:
        logits = ctx.predict(corrupt(name, ctx.test_x, severity, seed))
        per_corruption[name] = float((logits.argmax(1) == labels).float().mean())
    clean = float((ctx.logits.argmax(1) == labels).float().mean())
    mean = sum(per_corruption.values()) / len(per_corruption)
    return {"corruption_acc": mean, "corruption_drop": clean - mean, "corruption_severity": severity,
            "corruption": per_corruption}


def latency(ctx) -> dict:
    """Batch-1 latency of the whole prediction path (uint8 in, logits out, with the test-time
    augmentation), warm-up excluded; throughput at the evaluation batch size."""
    one = ctx.test_x[:1]
    for _ in range(int(ctx.options["warmup"])):
        ctx.predict(one)
    times = []
    for _ in range(int(ctx.options["runs"])):
        started = time.perf_counter()
        ctx.predict(one)  # the logits come back to the CPU: the device has finished
        times.append(time.perf_counter() - started)
    size = min(ctx.batch_size, len(ctx.test_x))
    batch = ctx.test_x[:size]
    ctx.predict(batch)
    started = time.perf_counter()
    batches = int(ctx.options["batches"])
    for _ in range(batches):
        ctx.predict(batch)
    elapsed = time.perf_counter() - started
    milliseconds = np.asarray(times) * 1000
    return {"latency_ms_p50": float(np.percentile(milliseconds, 50)),
            "latency_ms_p95": float(np.percentile(milliseconds, 95)),
            "throughput_img_s": size * batches / elapsed, "throughput_batch": size,
            "latency_device": str(ctx.accel.device)}
