"""Trainer and evaluator hooks: callbacks and evaluators are plugins, built-ins included; an outside
package adds its own through the entry point; loggers are read back with their own readers."""
import csv
import json

import numpy as np
import pytest
import torch

from harness import Column, EvaluatorSpec, plugin_registry
from harness.cli import main

from conftest import install_plugin, write_canonical

OUTSIDE_PLUGIN = """
    from harness import CallbackSpec, Column, EvaluatorSpec, hookimpl

    class StopAtOnce:
        def on_stage_start(self, stage, control):
            self.control = control

        def on_epoch_end(self, epoch, logs):
            assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(logs)
            self.control.stop()

    class ReturnsTrue:  # asks to stop the way control.stop() replaces
        def on_epoch_end(self, epoch, logs):
            return True

    @hookimpl
    def register_evaluators(register):
        register(EvaluatorSpec("always_one", lambda ctx: {"always_one": 1.0},
                               columns=(Column("always_one", "always one", "always one is one, whatever the model."),)))
        register(EvaluatorSpec("broken", lambda ctx: 1 / 0))

    @hookimpl
    def register_callbacks(register):
        register(CallbackSpec("stop_at_once", lambda config: StopAtOnce()))

        class Broken:
            def on_epoch_end(self, epoch, logs):
                raise RuntimeError("out of order")

        register(CallbackSpec("broken_callback", lambda config: Broken()))
        register(CallbackSpec("returns_true", lambda config: ReturnsTrue()))
"""


@pytest.fixture
def data(tmp_path):
    return write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))


def run(out, data, *extra):
    return main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=15", "--set", "epochs=3", *extra])


