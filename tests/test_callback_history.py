"""Early stopping and ReduceLROnPlateau moved from fixed trainer code to callback plugins; a seeded
run must train exactly as before. ``data/history_before_callbacks.csv`` was written by the trainer
at commit 7706a22 (before callbacks were plugins) from the run below: two stages, LR cuts on
val_acc and on val_loss, early stops on both, ``min_delta``."""
import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers.models import default_callbacks
from harness.data import Splits
from harness.specs import Augment, EarlyStopping, Recipe, ReduceLROnPlateau, Stage
from harness.train import Setup, Trainer, Watch

from conftest import pattern_images

STORED = Path(__file__).parent / "data" / "history_before_callbacks.csv"


def seeded_run():
    x, y = pattern_images(30, 4, size=8, seed=11)
    vx, vy = pattern_images(12, 4, size=8, seed=12)
    rng = np.random.default_rng(0)  # label noise, so validation stalls and the callbacks act
    noisy = rng.random(len(y)) < 0.3
    y = y.copy()
    y[noisy] = rng.integers(0, 4, noisy.sum())
    splits = Splits([str(c) for c in range(4)], x, y, vx, vy, vx, vy)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 16), nn.ReLU(), nn.Linear(16, 4))
    stages = [
        Stage(name="a", lr=0.02, epochs=30, batch_size=16, early_stopping=EarlyStopping(patience=5),
              reduce_lr=ReduceLROnPlateau(factor=0.5, patience=2, min_lr=2e-3)),
        Stage(name="b", optimizer="sgd", lr=0.01, epochs=10, batch_size=16,
              early_stopping=EarlyStopping(monitor="val_loss", patience=3, min_delta=0.001),
              reduce_lr=ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-3)),
    ]
    recipe = Recipe(stages=stages, augment=Augment(flip=True, translate=1))
    return Trainer(model, splits, recipe, Setup(input_size=8, seed=1),
                   Watch(show_progress=False, callbacks=default_callbacks())).fit()


FIELDS = ["stage", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"]


def test_history_matches_the_run_before_callbacks_were_plugins():
    result = seeded_run()
    with STORED.open() as handle:
        stored = list(csv.DictReader(handle))
    assert [(r["stage"], int(r["epoch"])) for r in stored] == [(r["stage"], r["epoch"]) for r in result.history]
    for old, new in zip(stored, result.history):
        assert float(old["lr"]) == new["lr"]  # cuts at the same epochs, to the same values
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            # bit for bit on one machine; other CPUs' kernels may differ in the last bits
            assert float(old[key]) == pytest.approx(new[key], rel=1e-5, abs=1e-6), (old["stage"], old["epoch"], key)
    assert [(s.name, s.epochs, s.best_epoch, s.stopped_early) for s in result.stages] == [
        ("a", 11, 6, True), ("b", 8, 5, True)]


if __name__ == "__main__":  # how the stored file was written
    rows = seeded_run().history
    with STORED.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
