"""Every error a user can cause: one line naming the problem and the fix, a non-zero exit code,
no traceback (--debug shows it). One failing model never takes the others' results with it."""
import json
import os
import random
import textwrap
import zipfile

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from harness.cli import main
from harness.data import folders

from conftest import install_plugin


def run_cli(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def assert_one_line(code, err, fragment, expected_code=2):
    """The error is one line, the last thing printed (progress lines may come before it)."""
    assert code == expected_code, err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("harness: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err, err
    assert fragment in errors[0], err


SMOKE = ["run", "--profile", "smoke", "--set", "epochs=1"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--model", "resnet5"], "unknown model 'resnet5'; did you mean 'resnet50'? see 'harness list'"),
        (["run", "--all", "--profile", "tiny"], "unknown profile 'tiny'"),
        (["run", "--all", "--set", "lr=fast"], "--set lr=fast: expected float"),
        (["run", "--all", "--set", "stages.train.momentm=0.8"], "did you mean 'momentum'"),
        (["run", "--model", "baseline_cnn", "--data", "/nonexistent/cifar"], "data path '/nonexistent/cifar' does not exist"),
        (["run", "--model", "mobilenetv3", "--profile", "smoke"], "tf_mobilenetv3_small_100.<tag>.safetensors"),
        (["evaluate", "--model-dir", "/nonexistent"], "has no config.json"),
        (["run", "--model", "baseline_cnn", "--seeds", "2", "--seed", "1"], "either --seeds K or --seed N"),
        (["run", "--model", "baseline_cnn", "--device", "tpu"], "--device tpu: use auto, cpu, cuda or cuda:N"),
        (["run", "--model", "baseline_cnn", "--device", "cpu", "--sync-bn"], "--sync-bn needs CUDA GPUs"),
        (["run", "--model", "baseline_cnn", "--nproc", "0"], "--nproc must be at least 1"),
    ],
)
def test_argument_errors(argv, fragment, capsys):
    assert_one_line(*run_cli(argv, capsys), fragment)


def test_data_errors(tmp_path, capsys):
    notzip = tmp_path / "data.zip"
    notzip.write_bytes(b"PK\x03\x04 but truncated")
    assert_one_line(*run_cli(SMOKE + ["--model", "baseline_cnn", "--data", str(notzip)], capsys), "not a folder or a zip")
    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(one / "x.png")
    assert_one_line(*run_cli(SMOKE + ["--model", "baseline_cnn", "--data", str(tmp_path / "one")], capsys),
                    "needs at least 2")
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    (empty / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(empty / "cat" / "x.png")
    assert_one_line(*run_cli(SMOKE + ["--model", "baseline_cnn", "--data", str(empty)], capsys), "has no images")


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    assert_one_line(*run_cli(SMOKE + ["--model", "baseline_cnn", "--out", str(blocker / "out")], capsys),
                    "cannot write to output folder")


def test_weights_file_errors(tmp_path, capsys):
    weights_dir = tmp_path / "w"
    weights_dir.mkdir()
    bad = weights_dir / "tf_mobilenetv3_small_100.bad.safetensors"
    bad.write_bytes(os.urandom(256))
    argv = SMOKE + ["--model", "mobilenetv3", "--weights-dir", str(weights_dir), "--out", str(tmp_path / "o1")]
    assert_one_line(*run_cli(argv, capsys), "cannot be read")
    bad.unlink()
    save_file({"fc.weight": torch.zeros(3, 3)}, str(weights_dir / "tf_mobilenetv3_small_100.other.safetensors"))
    argv = SMOKE + ["--model", "mobilenetv3", "--weights-dir", str(weights_dir), "--out", str(tmp_path / "o2")]
    assert_one_line(*run_cli(argv, capsys), "does not fit tf_mobilenetv3_small_100")


def test_debug_shows_the_traceback():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "harness", "--debug", "run", "--model", "resnet5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().splitlines()[-1].startswith("harness.errors.HarnessError: unknown model 'resnet5'")


BROKEN_MODELS = '''
import torch
from torch import nn
from harness import ModelSpec, Recipe, Stage, hookimpl


class Exploding(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, n)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.training else out


class RaisesMidTraining(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, n)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > 3:
            raise RuntimeError("simulated failure mid-training")
        return self.fc(x.flatten(1))


def spec(name, build):
    return ModelSpec(name=name, input_size=8, build=build, recipe=Recipe(stages=[Stage(epochs=2, batch_size=64)]))


@hookimpl
def register_models(register):
    register(spec("zz_nan", Exploding))
    register(spec("zz_raises", RaisesMidTraining))
    register(spec("zz_wide", lambda n: nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, n + 1))))
    register(spec("zz_ctor", lambda n: 1 / 0))
'''


def test_failing_models_are_recorded_and_the_others_keep_their_rows(site, tmp_path, capsys):
    install_plugin(site, "harness_broken_models", textwrap.dedent(BROKEN_MODELS), "broken_models", dist="broken-models")
    out = tmp_path / "out"
    code = main(SMOKE + ["--model", "baseline_cnn", "zz_nan", "zz_raises", "zz_wide", "zz_ctor", "--out", str(out)])
    assert code == 1  # something failed
    metrics = {m: json.loads((out / m / "metrics.json").read_text()) for m in
               ("baseline_cnn", "zz_nan", "zz_raises", "zz_wide", "zz_ctor")}
    assert metrics["baseline_cnn"]["status"] == "ok"
    assert metrics["zz_nan"]["status"] == "failed" and "training loss became nan" in metrics["zz_nan"]["reason"]
    assert metrics["zz_nan"].get("epochs") is None  # stopped at once, not after its epochs
    assert "simulated failure mid-training" in metrics["zz_raises"]["reason"]
    assert "expected (10,) logits" in metrics["zz_wide"]["reason"]
    assert "ZeroDivisionError" in metrics["zz_ctor"]["reason"]
    board = (out / "leaderboard.csv").read_text()
    for model in metrics:
        assert model in board
    assert (out / "zz_raises" / "error.log").read_text().startswith("Traceback")


def test_fuzzed_files_never_crash_the_image_folder_loader(tmp_path, capsys):
    """A few hundred random byte strings and truncated or odd image files (seeded): every bad file
    is skipped and counted, every good one is read."""
    rng = random.Random(1234)
    root = tmp_path / "fuzz"
    good = {"a": 0, "b": 0}
    bad = 0
    for i in range(300):
        cls = rng.choice(["a", "b"])
        (root / cls).mkdir(parents=True, exist_ok=True)
        kind = rng.random()
        path = root / cls / f"{i}{rng.choice(['.jpg', '.png', '.bmp', '.webp'])}"
        if kind < 0.45:  # random bytes, sometimes with a real image header in front
            header = rng.choice([b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\x00\x00\x00\x00WEBP"])
            path.write_bytes(header + rng.randbytes(rng.randint(0, 2048)))
            bad += 1
        elif kind < 0.7:  # a real image cut short
            full = tmp_path / "full.png"
            Image.new("RGB", (64, 64), (rng.randint(0, 255), 0, 0)).save(full, format="PNG")
            data = full.read_bytes()
            path.with_suffix(".png").write_bytes(data[: rng.randint(0, len(data) // 2)])
            bad += 1
        else:  # a good image in an odd mode and size
            mode = rng.choice(["1", "L", "P", "RGBA", "LA", "I;16", "CMYK", "RGB"])
            size = (rng.randint(1, 300), rng.randint(1, 300))
            image = Image.new(mode, size)
            fmt = "PNG" if mode not in ("CMYK",) else "JPEG"
            image.save(path.with_suffix(".png" if fmt == "PNG" else ".jpg"), format=fmt)
            good[cls] += 1
    for cls in good:  # make sure each class keeps at least one good image
        Image.new("RGB", (10, 10)).save(root / cls / "anchor.png")
        good[cls] += 1
    images = folders.read_tree(root, 16)
    assert len(images.train_y) + len(images.test_y) == sum(good.values())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"skipped {bad} unreadable image file(s)" in err


def test_zip_members_that_are_not_images_or_are_broken(tmp_path, capsys):
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cls in ("a", "b"):
            for i in range(5):
                buffer = tmp_path / "img.png"
                Image.new("RGB", (8, 8), (i, 0, 0)).save(buffer)
                zf.write(buffer, f"top/train/{cls}/{i}.png")
                zf.write(buffer, f"top/test/{cls}/{i}.png")
        zf.writestr("top/train/a/broken.jpg", b"\xff\xd8\xff garbage")
        zf.writestr("top/LICENSE", "text")
    images = folders.read_tree(archive, None)
    assert len(images.train_y) == 10 and len(images.test_y) == 10
    assert "skipped 1 unreadable" in capsys.readouterr().err


def test_resume_checks_the_checkpoint_against_the_command(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--model", "baseline_cnn", "--profile", "smoke", "--out", str(out), "--set", "epochs=3"]
    import harness.train

    original = harness.train.Trainer.save_checkpoint

    def save_then_stop(self, *args):
        original(self, *args)
        raise KeyboardInterrupt  # interrupted right after the first checkpoint

    harness.train.Trainer.save_checkpoint = save_then_stop
    try:
        assert main(argv) == 130
    finally:
        harness.train.Trainer.save_checkpoint = original
    assert "Resume with:" in capsys.readouterr().err
    changed = argv[:-1] + ["epochs=5", "--resume"]
    assert_one_line(*run_cli(changed, capsys), "was made with other settings")
    (out / "baseline_cnn" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert_one_line(*run_cli(argv + ["--resume"], capsys), "cannot be read")
    assert main(argv + ["--overwrite"]) == 0


def _undecodable(root, classes=("cat", "dog"), files=3):
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (root / cls / f"{i}.jpg").write_bytes(b"\xff\xd8\xff not a picture")
    return root


def test_data_with_no_readable_image_stops_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--all", "--profile", "smoke", "--data", str(_undecodable(tmp_path / "bad")), "--out", str(out)]
    code, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert_one_line(code, err, f"no readable image in '{tmp_path / 'bad'}': 6 file(s) could not be decoded")
    assert not (out / "leaderboard.md").exists() and not list(out.glob("*/metrics.json"))


def test_a_class_with_no_readable_image_is_named(tmp_path, capsys):
    root = _undecodable(tmp_path / "data", classes=("cat",))
    (root / "dog").mkdir()
    for i in range(6):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / "dog" / f"{i}.png")
    code, err = run_cli(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(root),
                         "--out", str(tmp_path / "out")], capsys)
    assert_one_line(code, err, f"class folder 'cat' in '{root}' has no readable image")
    assert not (tmp_path / "out" / "leaderboard.md").exists()


def test_a_dataset_plugin_missing_a_class_stops_the_run(site, tmp_path, capsys):
    """Whatever reads the data, a class without training images stops the run in one line."""
    install_plugin(site, "lopsided", """
        import numpy as np
        from harness import DatasetSpec, hookimpl
        from harness.toolkit import Images

        def load(path, size):
            x = np.zeros((12, 3, 8, 8), np.uint8)
            return Images(["a", "b", "c"], x, np.array([0, 1] * 6), x[:3], np.array([0, 1, 2]), source=str(path))

        @hookimpl
        def register_datasets(register):
            register(DatasetSpec("lopsided", load=load, accepts=lambda path: path.suffix == ".lop"))
    """, "lopsided", dist="harness-lopsided")
    (tmp_path / "d.lop").write_text("")
    code, err = run_cli(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(tmp_path / "d.lop"),
                         "--out", str(tmp_path / "out")], capsys)
    assert_one_line(code, err, "has no training image of class 'c'")
