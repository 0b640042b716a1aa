"""harness tune: studies that continue after a kill without counting a trial twice, a pruner that
stops trials, the test set never read, trials side by side on Ray, and the tuned settings used by
harness run --tuned."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import install_plugin
from tests.helpers import loopback

optuna = pytest.importorskip("optuna")


def load(folder: Path, model: str):
    url = f"sqlite:///{folder / model / 'tuning' / 'study.db'}"
    return optuna.load_study(study_name=model, storage=url)


def states(study) -> list:
    return [trial.state.name for trial in study.trials]


def tune_argv(out: Path, *extra) -> list:
    return [sys.executable, "-m", "harness", "tune", "--model", "baseline_cnn", "deep_cnn", "--profile", "smoke",
            "--trials", "4", "--out", str(out), *extra]


def run_until(argv: list, line: str, timeout: float = 300) -> None:
    """Start ``argv`` and SIGKILL it as soon as it prints ``line``."""
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for text in process.stderr:
            if line in text:
                process.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the run ended before printing '{line}'")
    finally:
        process.kill()
        process.wait(timeout=timeout)


def test_a_killed_tuning_continues_to_its_trials_without_counting_the_interrupted_one(tmp_path):
    out = tmp_path / "tuned"
    argv = tune_argv(out, "--pruner", "none")
    run_until(argv, "baseline_cnn trial 2 train epoch 1:")  # trial 2 has one epoch to go: killed in its middle
    assert states(load(out, "baseline_cnn")) == ["COMPLETE", "COMPLETE", "RUNNING"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # the line to train with what it found names the profile the trials had
    assert f"harness run --model baseline_cnn deep_cnn --profile smoke --tuned {out}" in done.stderr
    baseline, deep = load(out, "baseline_cnn"), load(out, "deep_cnn")
    # the interrupted trial is a failed one that says why, and four others ran: the study has its 4
    assert states(baseline) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert baseline.trials[2].user_attrs["reason"] == "interrupted"
    assert states(deep) == ["COMPLETE"] * 4
    assert "dropout" in json.loads((out / "baseline_cnn" / "tuning" / "space.json").read_text())["space"]
    for model in ("baseline_cnn", "deep_cnn"):
        folder = out / model / "tuning"
        rows = (folder / "trials.csv").read_text().splitlines()
        assert len(rows) == 1 + len(load(out, model).trials)
        best = json.loads((folder / "best.json").read_text())
        assert best["val_acc"] == max(t.value for t in load(out, model).trials if t.value is not None)
        assert best["budget_text"] == "2 epochs" and best["trials"] == 4
        terms = json.loads((folder / "space.json").read_text())
        assert set(terms["space"]) >= {"lr", "weight_decay", "label_smoothing"}  # and what the model adds
    report = (out / "report.md").read_text()
    assert "Every model had the same terms: 4 trials of 2 epochs each" in report and (out / "tuning.png").is_file()

    # harness run --tuned trains with the best settings and says so
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=1", "--tuned", str(out),
                 "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "baseline_cnn" / "config.json").read_text())
    best = json.loads((out / "baseline_cnn" / "tuning" / "best.json").read_text())
    assert config["stages"][0]["lr"] == best["set"]["lr"]
    assert config["stages"][0]["label_smoothing"] == best["set"]["label_smoothing"]
    assert config["tuned"]["trials"] == 4 and config["tuned"]["budget"] == "2 epochs"
    assert "baseline_cnn (tuned: 4 trials of 2 epochs)" in (tmp_path / "run" / "leaderboard.md").read_text()
    assert "the best of 4 trials of 2 epochs in `../tuned`" in (tmp_path / "run" / "report.md").read_text()


def test_the_pruner_stops_trials_early(tmp_path):
    """Every trial is below a validation accuracy of 1.01: each is pruned after its first epoch (and
    with no finished trial, no best settings: the command exits with 1)."""
    out = tmp_path / "pruned"
    assert main(["tune", "--model", "baseline_cnn", "--profile", "smoke", "--trials", "3", "--pruner", "threshold:1.01",
                 "--out", str(out)]) == 1
    assert not (out / "baseline_cnn" / "tuning" / "best.json").exists()
    study = load(out, "baseline_cnn")
    assert states(study) == ["PRUNED"] * 3
    assert all(max(trial.intermediate_values) == 1 for trial in study.trials)


def test_tuning_never_reads_the_test_images(site, tmp_path):
    install_plugin(site, "sealed_data", """
        import numpy as np
        from harness import DatasetSpec, hookimpl
        from harness.toolkit import Images

        class Sealed(Images):
            sealed = False

            def __getattribute__(self, name):
                if name == "test_x" and object.__getattribute__(self, "sealed"):
                    raise RuntimeError("the test images were read")
                return object.__getattribute__(self, name)

        def load(path, size):
            y = np.arange(600) % 10
            x = (np.random.default_rng(0).integers(0, 60, (600, 3, 32, 32)) + 19 * y[:, None, None, None])
            images = Sealed([str(c) for c in range(10)], x[:500].astype(np.uint8), y[:500], x[500:].astype(np.uint8),
                            y[500:], source=str(path))
            images.sealed = True
            return images

        @hookimpl
        def register_datasets(register):
            register(DatasetSpec("sealed", load=load, accepts=lambda path: path.suffix == ".sealed"))
    """, "sealed_data", dist="harness-sealed")
    (tmp_path / "d.sealed").write_text("")
    out = tmp_path / "tuned"
    assert main(["tune", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(tmp_path / "d.sealed"),
                 "--trials", "2", "--pruner", "none", "--budget-epochs", "1", "--out", str(out)]) == 0
    study = load(out, "baseline_cnn")
    assert states(study) == ["COMPLETE", "COMPLETE"], [t.user_attrs for t in study.trials]
    assert not list(out.rglob("metrics.json")) and not list(out.rglob("predictions*"))


@pytest.mark.skipif(loopback.unavailable() is not None, reason=str(loopback.unavailable()))
def test_ray_runs_trials_side_by_side(tmp_path):
    out = tmp_path / "tuned"
    argv = [sys.executable, "-m", "harness", "tune", "--model", "baseline_cnn", "--profile", "smoke", "--trials", "2",
            "--pruner", "none", "--executor", "ray", "--out", str(out)]
    done = loopback.run(argv, env=loopback.ray_environment(), timeout=600, cwd=os.getcwd())
    assert done.returncode == 0, done.stdout[-4000:]
    trials = load(out, "baseline_cnn").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    first, second = (t.user_attrs for t in trials)
    assert first["started_at"] < second["ended_at"] and second["started_at"] < first["ended_at"]  # they overlap


FRAGILE = """
    from torch import nn
    from harness import ModelSpec, Range, Recipe, Stage, hookimpl

    class Fragile(nn.Module):
        def __init__(self, classes):
            super().__init__()
            self.drop, self.head = nn.Dropout(0.1), nn.Linear(3 * 32 * 32, classes)

        def forward(self, x):
            if self.drop.p > 0.5:
                raise RuntimeError("dropout above 0.5 is not supported")
            return self.head(self.drop(x.flatten(1)))

    @hookimpl
    def register_models(register):
        register(ModelSpec("fragile", build=Fragile, recipe=Recipe(stages=[Stage("train", epochs=1)]),
                           search_space=lambda config: {"dropout": Range(0.0, 0.95)}))