def test_list_names_every_built_in_evaluator_and_callback_with_its_plugin(capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    evaluators = {e["name"]: e["plugin"] for e in listing["evaluators"]}
    callbacks = {c["name"]: c["plugin"] for c in listing["callbacks"]}
    assert {name: evaluators.get(name) for name in ("classification", "calibration", "robustness", "latency")} == \
        dict.fromkeys(("classification", "calibration", "robustness", "latency"), "evaluators")
    assert {name: callbacks.get(name) for name in ("early_stopping", "reduce_lr", "tensorboard", "mlflow")} == \
        dict.fromkeys(("early_stopping", "reduce_lr", "tensorboard", "mlflow"), "callbacks")
    registry = plugin_registry.load(report=False)
    assert registry.callbacks["early_stopping"].package == "harness"  # the main distribution's entry point


def test_an_outside_package_adds_an_evaluator_and_a_stopping_callback(site, tmp_path, data, capsys):
    install_plugin(site, "my_hooks", OUTSIDE_PLUGIN, "my_hooks", dist="my-hooks")
    assert main(["list"]) == 0
    assert "always_one" in capsys.readouterr().out
    out = tmp_path / "out"
    code = run(out, data, "--eval", "always_one", "--callback", "stop_at_once")
    assert code == 0
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["always_one"] == 1.0 and metrics["epochs"] == 1  # every stage ended after one epoch
    assert metrics["stages"][0]["stopped_early"]
    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert board[0]["always_one"] == "1.0"
    header = (out / "leaderboard.md").read_text().split("\n| rank")[1].split("\n")[0]
    assert "| always one " in header  # the plugin's declared column, with no change to the core
    assert "always one is one, whatever the model." in (out / "leaderboard.md").read_text()  # and its legend line
    assert "always one is one" in (out / "report.md").read_text()


def test_a_headline_is_one_column_with_no_legend():
    spec = EvaluatorSpec("top2", lambda ctx: {}, headline=("top2_acc", "top-2"))
    assert spec.columns == (Column("top2_acc", "top-2"),)


def test_a_failing_plugin_evaluator_or_callback_is_one_line_and_the_row_stays(site, tmp_path, data, capsys):
    install_plugin(site, "my_hooks", OUTSIDE_PLUGIN, "my_hooks", dist="my-hooks")
    out = tmp_path / "out"
    code = run(out, data, "--eval", "broken,always_one", "--callback", "broken_callback", "--callback", "returns_true")
    assert code == 0
    err = capsys.readouterr().err
    assert "evaluator 'broken' (plugin 'my_hooks') failed: ZeroDivisionError" in err
    assert "callback 'broken_callback' (plugin 'my_hooks') failed in on_epoch_end: RuntimeError" in err
    # one way to end a stage: a callback returning True is switched off, saying which way, and ends nothing
    assert "callback 'returns_true' (plugin 'my_hooks') failed in on_epoch_end: TypeError: on_epoch_end returned " \
           "True: end the stage with control.stop()" in err
    assert err.count("broken_callback") == 1  # switched off after its first failure
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 3 and metrics["always_one"] == 1.0
    assert "broken" not in metrics["evaluators"] and "ZeroDivisionError" in metrics["evaluator_errors"]["broken"]


def test_optional_evaluators_fill_metrics_leaderboard_and_report(tmp_path, data):
    out = tmp_path / "out"
    code = run(out, data, "--eval", "calibration,robustness,latency", "--set", "eval.latency.runs=5",
               "--set", "eval.robustness.severities=5")
    assert code == 0
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    for key in ("ece", "nll", "brier", "corruption_acc", "latency_ms_p50", "latency_ms_p95", "throughput_img_s"):
        assert isinstance(metrics[key], float), key
    assert 0 <= metrics["ece"] <= 1 and metrics["nll"] > 0 and 0 <= metrics["brier"] <= 2
    assert set(metrics["corruption"]) == {"gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg",
                                          "pixelate"}
    assert metrics["corruption_severities"] == [5] and metrics["evaluators"]["robustness"]["options"]["severities"] == "5"
    assert set(metrics["corruption_by_severity"]["jpeg"]) == {"5"}
    assert metrics["latency_ms_p95"] >= metrics["latency_ms_p50"] > 0
    assert (out / "baseline_cnn" / "reliability-train.png").read_bytes()[:4] == b"\x89PNG"
    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {"ece", "nll", "brier", "corruption_acc", "latency_ms_p50"} <= set(board[0])
    report = (out / "report.md").read_text()
    assert "## Calibration" in report and "](reliability.png)" in report  # every stage's diagram in one grid
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Robustness to common corruptions" in report and "gaussian_noise" in report
    assert "## Latency" in report


def test_evaluate_adds_evaluator_fields_to_a_saved_model(tmp_path, data, capsys):
    out = tmp_path / "out"
    assert run(out, data) == 0
    before = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert "ece" not in before  # the smoke profile runs classification alone
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--eval", "calibration"]) == 0
    printed = capsys.readouterr().out
    after = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert after["accuracy"] == before["accuracy"] and isinstance(after["ece"], float)
    assert after["stages"][0]["ece"] == after["ece"] and "calibration" in after["stages"][0]["evaluators"]
    assert "ece" in printed
    assert "ece" in (out / "leaderboard.csv").read_text().splitlines()[0]  # the folder's leaderboard rebuilt


def test_unknown_evaluator_or_callback_is_one_line(tmp_path, data, capsys):
    assert run(tmp_path / "a", data, "--eval", "calibraton") == 2
    assert "unknown evaluator 'calibraton'; did you mean 'calibration'?" in capsys.readouterr().err
    assert run(tmp_path / "b", data, "--callback", "tensorbord") == 2
    assert "unknown callback 'tensorbord'; did you mean 'tensorboard'?" in capsys.readouterr().err


def test_tensorboard_events_hold_every_epoch(tmp_path, data):
    pytest.importorskip("tensorboard", reason="pip install -e .[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    assert run(out, data, "--callback", "tensorboard") == 0
    events = EventAccumulator(str(out / "baseline_cnn" / "tensorboard"))
    events.Reload()
    history = list(csv.DictReader((out / "baseline_cnn" / "history.csv").open()))
    val_acc = events.Scalars("val_acc")
    assert [e.step for e in val_acc] == [1, 2, 3]
    assert [e.value for e in val_acc] == pytest.approx([float(r["val_acc"]) for r in history], abs=1e-6)
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert events.Scalars("test_accuracy")[0].value == pytest.approx(metrics["accuracy"], abs=1e-6)


def test_mlflow_run_holds_config_epochs_test_metrics_and_files(tmp_path, data, monkeypatch):
    pytest.importorskip("mlflow", reason="pip install -e .[mlflow]")
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "out"
    assert run(out, data, "--callback", "mlflow") == 0
    uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # mlflow.set_tracking_uri sets it too: undone after the test
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["harness"], output_format="list")
    assert len(runs) == 1
    found = runs[0]
    assert found.data.params["stages.train.optimizer"] == "adam" and found.data.params["seed"] == "0"
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert found.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    val_acc = client.get_metric_history(found.info.run_id, "val_acc")
    history = list(csv.DictReader((out / "baseline_cnn" / "history.csv").open()))
    assert [m.step for m in val_acc] == [1, 2, 3]
    assert [m.value for m in val_acc] == pytest.approx([float(r["val_acc"]) for r in history], abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "history.csv", "train.pt"} <= artifacts
    assert found.info.status == "FINISHED"


def test_a_missing_logger_extra_is_one_line_naming_the_pip_command(tmp_path, data, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    assert run(tmp_path / "out", data, "--callback", "mlflow") == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "harness: error: the mlflow callback needs the 'mlflow' package: pip install -e .[mlflow]")
    assert "data:" not in err  # refused before any data was decoded


def test_calibration_numbers_by_hand():
    from harness_evaluators.measures import calibration_numbers

    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])
    numbers = calibration_numbers(probabilities, labels, bins=2)
    # bin (0.5, 1] holds all four: confidence mean 0.75, accuracy 3/4 -> ECE 0
    assert numbers["ece"] == pytest.approx(0.0)
    assert numbers["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    assert numbers["brier"] == pytest.approx(np.mean([0.02, 0.72, 0.18, 0.08]))
    skewed = calibration_numbers(np.array([[0.95, 0.05], [0.95, 0.05]]), np.array([0, 1]), bins=15)
    assert skewed["ece"] == pytest.approx(0.45)  # confidence 0.95, accuracy 0.5


def test_corruptions_are_seeded_deterministic_and_change_the_images():
    from harness_evaluators import CORRUPTION_NAMES
    from harness_evaluators.corruptions import CORRUPTIONS, corrupt

    assert tuple(CORRUPTIONS) == CORRUPTION_NAMES  # the listing's names are the ones computed
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8))
    for name in CORRUPTIONS:
        first, second = corrupt(name, x, 3, seed=0), corrupt(name, x, 3, seed=0)
        assert first.dtype == torch.uint8 and first.shape == x.shape, name
        assert torch.equal(first, second), name
        assert not torch.equal(first, x), name
        mild, harsh = corrupt(name, x, 1, seed=0), corrupt(name, x, 5, seed=0)
        distance = lambda a: (a.float() - x.float()).abs().mean()  # noqa: E731
        assert distance(harsh) > distance(mild), name
    with pytest.raises(ValueError):
        corrupt("contrast", x, 6, seed=0)


