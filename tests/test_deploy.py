"""The deployment view: every built-in model exports to ONNX and runs in ONNX Runtime; ``--eval
deploy`` measures the float32 file and its int8 quantization on the test images, pairs the two
image by image, calibrates on training images only; ``harness export`` writes a file that ONNX
Runtime alone (no harness) loads and that predicts what the run recorded."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from harness import plugin_registry
from harness.cli import main
from harness.report.stats import mcnemar_exact

from conftest import write_canonical

pytest.importorskip("onnxruntime", reason="the deploy extra is not installed: pip install -e '.[deploy]'")
pytest.importorskip("onnxscript", reason="the deploy extra is not installed: pip install -e '.[deploy]'")

from harness import deployment  # noqa: E402

pytestmark = pytest.mark.slow

# every registered model, and catalog names with depthwise and squeeze-excite blocks
MODELS = ["baseline_cnn", "deep_cnn", "mobilenetv3", "mobilenetv3_large", "vgg16", "resnet50", "inception_v3",
          "efficientnet_lite0", "tv:mobilenet_v3_small", "timm:efficientnet_b0"]


@pytest.mark.parametrize("name", MODELS)
def test_every_built_in_model_exports_and_runs_in_onnx_runtime(tmp_path, name):
    registry = plugin_registry.load(report=False)
    if name not in registry.models and ":" not in name:
        pytest.skip(f"{name} is not installed")
    spec = registry.model(name).spec
    size = spec.size_for("smoke")
    torch.manual_seed(0)
    model = spec.build(10).eval()
    path = deployment.export_onnx(model, tmp_path / "m.onnx", size, {"input_size": str(size), "classes": "[]"})
    x = torch.rand(5, 3, size, size)  # another batch size than the export's example
    got = deployment.onnx_logits(deployment.onnx_session(path, 2), x.numpy())
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (5, 10)
    assert np.allclose(got, expected, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """baseline_cnn trained briefly with --eval deploy: float32 and without test-time augmentation,
    so that the run's own predictions are PyTorch's plain float32 ones."""
    base = tmp_path_factory.mktemp("deploy")
    data = write_canonical(base / "cifar-10-batches-py", per_class=(40, 20))
    out = base / "out"
    code = main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--eval", "deploy", "--no-amp", "--set", "epochs=3", "--set", "tta_flip=false",
                 "--set", "tta_translate=0", "--set", "data.val_size=20"])
    return code, out, data


def test_deploy_measures_both_files_and_pairs_them_on_the_same_images(deployed):
    code, out, _ = deployed
    assert code == 0
    folder = out / "baseline_cnn"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert "onnx_error" not in metrics and "int8_error" not in metrics, metrics.get("onnx_error")
    assert metrics["onnx_agree"] >= 0.999 and metrics["onnx_ms_p95"] >= metrics["onnx_ms_p50"] > 0
    assert metrics["int8_mb"] < metrics["onnx_mb"] and metrics["int8_img_s"] > 0
    run = np.load(folder / "predictions-train.npz")
    fp32, int8 = np.load(folder / "predictions-train-onnx.npz"), np.load(folder / "predictions-train-int8.npz")
    # the exported file fed as the harness feeds the model: the run's own (float32, no TTA) predictions
    assert (fp32["pred"] == run["pred"]).mean() >= 0.999
    assert np.array_equal(fp32["label"], run["label"]) and np.array_equal(int8["label"], run["label"])
    right_fp32, right_int8 = fp32["pred"] == fp32["label"], int8["pred"] == int8["label"]
    assert metrics["int8_acc"] == pytest.approx(right_int8.mean()) and metrics["onnx_acc"] == pytest.approx(right_fp32.mean())
    assert metrics["int8_diff"] == pytest.approx(right_int8.mean() - right_fp32.mean())
    assert metrics["int8_p"] == pytest.approx(mcnemar_exact(int((right_int8 & ~right_fp32).sum()),
                                                            int((~right_int8 & right_fp32).sum())))
    report = (out / "report.md").read_text()
    assert "## Deployment: ONNX Runtime, float32 and int8" in report and "](deployment.png)" in report
    assert (out / "deployment.png").read_bytes()[:4] == b"\x89PNG"


def test_export_writes_a_file_onnx_runtime_alone_runs_as_the_run_recorded(deployed, tmp_path):
    _, out, _ = deployed
    folder = out / "baseline_cnn"
    target = tmp_path / "shipped.int8.onnx"
    assert main(["export", "--model-dir", str(folder), "--int8", "--out", str(target)]) == 0
    meta = deployment.read_onnx_metadata(target)
    config = json.loads((folder / "config.json").read_text())
    assert meta["input_size"] == 32 and meta["classes"] == config["classes"]
    # the test images as floats in [0, 1], in test-set order, for a process that has no harness
    from harness.saved_models import _splits_of

    splits, _ = _splits_of(plugin_registry.load(report=False), config, None, None)
    np.save(tmp_path / "test.npy", np.asarray(splits.test_x, dtype=np.float32) / 255)
    script = ("import sys; sys.modules['harness'] = None\n"  # any import of harness would fail
              "import numpy as np, onnxruntime as ort\n"
              f"s = ort.InferenceSession({str(target)!r}, providers=['CPUExecutionProvider'])\n"
              f"x = np.load({str(tmp_path / 'test.npy')!r})\n"
              "np.save(sys.argv[1], s.run(None, {'images': x})[0].argmax(1))\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "pred.npy")], check=True, timeout=120)
    recorded = np.load(folder / "predictions-train-int8.npz")["pred"]
    assert np.array_equal(np.load(tmp_path / "pred.npy"), recorded)


def test_int8_is_calibrated_on_training_images_only(monkeypatch, tmp_path):
    """The ranges are fitted on a draw of the training split: a test split of other pixels never
    reaches the quantizer."""
    import harness.toolkit
    from harness.evaluate import EvalContext
    from harness_evaluators import deploy

    seen = []

    def quantize(fp32, int8, calibration):
        seen.append(calibration)
        raise RuntimeError("stop here")  # what the quantizer was given is all this test needs

    monkeypatch.setattr(harness.toolkit, "quantize_int8", quantize)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3)).eval()
    train_x = np.full((300, 3, 8, 8), 7, np.uint8)
    test_x = torch.full((20, 3, 8, 8), 200, dtype=torch.uint8)
    ctx = EvalContext(model=model, predict=None, test_x=test_x, test_y=np.zeros(20, np.int64), classes=["a", "b", "c"],
                      input_size=8, logits=None, folder=tmp_path, stage="train", config={"model": "tiny", "input_size": 8},
                      recipe=None, options={}, main=True, accel=None, batch_size=10, train_x=train_x)
    fields = deploy.deploy(ctx)
    assert fields["int8_error"] == "quantize: RuntimeError: stop here"
    (calibration,) = seen
    assert calibration.shape == (256, 3, 8, 8) and np.allclose(calibration, 7 / 255)


def test_a_model_that_does_not_export_is_its_rows_reason(monkeypatch, tmp_path):
    """An operator the exporter lacks fails that row's deployment fields in one line; nothing raises."""
    import harness.toolkit
    from harness.evaluate import EvalContext
    from harness_evaluators import deploy, sections

    def export(*args, **kwargs):
        raise NotImplementedError("aten::fancy_op has no ONNX translation")

    monkeypatch.setattr(harness.toolkit, "export_onnx", export)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
    ctx = EvalContext(model=model, predict=None, test_x=torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
                      test_y=np.zeros(4, np.int64), classes=["a", "b", "c"], input_size=8, logits=None, folder=tmp_path,
                      stage="train", config={"model": "odd", "input_size": 8}, recipe=None, options={}, main=True,
                      accel=None, batch_size=4)
    fields = deploy.deploy(ctx)
    assert fields["onnx_error"] == "export: NotImplementedError: aten::fancy_op has no ONNX translation"
    assert "onnx_acc" not in fields
    assert sections._deploy_cells(fields)["failed"] == fields["onnx_error"]