"""


def test_a_trial_that_raises_is_failed_with_its_reason_and_the_study_goes_on(site, tmp_path):
    install_plugin(site, "fragile_model", FRAGILE, "fragile_model", dist="harness-fragile")
    out = tmp_path / "tuned"
    assert main(["tune", "--model", "fragile", "--profile", "smoke", "--trials", "4", "--pruner", "none",
                 "--out", str(out)]) == 0
    trials = load(out, "fragile").trials
    assert len(trials) == 4 and {t.state.name for t in trials} == {"FAIL", "COMPLETE"}
    for trial in trials:
        failed = trial.state.name == "FAIL"
        assert failed == (trial.params["dropout"] > 0.5)
        assert (trial.user_attrs.get("reason") == "RuntimeError: dropout above 0.5 is not supported") == failed
    assert "dropout above 0.5 is not supported" in (out / "fragile" / "tuning" / "trials.csv").read_text()


def test_budgets_share_epochs_among_stages_and_scale_to_flops():
    from harness.errors import HarnessError
    from harness.tuning.budget import Budget, overrides, shares, stage_epochs

    assert shares(4, [8, 9]) == [2, 2] and shares(10, [1, 1, 8]) == [1, 1, 8] and shares(5, [3]) == [5]
    two = {"model": "m", "stages": [{"name": "frozen", "epochs": 8, "warmup_epochs": 0},
                                    {"name": "finetune", "epochs": 9, "warmup_epochs": 0.9}]}
    assert stage_epochs(Budget(epochs=6), two) == [3, 3]
    # a warm-up keeps its share of its stage: 10% of 9 epochs, 10% of 3
    assert overrides(two, [3, 3]) == {"stages.frozen.epochs": 3, "stages.finetune.epochs": 3,
                                      "stages.finetune.warmup_epochs": pytest.approx(0.3)}
    # 8 x 1 + 9 x 2 = 26 units of compute at the recipe's epochs; a budget of 13 halves them
    assert stage_epochs(Budget(flop=13.0), two, [1.0, 2.0]) == [4, 4]
    with pytest.raises(HarnessError, match="less than one epoch"):
        stage_epochs(Budget(flop=2.0), two, [1.0, 2.0])
    with pytest.raises(HarnessError, match="one of them"):
        Budget()


def stage_control():
    """The handle a callback gets at a stage's start, on a model of one parameter."""
    import torch

    from harness.callbacks import Control
    from harness.specs import Stage

    model = torch.nn.Linear(1, 1)
    return Control(model, torch.optim.SGD(model.parameters(), lr=0.1), Stage())


