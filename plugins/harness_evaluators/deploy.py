"""``--eval deploy``: each scored stage as it would be shipped. The model is exported to ONNX and
run by ONNX Runtime on the CPU over the test images (its top-1 agreement with PyTorch's float32
predictions, its accuracy, batch-1 latency, throughput at a serving batch, file size), then
quantized to int8 (static, QDQ, ranges fitted on training images) and measured the same way, with
the accuracy change against the float32 file tested image by image (exact McNemar, paired
bootstrap interval). A model that does not export or quantize gets the reason in its row."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

AGREEMENT_FLOOR = 0.999  # an exported float32 model that agrees less with PyTorch is a failed export
CHUNK = 256  # test images converted to floats at a time: the whole set at 224 px would be GBs


def deploy(ctx) -> dict:
    from harness.toolkit import one_line, onnx_session, require_onnx

    require_onnx()
    model = copy.deepcopy(ctx.model).float().cpu().eval()  # the run's model stays as the run has it
    folder, threads = Path(ctx.folder), _threads()
    fields = {"onnx_threads": threads, "onnx_provider": _provider(ctx)}  # what the sessions below run on
    try:
        fp32 = _export(model, ctx, folder / f"model-{ctx.stage}.onnx")
    except Exception as exc:  # noqa: BLE001 - an operator the exporter lacks fails this row alone
        return {**fields, "onnx_error": f"export: {one_line(exc)}"}
    fp32_sess = onnx_session(fp32, threads, _device(ctx))
    torch_pred, fp32_pred = _predictions(ctx, model, fp32_sess)
    fields.update(_measured("onnx", fp32, fp32_sess, ctx, fp32_pred))
    fields["onnx_agree"] = float((fp32_pred == torch_pred).mean())
    if fields["onnx_agree"] < AGREEMENT_FLOOR:
        fields["onnx_error"] = (f"ONNX Runtime agrees with PyTorch on {fields['onnx_agree']:.2%} of the test images "
                                f"(at least {AGREEMENT_FLOOR:.1%} expected)")
        return fields
    try:
        int8 = _quantize(fp32, ctx, folder / f"model-{ctx.stage}.int8.onnx")
    except Exception as exc:  # noqa: BLE001 - an operator the quantizer lacks fails int8 alone
        return {**fields, "int8_error": f"quantize: {one_line(exc)}"}
    int8_sess = onnx_session(int8, threads, _device(ctx))
    _, int8_pred = _predictions(ctx, None, int8_sess)
    fields.update(_measured("int8", int8, int8_sess, ctx, int8_pred))
    fields.update(_paired(fp32_pred, int8_pred, np.asarray(ctx.test_y)))
    fields["int8_agree"] = float((int8_pred == fp32_pred).mean())
    fields["int8_speedup"] = fields["onnx_ms_p50"] / fields["int8_ms_p50"] if fields["int8_ms_p50"] else None
    _keep(ctx, "onnx", fp32_pred)
    _keep(ctx, "int8", int8_pred)
    return fields


def _device(ctx) -> str:
    return str(getattr(ctx.accel, "device", "cpu") or "cpu")


def _provider(ctx) -> str:
    """The execution provider the sessions use: CUDA's on a GPU run where ONNX Runtime has it."""
    from harness.toolkit import onnx_providers

    return onnx_providers(_device(ctx))[0]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _export(model, ctx, path: Path) -> Path:
    from harness.toolkit import export_onnx, model_normalisation, onnx_metadata

    mean, std = model_normalisation(model)
    return export_onnx(model, path, ctx.input_size, onnx_metadata(ctx.config, ctx.classes, mean, std))


def floats(ctx, x_uint8) -> np.ndarray:
    from harness.toolkit import onnx_inputs

    return onnx_inputs(x_uint8, ctx.input_size)


def _quantize(fp32: Path, ctx, path: Path) -> Path:
    from harness.toolkit import calibration_sample, quantize_int8

    return quantize_int8(fp32, path, calibration_sample(ctx.train_x, ctx.input_size,
                                                        int(ctx.options.get("calibration_images", 256))))


def _predictions(ctx, model, sess) -> tuple:
    """Top-1 predictions over the test images, chunk by chunk: PyTorch's float32 through the
    harness's own input path (when ``model`` is given: no test-time augmentation, no bf16) and the
    file's in ONNX Runtime on what ``onnx_inputs`` makes of the same images."""
    import torch

    from harness.toolkit import onnx_logits, predict_logits

    torch_pred, file_pred = [], []
    for start in range(0, len(ctx.test_x), CHUNK):
        chunk = ctx.test_x[start:start + CHUNK]
        if model is not None:
            torch_pred.append(predict_logits(model, torch.as_tensor(np.asarray(chunk)), input_size=ctx.input_size,
                                             batch_size=CHUNK).argmax(1).numpy())
        file_pred.append(onnx_logits(sess, floats(ctx, chunk)).argmax(1))
    return (np.concatenate(torch_pred) if torch_pred else None), np.concatenate(file_pred)


def _measured(prefix: str, path: Path, sess, ctx, pred: np.ndarray) -> dict:
    """Accuracy, batch-1 latency, throughput at the serving batch and size of one file."""
    from harness.toolkit import SERVING_BATCH, onnx_latency, onnx_throughput

    sample = floats(ctx, ctx.test_x[:int(ctx.options.get("serving_batch", SERVING_BATCH))])
    p50, p95 = onnx_latency(sess, sample[:1])
    return {f"{prefix}_acc": float((pred == np.asarray(ctx.test_y)).mean()), f"{prefix}_ms_p50": p50,
            f"{prefix}_ms_p95": p95, f"{prefix}_img_s": onnx_throughput(sess, sample),
            f"{prefix}_batch": len(sample), f"{prefix}_mb": Path(path).stat().st_size / 2**20}


def _paired(fp32_pred: np.ndarray, int8_pred: np.ndarray, labels: np.ndarray) -> dict:
    """int8 minus float32 accuracy on the same test images, in the same order."""
    from harness.toolkit import mcnemar_exact, paired_bootstrap95

    right_fp32, right_int8 = fp32_pred == labels, int8_pred == labels
    diff, low, high = paired_bootstrap95(right_int8, right_fp32)
    p = mcnemar_exact(int((right_int8 & ~right_fp32).sum()), int((~right_int8 & right_fp32).sum()))
    return {"int8_diff": diff, "int8_diff_low": low, "int8_diff_high": high, "int8_p": p}


def _keep(ctx, kind: str, pred: np.ndarray) -> None:
    """The file's predictions beside the stage's own (``predictions-<stage>-<kind>.npz``), so that
    any comparison can be made again from the files."""
    from harness.toolkit import write_predictions

    if ctx.main:
        classes = len(ctx.classes)
        write_predictions(Path(ctx.folder) / f"predictions-{ctx.stage}-{kind}.npz", ctx.test_y, pred,
                          np.eye(classes, dtype=np.float32)[pred])
