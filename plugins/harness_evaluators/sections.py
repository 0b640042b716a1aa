"""The report's section for each optional evaluator, built from the results it left in each
model's ``metrics.json``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report import evaluated_stages, number
from harness_evaluators.corruptions import CORRUPTIONS


def calibration(results: list, folder: Path) -> str:
    rows, pictures = [], []
    for title, stage, where in evaluated_stages(results, "calibration"):
        rows.append({"model": title, "stage": stage["name"], "ECE": number(stage.get("ece")),
                     "NLL": number(stage.get("nll")), "Brier": number(stage.get("brier"))})
        picture = Path(where) / str(stage.get("reliability_png"))
        if picture.is_file():
            pictures.append(f"![{title} ({stage['name']}) reliability]({picture.relative_to(folder).as_posix()})")
    if not rows:
        return ""
    return ("## Calibration\n\nExpected calibration error over 15 confidence bins (lower is better), negative "
            "log-likelihood and Brier score of the test-set probabilities; the reliability diagrams plot accuracy "
            "against confidence per bin (a calibrated model follows the diagonal).\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n" + "\n".join(pictures) + "\n\n")


def robustness(results: list, folder: Path) -> str:
    rows = []
    for title, stage, _ in evaluated_stages(results, "robustness"):
        per = stage.get("corruption") or {}
        rows.append({"model": title, "stage": stage["name"], "severity": stage.get("corruption_severity"),
                     "clean": number(stage.get("accuracy")), "mean": number(stage.get("corruption_acc")),
                     **{name: number(per.get(name)) for name in CORRUPTIONS}})
    if not rows:
        return ""
    return ("## Robustness to common corruptions\n\nTest accuracy under corruptions computed on the fly after "
            "CIFAR-10-C (Hendrycks & Dietterich), each at the severity shown, seeded; `mean` is the "
            "`corruption_acc` column of the leaderboard.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n")


def latency(results: list, folder: Path) -> str:
    rows = []
    for title, stage, _ in evaluated_stages(results, "latency"):
        rows.append({"model": title, "stage": stage["name"], "device": stage.get("latency_device"),
                     "batch-1 p50 (ms)": number(stage.get("latency_ms_p50"), 2),
                     "batch-1 p95 (ms)": number(stage.get("latency_ms_p95"), 2),
                     "throughput (img/s)": number(stage.get("throughput_img_s"), 0),
                     "at batch": stage.get("throughput_batch")})
    if not rows:
        return ""
    return ("## Latency\n\nThe whole prediction path (uint8 image in, logits out, with the model's test-time "
            "augmentation) on the run's device, warm-up excluded.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n")
