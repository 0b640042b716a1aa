"""The reader's view: a leaderboard that fits a screen, a Pareto plot, defaults that suit a small
folder, and the notebook API (the same code path as the command line)."""
import json

import pandas as pd
import pytest

import harness
from harness.cli import main
from harness.report.leaderboard import count, duration, short_weights

from conftest import write_canonical


@pytest.fixture
def data(tmp_path):
    return write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))


def test_numbers_for_people():
    assert count(1_530_000) == "1.53 M" and count(4_110_000_000) == "4.11 G" and count(980) == "980"
    assert duration(45) == "45 s" and duration(270) == "4.5 min" and duration(3807) == "63 min"
    assert short_weights("scratch") == "scratch"
    assert short_weights("file:tf_mobilenetv3_small_100.in1k.safetensors sha256:1234abcd5678") == \
        "imagenet (file sha256:1234abcd)"
    assert short_weights("hub:resnet50.a1_in1k") == "imagenet (hub)"


def test_leaderboard_fits_a_screen_and_lists_skipped_models_below(tmp_path, data):
    out = tmp_path / "out"
    assert main(["run", "--all", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=15", "--set", "epochs=1", "--eval", "calibration"]) == 0
    text = (out / "leaderboard.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert len(header) <= 12 and header[:4] == ["rank", "model", "weights", "accuracy (95% interval)"]
    assert "ECE" in header  # an evaluator's headline number takes a column
    for line in table:
        assert all(len(cell.strip()) <= 60 for cell in line.strip("|").split("|")), line
    assert "\nNot in the table:" in text and "- vgg16: skipped (" in text  # no weights offline: reason below
    csv = pd.read_csv(out / "leaderboard.csv")
    assert {"precision", "recall", "eval_img_s", "reason", "ece", "profile"} <= set(csv.columns)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "![accuracy against training compute and MACs](pareto.png)" in (out / "report.md").read_text()


def test_leaderboard_columns_choose(tmp_path, data, capsys):
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=15", "--set", "epochs=1"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "csv", "--columns", "model,accuracy,eval_img_s"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "model,accuracy,eval_img_s"
    assert main(["leaderboard", str(out), "--columns", "model,acuracy"]) == 2
    assert "unknown column 'acuracy'; did you mean 'accuracy'?" in capsys.readouterr().err


def test_a_small_folder_trains_with_default_settings(tmp_path):
    """~1,500 images in 10 classes: the validation split is 10% of the training images."""
    from conftest import pattern_images
    from PIL import Image

    folder = tmp_path / "small"
    x, y = pattern_images(150, 10, size=24, seed=3)
    for i, (image, label) in enumerate(zip(x, y)):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"class{label}" / f"{i}.png")
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--data", str(folder), "--out", str(out),
                 "--set", "epochs=1"]) == 0  # epochs only: the test's own budget
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["data"]["val"] == 120 and metrics["data"]["train"] == 1080 and metrics["data"]["test"] == 300


def test_python_api_returns_the_leaderboard(tmp_path, data, monkeypatch):
    import harness.cli

    def no_parsing(*args, **kwargs):
        raise AssertionError("harness.run parsed command-line words")

    monkeypatch.setattr(harness.cli, "build_parser", no_parsing)
    frame = harness.run(models=["baseline_cnn"], profile="smoke", data=data, out=tmp_path / "x",
                        set={"data.val_size": 15, "epochs": 1})
    assert isinstance(frame, pd.DataFrame) and "accuracy" in frame.columns
    assert frame.loc[0, "model"] == "baseline_cnn" and 0 <= frame.loc[0, "accuracy"] <= 1
    again = harness.leaderboard(tmp_path / "x")
    assert again["accuracy"].tolist() == frame["accuracy"].tolist()
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown model 'resnet5'; did you mean 'resnet50'"):
        harness.run(models=["resnet5"], profile="smoke", data=data, out=tmp_path / "y")


@pytest.mark.parametrize("keywords, flags", [
    ({"models": ["baseline_cnn", "deep_cnn"], "profile": "smoke", "set": {"epochs": 1, "data.val_size": 15},
      "seed": [1, 2], "eval": "calibration", "callback": ["tensorboard"], "amp": False, "resume": True},
     ["--model", "baseline_cnn", "deep_cnn", "--profile", "smoke", "--set", "epochs=1", "--set", "data.val_size=15",
      "--seed", "1", "--seed", "2", "--eval", "calibration", "--callback", "tensorboard", "--no-amp", "--resume"]),
    ({"models": "all", "seeds": 3, "no_pretrained": True, "executor": "ray", "job_cpus": 1, "variant": "v"},
     ["--all", "--seeds", "3", "--no-pretrained", "--executor", "ray", "--job-cpus", "1", "--variant", "v"]),
])
def test_python_keywords_and_command_line_flags_make_one_request(tmp_path, keywords, flags):
    """harness.run's keywords make the RunOptions and RunRequest the command line's flags make, and the
    command it records (config.json), which torchrun's processes also run, parses back to the same
    options."""
    import dataclasses

    from harness import api, cli, plugin_registry
    from harness.config import resolve
    from harness.run_options import argv_of, request_of

    registry = plugin_registry.load(report=False)
    out = str(tmp_path / "out")
    from_python = api.options_from_keywords(registry, out=out, **keywords)
    from_flags = cli.options_of(cli.build_parser(registry).parse_args(["run", *flags, "--out", out]))
    def same(a, b):  # --set's values are text on the command line, Python values in a notebook
        first, second = request_of(a, registry, "c"), request_of(b, registry, "c")
        assert {k: str(v) for k, v in first.overrides.items()} == second.overrides
        assert dataclasses.replace(first, overrides={}) == dataclasses.replace(second, overrides={})
        spec = registry.models["baseline_cnn"].spec
        assert resolve(spec, "smoke", first.overrides) == resolve(spec, "smoke", second.overrides)

    same(from_python, from_flags)
    # what the run records and what torchrun's processes run parse back to the same options
    for options in (from_python, from_flags):
        same(options, cli.options_of(cli.build_parser(registry).parse_args(argv_of(options))))
    with pytest.raises(harness.errors.HarnessError, match="unknown option 'sed'; did you mean 'seed'"):
        api.options_from_keywords(registry, sed=[1])
