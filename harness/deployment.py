"""A trained model as it is shipped: exported to ONNX (dynamic batch, the exporter's default opset)
with the preprocessing it expects in the file's metadata, run by ONNX Runtime on the CPU, and
quantized to int8 (static, QDQ, calibrated on training images). Needs the ``deploy`` extra
(``pip install -e '.[deploy]'``: onnx, onnxruntime, onnxscript)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

INPUT, OUTPUT = "images", "logits"
SERVING_BATCH = 32  # the throughput figure's batch: a small server's
CALIBRATION_IMAGES = 256  # training images the int8 ranges are fitted on
CALIBRATION_BATCH = 32


def require_onnx() -> None:
    """One line saying how to install the extra when it is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise HarnessError("ONNX export needs the deploy extra: pip install -e '.[deploy]' "
                           "(onnx, onnxruntime, onnxscript)") from None


def onnx_metadata(config: dict, classes: list, mean, std) -> dict:
    """What a program needs to feed the file: the input it takes and the classes it names."""
    return {"input": f"float32 RGB in [0, 1], N x 3 x {config['input_size']} x {config['input_size']} (NCHW), "
                     "resized bilinearly; the mean/std normalisation is inside the graph",
            "input_size": str(config["input_size"]), "mean": json.dumps([float(v) for v in mean]),
            "std": json.dumps([float(v) for v in std]), "classes": json.dumps(list(classes)),
            "model": str(config.get("model")), "harness": "harness model exported with harness.deployment"}


def model_normalisation(model) -> tuple:
    """The mean and std a model normalises its [0, 1] input with (``Normalized``), or 0 and 1."""
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    if mean is None or std is None:
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    return mean.flatten().tolist(), std.flatten().tolist()


def export_onnx(model, path: Path, input_size: int, meta: dict) -> Path:
    """``model`` (float32, eval mode, on the CPU) as an ONNX file taking a batch of any size."""
    import onnx
    import torch

    model = model.float().cpu().eval()
    example = torch.rand(2, 3, input_size, input_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the exporter's advice is for torch's developers, not for a run
        warnings.simplefilter("ignore")
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.onnx.export(model, (example,), input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes=({0: batch},), dynamo=True, verbose=False)
    proto = program.model_proto
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def onnx_session(path: Path, threads: int, device: str = "cpu"):
    """An ONNX Runtime session with ``threads`` intra-op threads: on the CPU, or with the CUDA
    execution provider first when ``device`` is a GPU and the installed ONNX Runtime has it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=onnx_providers(device))


def onnx_providers(device: str = "cpu") -> list:
    """The execution providers, first choice first: CUDA's on a GPU run where the installed ONNX
    Runtime has it, then the CPU's."""
    import onnxruntime as ort

    wanted = str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if wanted else ["CPUExecutionProvider"]


def onnx_logits(sess, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The session's logits for float inputs, ``batch`` images at a time."""
    return np.concatenate([sess.run([OUTPUT], {INPUT: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def quantize_int8(fp32: Path, int8: Path, calibration: np.ndarray) -> Path:
    """Static post-training int8 quantization in QDQ form (per-channel int8 weights, uint8
    activations), the activations' ranges fitted on ``calibration`` (float inputs; training
    images, never test images)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.left = iter([{INPUT: calibration[i:i + CALIBRATION_BATCH]}
                              for i in range(0, len(calibration), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self.left, None)

    prepared = Path(int8).with_suffix(".prepared.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(str(prepared), str(int8), Batches(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        prepared.unlink(missing_ok=True)
    return Path(int8)


def onnx_latency(sess, one: np.ndarray, repeats: int = 50, warmup: int = 5) -> tuple:
    """Batch-1 latency in ms (p50, p95) over ``repeats`` runs after ``warmup``."""
    from harness.cores import latency_ms

    return latency_ms(lambda: sess.run([OUTPUT], {INPUT: one}), warmup, repeats)


def onnx_throughput(sess, batch: np.ndarray, repeats: int = 5) -> float:
    """Images per second at ``len(batch)``, one warm-up run first."""
    from harness.cores import images_per_second

    return images_per_second(lambda: sess.run([OUTPUT], {INPUT: batch}), len(batch), repeats)


def onnx_inputs(x_uint8, input_size: int) -> np.ndarray:
    """What an exported file takes: float32 in [0, 1] at its input size (its graph normalises)."""
    import torch

    from harness.data.tensors import model_input

    return model_input(torch.as_tensor(np.asarray(x_uint8)), input_size).numpy()


def calibration_sample(train_x, input_size: int, images: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Up to ``images`` training images (a seeded draw, in file order) as the file takes them: the
    int8 ranges are fitted on these, never on test images."""
    if train_x is None or not len(train_x):
        raise HarnessError("no training images to calibrate int8 on")
    count = min(images, len(train_x))
    rows = np.sort(np.random.default_rng(0).choice(len(train_x), size=count, replace=False))
    return onnx_inputs(train_x[rows], input_size)


def read_onnx_metadata(path: Path) -> dict:
    """The metadata ``export_onnx`` wrote (input size, mean, std, classes), checked to be there."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "input_size" not in props or "classes" not in props:
        raise HarnessError(f"'{path}' was not exported by harness (no input size or classes in its metadata)")
    return {"input_size": int(props["input_size"]), "classes": json.loads(props["classes"]),
            "mean": json.loads(props.get("mean", "[0, 0, 0]")), "std": json.loads(props.get("std", "[1, 1, 1]")),
            "model": props.get("model")}