def test_the_epoch_hook_reports_to_the_study_and_ends_a_trial_whose_compute_is_spent():
    from harness.tuning.trial import Pruning

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    pruning, control = Pruning(trial, flop_budget=100.0), stage_control()
    pruning.on_stage_start(None, control)
    pruning.on_epoch_end(1, {"val_acc": 0.4, "train_flop": 60.0})
    assert not control.stopping
    pruning.on_epoch_end(2, {"val_acc": 0.5, "train_flop": 120.0})
    assert control.stopping and pruning.ended == "budget"
    assert study.trials[0].intermediate_values == {1: 0.4, 2: 0.5}  # one step per epoch, over all stages


def test_a_trial_that_cannot_reach_the_study_trains_unpruned(capsys):
    """On a node that cannot see the study's file the trial still trains, to its budget."""
    from harness.tuning.trial import Pruning, reachable_trial

    info = {"number": 3, "study": "m", "trial_id": 1, "storage": "sqlite:////nonexistent-folder/study.db",
            "pruner": {"class": "ThresholdPruner", "args": {"lower": 1.01}}}
    pruning, control = Pruning(reachable_trial(info)), stage_control()
    assert "trial 3: the study's storage cannot be reached from here" in capsys.readouterr().err
    pruning.on_stage_start(None, control)
    pruning.on_epoch_end(1, {"val_acc": 0.1})
    assert not control.stopping and pruning.ended is None


