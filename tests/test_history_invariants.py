"""Invariants every history.csv must satisfy, checked on fresh runs and on the published
reference results: a stage stopped early ends exactly ``patience`` epochs after its best epoch;
under ReduceLROnPlateau the LR never rises and never goes below ``min_lr``."""
import csv
import json
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


def check_history(folder: Path) -> int:
    """Assert the invariants for one model folder; returns how many stages were checked."""
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = list(csv.DictReader((folder / "history.csv").open()))
    checked = 0
    for stage in config["stages"]:
        epochs = [r for r in rows if r["stage"] == stage["name"]]
        result = next(s for s in metrics["stages"] if s["name"] == stage["name"])
        assert [int(r["epoch"]) for r in epochs] == list(range(1, len(epochs) + 1))
        stopping = stage["early_stopping"]
        if stopping and len(epochs) < stage["epochs"]:
            assert len(epochs) == result["best_epoch"] + stopping["patience"], folder
        plateau = stage["reduce_lr"]
        if plateau:
            lrs = [float(r["lr"]) for r in epochs]
            assert all(b <= a for a, b in zip(lrs, lrs[1:])), folder
            assert min(lrs) >= plateau["min_lr"] * (1 - 1e-9), folder
        checked += 1
    return checked


def test_invariants_on_a_fresh_run_that_stops_early_and_cuts_the_lr(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--out", str(out), "--set", "epochs=40",
                 "--set", "early_stopping.patience=3", "--set", "reduce_lr.patience=1",
                 "--set", "reduce_lr.min_lr=2e-4", "--set", "data.train_size=300",
                 "--set", "stages.train.schedule=none"]) == 0  # the smoke recipe's one-cycle excludes the plateau
    assert check_history(out / "baseline_cnn") == 1
    rows = list(csv.DictReader((out / "baseline_cnn" / "history.csv").open()))
    assert len(rows) < 40 and len({r["lr"] for r in rows}) > 1  # it did stop early and cut the LR


REFERENCE = sorted(p.parent for p in (ROOT / "results" / "reference").glob("*/*/metrics.json"))


@pytest.mark.parametrize("folder", REFERENCE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_invariants_on_published_reference_results(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    if metrics.get("status") != "ok":
        pytest.skip(f"{folder.name}: {metrics.get('status')}")
    assert check_history(folder) >= 1