def test_robustness_corrupts_chunk_by_chunk_the_images_one_whole_pass_would(monkeypatch):
    """Memory of a chunk whatever the test set's size, the same corrupted images and accuracies."""
    from types import SimpleNamespace

    from harness import plugin_registry
    from harness.accel import CPU
    from harness.config import resolve, to_recipe
    from harness_evaluators import corruptions
    from harness_evaluators.corruptions import CORRUPTIONS, corrupted_chunks
    from harness_evaluators.measures import robustness

    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8))
    for name, function in CORRUPTIONS.items():
        whole = function(x, 4, torch.Generator().manual_seed(3))
        chunks = list(corrupted_chunks(name, x, 4, seed=3, chunk=16))
        assert [start for start, _ in chunks] == [0, 16, 32], name
        assert torch.equal(torch.cat([part for _, part in chunks]), whole), name
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10)).eval()
    labels = np.random.default_rng(2).integers(0, 10, 40)
    config = resolve(plugin_registry.load(report=False).models["baseline_cnn"].spec, "quick", {})
    ctx = SimpleNamespace(model=model, config=config, recipe=to_recipe(config), input_size=config["input_size"],
                          accel=CPU, test_x=x, test_y=labels, stage="train", options={"severities": "2", "seed": 3},
                          main=False, folder=None)
    monkeypatch.setattr(corruptions, "CHUNK", 16)  # three chunks of 40 images, the clean pass too
    result = robustness(ctx)
    with torch.no_grad():
        for name, function in CORRUPTIONS.items():
            images = function(x, 2, torch.Generator().manual_seed(3)).float() / 255
            expected = float((model(images).argmax(1) == torch.as_tensor(labels)).double().mean())
            assert result["corruption_by_severity"][name]["2"] == pytest.approx(expected, abs=1e-12), name
        clean = float((model(x.float() / 255).argmax(1) == torch.as_tensor(labels)).double().mean())
    assert result["corruption_clean_acc"] == pytest.approx(clean, abs=1e-12)