def test_a_best_value_at_an_end_of_its_range_is_flagged_unless_nothing_lies_beyond():
    from harness.tuning.space import Choice, Range, edges

    space = {"lr": Range(1e-4, 1e-2, log=True), "label_smoothing": Range(0.0, 0.2), "translate": Choice((0, 2, 4))}
    assert edges({"lr": 0.0099, "label_smoothing": 0.1, "translate": 2}, space) == [
        "the best lr (0.0099) is at its upper bound: widen the space"]
    assert edges({"lr": 1.05e-4, "label_smoothing": 0.0, "translate": 0}, space) == [
        "the best lr (0.000105) is at its lower bound: widen the space"]  # 0 has nothing below it
    assert edges({"lr": 1e-3, "label_smoothing": 0.2, "translate": 4}, space) == [
        "the best label_smoothing (0.2) is at its upper bound: widen the space",
        "the best translate (4) is at its upper bound: widen the space"]


def test_the_report_names_the_terms_of_each_model_when_they_differ(tmp_path):
    from harness.tuning import files
    from harness.tuning.report import tuning_markdown

    command = "harness tune --model b --no-pretrained --set input_size=32 --trials 3 --out t"
    for model, settings in (("a", {}), ("b", {"input_size": "32"})):
        folder = tmp_path / model / "tuning"
        folder.mkdir(parents=True)
        (folder / files.SPACE).write_text(json.dumps({
            "model": model, "trials": 3, "budget_text": "2 epochs", "budget": {"set": {"epochs": 2}}, "pruner": "none",
            "sampler": "TPE, seed 0", "profile": "smoke", "set": settings, "space": {},
            **({"command": command} if model == "b" else {})}))  # a's terms from before commands were kept
    text = tuning_markdown(tmp_path, files.studies_in(tmp_path))
    assert "**The models had different terms**: a 3 trials of 2 epochs each" in text
    assert "; b 3 trials of 2 epochs, pruner none, settings input_size=32." in text
    # what the closing line cannot say (b's --no-pretrained and input size) is in b's own command
    assert f"- b: `{command}`" in text and "- a: `" not in text
    assert f"--tuned {tmp_path}`, with the profile, data, weights and `--set` pairs of each model's command" in text


def test_a_study_goes_on_only_under_the_terms_it_began_with(tmp_path, capsys):
    """Run again with more trials, a study goes on and keeps the command that began it; with another
    budget it is refused in one line naming what differs, and nothing is added to it."""
    from harness.tuning import files

    out = tmp_path / "t"
    first = ["tune", "--model", "baseline_cnn", "--profile", "smoke", "--budget-epochs", "1", "--pruner", "none",
             "--out", str(out)]
    assert main([*first, "--trials", "1"]) == 0
    began = files.read_space(out / "baseline_cnn" / "tuning")["command"]
    assert main(["tune", "--trials", "2", *first[1:]]) == 0
    terms = files.read_space(out / "baseline_cnn" / "tuning")
    assert terms["command"] == began and terms["trials"] == 2 and len(load(out, "baseline_cnn").trials) == 2
    capsys.readouterr()
    changed = [word if word != "1" else "2" for word in first]  # --budget-epochs 2
    assert main([*changed, "--trials", "3"]) == 2
    assert "made on other terms (they differ in budget)" in capsys.readouterr().err
    assert len(load(out, "baseline_cnn").trials) == 2


def test_the_line_to_train_with_the_best_settings_names_the_data_and_weights_the_trials_had():
    from harness.jobs import RunRequest
    from harness.tuning.driver import best_settings_command

    def command(**asked) -> str:
        return best_settings_command(RunRequest(models=["m"], out=Path("t"), **asked), ["m"])

    assert command(profile="full", data="my data/cifar.zip", weights_dir=Path("w")) == \
        "harness run --model m --profile full --data 'my data/cifar.zip' --weights-dir w --tuned t"
    assert command(pretrained=False) == "harness run --model m --no-pretrained --tuned t"
    assert command(dataset="cifar10") == "harness run --model m --dataset cifar10 --tuned t"
