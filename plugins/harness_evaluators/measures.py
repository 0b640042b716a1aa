"""The optional evaluators' measurements: calibration, robustness to corruptions, latency."""
from __future__ import annotations

from dataclasses import replace


import numpy as np
import torch

from harness_evaluators import corruptions
from harness_evaluators.corruptions import CORRUPTIONS, corrupted_chunks


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
        from harness.toolkit import reliability_png

        reliability_png(ctx.folder / picture, numbers["bins"], f"{ctx.config['model']} ({ctx.stage})", numbers["ece"])
    return {"ece": numbers["ece"], "nll": numbers["nll"], "brier": numbers["brier"],
            "reliability_bins": numbers["bins"], "reliability_png": picture}


def severities(text) -> list:
    """"1-5", "3" or "1,3,5" -> the severities (each 1 to 5)."""
    chosen = []
    for part in str(text).replace(" ", "").split(","):
        low, _, high = part.partition("-")
        chosen += list(range(int(low), int(high or low) + 1))
    if not chosen or any(not 1 <= s <= 5 for s in chosen):
        raise ValueError(f"severities must be 1 to 5 (e.g. 1-5, 3 or 1,3,5), got {text!r}")
    return sorted(set(chosen))


def robustness(ctx) -> dict:
    """Accuracy under each corruption at each severity, from a plain prediction pass (no test-time
    augmentation: one pass per corrupted set), with the clean accuracy of the same plain pass; the
    table of corruption x severity is also written beside ``metrics.json``."""
    from harness.toolkit import predictor

    chosen, seed = severities(ctx.options["severities"]), int(ctx.options["seed"])
    plain = predictor(ctx.model, replace(ctx.recipe, tta_flip=False, tta_translate=0), ctx.input_size, ctx.accel)
    labels = torch.as_tensor(ctx.test_y)

    def accuracy(chunks) -> float:  # one chunk of corrupted images in memory at a time
        right = sum(int((plain(part).argmax(1) == labels[start : start + len(part)]).sum()) for start, part in chunks)
        return right / len(labels)

    by_severity = {name: {str(level): accuracy(corrupted_chunks(name, ctx.test_x, level, seed)) for level in chosen}
                   for name in CORRUPTIONS}
    chunk = corruptions.CHUNK
    clean = accuracy((start, ctx.test_x[start : start + chunk]) for start in range(0, len(labels), chunk))
    every = [value for levels in by_severity.values() for value in levels.values()]
    mean = sum(every) / len(every)
    table = f"robustness-{ctx.stage}.csv"
    if ctx.main:
        from harness.toolkit import write_text

        lines = ["corruption," + ",".join(f"severity_{level}" for level in chosen) + ",mean"]
        for name, levels in by_severity.items():
            values = list(levels.values())
            lines.append(f"{name}," + ",".join(f"{v:.4f}" for v in values) + f",{sum(values) / len(values):.4f}")
        write_text(ctx.folder / table, "\n".join(lines) + "\n")
    return {"corruption_acc": mean, "corruption_clean_acc": clean, "corruption_drop": clean - mean,
            "corruption_severities": chosen,
            "corruption": {name: sum(levels.values()) / len(levels) for name, levels in by_severity.items()},
            "corruption_by_severity": by_severity, "corruption_table": table}


def latency(ctx) -> dict:
    """Batch-1 latency of the whole prediction path (uint8 in, logits out, with the test-time
    augmentation), warm-up excluded; throughput at the evaluation batch size."""
    from harness.toolkit import images_per_second, latency_ms

    one = ctx.test_x[:1]  # the logits come back to the CPU: the device has finished each call
    p50, p95 = latency_ms(lambda: ctx.predict(one), int(ctx.options["warmup"]), int(ctx.options["runs"]))
    size = min(ctx.batch_size, len(ctx.test_x))
    batch = ctx.test_x[:size]
    rate = images_per_second(lambda: ctx.predict(batch), size, int(ctx.options["batches"]))
    return {"latency_ms_p50": p50, "latency_ms_p95": p95, "throughput_img_s": rate, "throughput_batch": size,
            "latency_device": str(ctx.accel.device)}
