"""A tuning trial trains with the same code as harness run, so at the same settings its training
throughput is that of a plain run: trials and plain runs of timm's resnet10t from scratch at 32 px
(its default search space changes no cost: learning rate, weight decay, label smoothing), taken in
turns in one process, training images per training second compared by their medians.
Run: python -m pytest benchmarks/test_trial_speed.py -q -s (nothing else running)."""
from __future__ import annotations

import json
import statistics

import pytest

pytest.importorskip("optuna", reason="pip install -e '.[tune]'")

from harness.cli import main  # noqa: E402

MODEL = ["--model", "timm:resnet10t", "--no-pretrained", "--profile", "smoke", "--set", "input_size=32"]
EPOCHS, TURNS = 3, 3


def plain_rate(out) -> float:
    assert main(["run", *MODEL, "--set", f"epochs={EPOCHS}", "--eval", "none", "--out", str(out)]) == 0
    return json.loads((out / "timm:resnet10t" / "metrics.json").read_text())["train_img_s"]


def trial_rate(out) -> float:
    import optuna

    assert main(["tune", *MODEL, "--trials", "1", "--budget-epochs", str(EPOCHS), "--pruner", "none",
                 "--out", str(out)]) == 0
    study = optuna.load_study(study_name="timm:resnet10t",
                              storage=f"sqlite:///{out / 'timm:resnet10t' / 'tuning' / 'study.db'}")
    attrs = study.trials[0].user_attrs
    return attrs["train_images"] / attrs["train_time_s"]


def test_a_trial_trains_as_fast_as_a_plain_run(tmp_path):
    plain, trial = [], []
    for turn in range(TURNS):
        plain.append(plain_rate(tmp_path / f"run-{turn}"))
        trial.append(trial_rate(tmp_path / f"tune-{turn}"))
    ratio = statistics.median(trial) / statistics.median(plain)
    print(f"\nplain runs {[round(r) for r in plain]} img/s, trials {[round(r) for r in trial]} img/s: "
          f"trial / plain {ratio:.3f}")
    assert ratio >= 0.95, (plain, trial)
