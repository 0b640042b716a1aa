"""What shipping a zoo model costs and buys on this CPU: PyTorch eager (float32, the harness's
default threads) against ONNX Runtime float32 and int8 (static QDQ) for each zoo model at its quick
input size, in one process: throughput at a serving batch of 32 and batch-1 latency p50, every
ratio against eager from the same sitting. Random weights: speed does not depend on their values.
Run: python -m pytest benchmarks/test_onnx_speed.py -q -s (nothing else running)."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime", reason="pip install -e '.[deploy]'")

from harness import deployment, plugin_registry  # noqa: E402
from harness.cores import images_per_second, latency_ms  # noqa: E402

ZOO = ["baseline_cnn", "deep_cnn", "mobilenetv3", "efficientnet_lite0"]
BATCH, REPEATS = deployment.SERVING_BATCH, 7


def eager(model, x: torch.Tensor) -> tuple:
    """Throughput at ``len(x)`` and batch-1 p50 latency of the PyTorch model, warm."""
    with torch.inference_mode():
        rate = images_per_second(lambda: model(x), len(x), REPEATS)
        return rate, latency_ms(lambda: model(x[:1]), 0, 50)[0]


def test_onnx_runtime_against_pytorch_eager(tmp_path):
    registry = plugin_registry.load(report=False)
    threads = torch.get_num_threads()
    rows = []
    for name in [n for n in ZOO if n in registry.models]:
        spec = registry.model(name).spec
        size = spec.size_for("quick")
        torch.manual_seed(0)
        model = spec.build(10).eval()
        x = torch.rand(BATCH, 3, size, size)
        fp32 = deployment.export_onnx(model, tmp_path / f"{name}.onnx", size, {"input_size": str(size)})
        int8 = deployment.quantize_int8(fp32, tmp_path / f"{name}.int8.onnx", torch.rand(64, 3, size, size).numpy())
        row = {"model": name, "px": size}
        row["eager img/s"], row["eager ms"] = eager(model, x)
        for kind, path in (("fp32", fp32), ("int8", int8)):
            sess = deployment.onnx_session(path, threads)
            row[f"{kind} img/s"] = deployment.onnx_throughput(sess, x.numpy(), repeats=REPEATS)
            row[f"{kind} ms"] = deployment.onnx_latency(sess, x[:1].numpy())[0]
        rows.append(row)
    print(f"\n{threads} threads; throughput at batch {BATCH}, latency p50 at batch 1")
    for row in rows:
        print(f"{row['model']:>18} {row['px']:>3}px  eager {row['eager img/s']:7.0f} img/s {row['eager ms']:6.2f} ms | "
              f"ORT fp32 {row['fp32 img/s']:7.0f} ({row['fp32 img/s'] / row['eager img/s']:.2f}x) "
              f"{row['fp32 ms']:6.2f} ms | int8 {row['int8 img/s']:7.0f} ({row['int8 img/s'] / row['eager img/s']:.2f}x) "
              f"{row['int8 ms']:6.2f} ms ({row['fp32 ms'] / row['int8 ms']:.2f}x fp32's speed)")
    # the exported float32 file is no slower to serve than eager PyTorch on this machine's CPU
    assert all(row["fp32 img/s"] >= 0.8 * row["eager img/s"] for row in rows), rows
