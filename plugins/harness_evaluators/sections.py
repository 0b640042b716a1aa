"""The report's section for each optional evaluator, built from the results it left in each
model's ``metrics.json``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.toolkit import evaluated_stages, is_number, number
from harness_evaluators.corruptions import CORRUPTIONS


def calibration(results: list, folder: Path) -> str:
    from harness.toolkit import reliability_grid_png

    rows, panels = [], []
    for title, stage, where in evaluated_stages(results, "calibration"):
        rows.append({"model": title, "stage": stage["name"], "ECE": number(stage.get("ece")),
                     "NLL": number(stage.get("nll")), "Brier": number(stage.get("brier"))})
        if stage.get("reliability_bins"):
            panels.append((f"{title} ({stage['name']})", stage["reliability_bins"], stage.get("ece")))
    if not rows:
        return ""
    grid = ""
    if panels:
        reliability_grid_png(Path(folder) / GRID, panels)
        grid = f"![reliability diagrams, one per model and stage]({GRID})\n\n"
    return ("## Calibration\n\nExpected calibration error over 15 confidence bins (lower is better), negative "
            "log-likelihood and Brier score of the test-set probabilities; the reliability diagrams plot accuracy "
            "against confidence per bin (a calibrated model follows the diagonal; each model folder also has its "
            "own, with the share of images per bin).\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n" + grid)


GRID = "reliability.png"  # every stage's reliability diagram, in the results folder


REFERENCE_MODEL = "baseline_cnn"  # mCE's denominator, as AlexNet is CIFAR-10-C's and ImageNet-C's


def mean_corruption_error(by_severity: dict, reference: dict) -> float | None:
    """CIFAR-10-C's mCE: for each corruption, the model's errors summed over severities divided by
    the reference model's, then the mean over corruptions (1.0 = as robust as the reference)."""
    ratios = []
    for name, levels in by_severity.items():
        shared = [level for level in levels if level in (reference.get(name) or {})]
        base = sum(1 - reference[name][level] for level in shared)
        if not shared or base <= 0:
            return None
        ratios.append(sum(1 - levels[level] for level in shared) / base)
    return sum(ratios) / len(ratios) if ratios else None


def _reference(results: list, stage: dict):
    """The reference model's corruption table on the same test set (fingerprints equal)."""
    for title, other, _ in evaluated_stages(results, "robustness"):
        if title == REFERENCE_MODEL and other.get("test_fingerprint") == stage.get("test_fingerprint") \
                and other.get("corruption_by_severity"):
            return other["corruption_by_severity"]
    return None


def robustness(results: list, folder: Path) -> str:
    rows, tables = [], []
    for title, stage, where in evaluated_stages(results, "robustness"):
        per = stage.get("corruption") or {}
        by_severity = stage.get("corruption_by_severity")
        reference = _reference(results, stage) if by_severity else None
        rows.append({"model": title, "stage": stage["name"],
                     "severity levels": _levels(stage), "clean": number(stage.get("corruption_clean_acc", stage.get("accuracy"))),
                     "mean": number(stage.get("corruption_acc")),
                     "mCE": number(mean_corruption_error(by_severity, reference), 3) if reference else "",
                     **{name: number(per.get(name)) for name in CORRUPTIONS}})
        table = Path(where) / str(stage.get("corruption_table"))
        if stage.get("corruption_table") and table.is_file():
            tables.append(f"[{title} ({stage['name']})]({table.relative_to(folder).as_posix()})")
    if not rows:
        return ""
    return ("## Robustness to common corruptions\n\nTest accuracy under corruptions computed on the fly after "
            "CIFAR-10-C (Hendrycks & Dietterich), seeded, from one plain prediction pass per corrupted set (no "
            "test-time augmentation; `clean` is the same plain pass on the clean images). Each corruption's "
            "column is its mean over the severities run; `mean` (the leaderboard's `corruption_acc`) is the mean "
            f"over every corruption and severity; `mCE` is the mean corruption error relative to {REFERENCE_MODEL} "
            "scored on the same test set (below 1: more robust). Accuracy per corruption and severity: "
            + (", ".join(tables) if tables else "in each model's `metrics.json`") + ".\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n")


def _levels(stage: dict) -> str:
    """The severity levels run, said as levels: "1-5", "3 only", "1,3,5"."""
    chosen = stage.get("corruption_severities") or ([stage["corruption_severity"]]
                                                     if stage.get("corruption_severity") is not None else [])
    if len(chosen) == 1:
        return f"{chosen[0]} only"
    if chosen:
        return f"{min(chosen)}-{max(chosen)}" if chosen == list(range(min(chosen), max(chosen) + 1)) else ",".join(map(str, chosen))
    return ""


