"""What a plugin may use besides the specs ``harness`` exports, in one place: the built-in plugins
(``plugins/``) and the Lite0 package import from here, from ``harness.recipes`` (shared recipes) and
from ``harness.executors`` (the executor API), and from nothing else in harness. Names that need torch
are imported when first asked for, so a plugin module that names them stays light to import."""
from __future__ import annotations

import importlib

# name -> the module that defines it
_WHERE = {
    # errors a plugin raises or reports
    "HarnessError": "harness.errors", "one_line": "harness.errors",
    # models: a timm backbone with a new head and its normalisation, pretrained weights
    "timm_model": "harness.backbones", "Normalized": "harness.backbones",
    "empty_weights": "harness.modelcheck", "read_state": "harness.weights", "load_state": "harness.weights", "rename_by_order": "harness.weights",
    # datasets: decoded once into the memory-mapped cache; image trees and zips
    "cached_images": "harness.data.cache", "read_tree": "harness.data.folders",
    "is_split_tree": "harness.data.folders", "Images": "harness.data.images",
    # evaluators: the run's prediction path, report helpers, files written atomically
    "predictor": "harness.evaluate", "predict_logits": "harness.evaluate", "reliability_png": "harness.report.plots",
    "reliability_grid_png": "harness.report.plots", "deployment_png": "harness.report.plots",
    "evaluated_stages": "harness.report", "number": "harness.report", "is_number": "harness.report", "write_text": "harness.fileio",
    # deployment: ONNX export, ONNX Runtime sessions and int8 quantization (the deploy extra)
    **{name: "harness.deployment" for name in (
        "require_onnx", "onnx_metadata", "model_normalisation", "export_onnx", "onnx_session", "onnx_logits",
        "quantize_int8", "onnx_providers", "onnx_latency", "onnx_throughput", "read_onnx_metadata", "onnx_inputs",
        "calibration_sample", "SERVING_BATCH")},
    # the paired tests between two sets of predictions on the same images, and the model's input
    "mcnemar_exact": "harness.report.stats", "paired_bootstrap95": "harness.report.stats",
    "write_predictions": "harness.predictions", "model_input": "harness.data.tensors",
    # timing a call: batch-1 latency and throughput, warm-up excluded
    "latency_ms": "harness.cores", "images_per_second": "harness.cores",
    # callbacks: whether a monitored value improved
    "improved": "harness.callbacks",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'harness.toolkit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
