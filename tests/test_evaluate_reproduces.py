"""A saved model reproduces its own numbers: ``harness evaluate`` reads the data the run used (the
dataset recorded in config.json, decoded at the same size, the same split) and scores it with the
run's own function, for every kind of data the harness reads."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from harness.cli import main

from conftest import CLASSES, pattern_images, write_canonical, write_image_tree


def class_folder_of_mixed_sizes(root):
    """``<class>/*`` with images of three sizes (and an RGBA PNG): the imagefolder dataset
    resizes each to the model's input size when it decodes them."""
    x, y = pattern_images(24, len(CLASSES), size=64, seed=9)
    sizes = [(20, 20), (64, 48), (100, 100)]
    for i, (image, label) in enumerate(zip(x, y)):
        picture = Image.fromarray(image.transpose(1, 2, 0)).resize(sizes[i % 3])
        folder = root / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        if i % 7 == 0:
            picture.convert("RGBA").save(folder / f"{i:03d}.png")
        else:
            picture.save(folder / f"{i:03d}.jpg", quality=90)
    return root


DATA = {
    "canonical": lambda tmp: write_canonical(tmp / "cifar-10-batches-py", per_class=(30, 10)),
    "split-zip": lambda tmp: write_image_tree(tmp / "data.zip", per_class=(30, 10), as_zip=True),
    "split-folder": lambda tmp: write_image_tree(tmp, per_class=(30, 10)),
    "class-folder-mixed-sizes": lambda tmp: class_folder_of_mixed_sizes(tmp / "signs"),
}


@pytest.mark.parametrize("kind", list(DATA))
def test_evaluate_reproduces_the_runs_test_accuracy(tmp_path, capsys, kind):
    data = DATA[kind](tmp_path)
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=12", "--set", "epochs=2", "--set", "tta_flip=true"]) == 0
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == metrics["accuracy"]
    assert result["confusion"] == metrics["confusion"]
    assert result["mean_confidence"] == metrics["mean_confidence"]  # the same logits, not just the same argmax
    config = json.loads((out / "baseline_cnn" / "config.json").read_text())
    assert config["dataset"] == ("imagefolder" if kind == "class-folder-mixed-sizes" else "cifar10")
    assert result["test_fingerprint"] == metrics["stages"][-1]["test_fingerprint"]


def test_evaluate_keeps_predictions_for_its_own_test_set_only(tmp_path, capsys):
    out = tmp_path / "out"
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=12", "--set", "epochs=1"]) == 0
    kept = out / "baseline_cnn" / "predictions-train.npz"
    written = kept.read_bytes()
    kept.unlink()
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn")]) == 0
    assert np.array_equal(np.load(kept)["pred"], np.load(io.BytesIO(written))["pred"])  # written again, the same
    before = kept.read_bytes()
    other = write_canonical(tmp_path / "other" / "cifar-10-batches-py", per_class=(30, 20))
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--data", str(other)]) == 0
    assert kept.read_bytes() == before  # another test set's predictions do not replace the run's


def test_evaluate_on_data_with_other_classes_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    data = write_canonical(tmp_path / "cifar-10-batches-py", per_class=(30, 10))
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=12", "--set", "epochs=1"]) == 0
    other = write_image_tree(tmp_path / "other", classes=["a", "b"], per_class=(10, 5))
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--data", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass data with the same classes" in err[0]


def test_predict_decodes_files_as_training_decoded_them(tmp_path):
    from harness.data.folders import decode
    from harness.saved_models import read_images

    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:20, :, 3] = 255  # the lower half transparent: the training decode puts it on white
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    (tmp_path / "a.png").write_bytes(buffer.getvalue())
    big = np.random.default_rng(0).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "b.jpg", quality=85)
    batch = read_images([tmp_path / "a.png", tmp_path / "b.jpg"], 32).numpy()
    for got, name in zip(batch, ("a.png", "b.jpg")):
        assert np.array_equal(got, decode((tmp_path / name).read_bytes(), 32))
    assert batch[0][:, 30, 5].tolist() == [255, 255, 255]  # transparent -> white, as in training