def latency(results: list, folder: Path) -> str:
    rows = []
    runs = {str(Path(r["path"])): r for r in results}
    for title, stage, where in evaluated_stages(results, "latency"):
        run = runs.get(str(Path(where))) or {}
        machine = (run.get("machine") or {}).get("label") or "machine not recorded"
        device = stage.get("latency_device")
        busy = " (busy cores: no speed figure)" if run.get("busy") is True else ""
        rows.append({"model": title, "stage": stage["name"],
                     "machine": (machine if device == "cpu" else f"{machine} ({device})") + busy,
                     "batch-1 p50 (ms)": number(stage.get("latency_ms_p50"), 2),
                     "batch-1 p95 (ms)": number(stage.get("latency_ms_p95"), 2),
                     "throughput (img/s)": number(stage.get("throughput_img_s"), 0),
                     "at batch": stage.get("throughput_batch")})
    if not rows:
        return ""
    return ("## Latency\n\nThe whole prediction path (uint8 image in, logits out, with the model's test-time "
            "augmentation) on the run's device, warm-up excluded; times compare only within one machine.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n")


def deployment(results: list, folder: Path) -> str:
    """The deploy evaluator's table (float32 and int8 ONNX models in ONNX Runtime) and its plot."""
    from harness.toolkit import deployment_png

    rows, points, machines = [], [], set()
    runs = {str(Path(r["path"])): r for r in results}
    for title, stage, where in evaluated_stages(results, "deploy"):
        run = runs.get(str(Path(where))) or {}
        machines.add((run.get("machine") or {}).get("label") or "machine not recorded")
        rows.append({"model": title, "stage": stage["name"], **_deploy_cells(stage)})
        if is_number(stage.get("onnx_ms_p50")) and is_number(stage.get("onnx_acc")):
            int8 = (stage["int8_ms_p50"], stage["int8_acc"]) if is_number(stage.get("int8_ms_p50")) else None
            points.append((f"{title} ({stage['name']})", (stage["onnx_ms_p50"], stage["onnx_acc"]), int8))
    if not rows:
        return ""
    machine = "; ".join(sorted(machines))
    plot = ""
    if points:
        deployment_png(Path(folder) / "deployment.png", points, machine)
        plot = "![accuracy against batch-1 latency, float32 and int8](deployment.png)\n\n"
    providers = sorted({stage.get("onnx_provider") for _, stage, _ in evaluated_stages(results, "deploy")} - {None})
    return ("## Deployment: ONNX Runtime, float32 and int8\n\nEach stage exported to ONNX and run by ONNX Runtime "
            f"({machine}; {', '.join(providers) or 'CPUExecutionProvider'}; threads as the run's): `agree` is "
            "the share of test images whose top-1 class matches PyTorch's float32 prediction; latency is one "
            "image at a time (p50/p95 in ms), throughput at the serving batch (`eval.deploy.serving_batch`, 32 "
            "unless set). int8 is static post-training quantization (QDQ, per-channel weights, ranges fitted "
            "on `eval.deploy.calibration_images` training images, 256 unless set); `int8 - fp32` is its "
            "accuracy change on the same test images "
            "with the paired bootstrap 95% interval and the exact McNemar p. Times compare only within one "
            "machine.\n\n" + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n" + plot)


def _deploy_cells(stage: dict) -> dict:
    error = stage.get("onnx_error") or stage.get("int8_error")
    change = ""
    if is_number(stage.get("int8_diff")):
        p = stage["int8_p"]
        change = (f"{100 * stage['int8_diff']:+.2f} [{100 * stage['int8_diff_low']:+.2f}, "
                  f"{100 * stage['int8_diff_high']:+.2f}] " + ("p<0.001" if p < 0.001 else f"p={p:.2g}"))
    return {"agree": number(stage.get("onnx_agree")), "fp32 acc": number(stage.get("onnx_acc")),
            "fp32 ms p50/p95": _pair(stage, "onnx"), "fp32 img/s": number(stage.get("onnx_img_s"), 0),
            "int8 acc": number(stage.get("int8_acc")), "int8 - fp32 (points)": change, "int8 ms p50/p95": _pair(stage, "int8"),
            "int8 speed-up": f"{stage['int8_speedup']:.2f}x" if is_number(stage.get("int8_speedup")) else "",
            "MB fp32/int8": "/".join(f"{stage[k]:.1f}" for k in ("onnx_mb", "int8_mb") if is_number(stage.get(k))),
            "failed": error or ""}


def _pair(stage: dict, prefix: str) -> str:
    p50, p95 = stage.get(f"{prefix}_ms_p50"), stage.get(f"{prefix}_ms_p95")
    return f"{p50:.2f}/{p95:.2f}" if is_number(p50) and is_number(p95) else ""
