"""The machine a result came from: CPU model and the instruction-set features that pick kernels,
cores and threads, memory, GPUs and their CUDA stack, and a short label for tables. Times and
images per second are facts about a machine as much as about a model, so every result keeps this."""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# the CPU features that decide which kernels torch runs (bf16 matmuls natively or emulated, AMX tiles)
KERNEL_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve")


def cpu_info(text: str | None = None) -> dict:
    """Model name and feature flags as the OS reports them (``/proc/cpuinfo`` on Linux)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    fields: dict = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())  # the first processor's entries
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    name = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or platform.processor()
    # a virtual machine's CPU is often named only "AMD EPYC": family and model tell the generation apart
    return {"cpu": name or platform.machine(), "cpu_family": fields.get("cpu family"), "cpu_model": fields.get("model"),
            "features": {flag: flag in flags for flag in KERNEL_FEATURES}}


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpu_info() -> dict:
    """GPU name, count and memory with the CUDA and cuDNN versions in use; empty entries without a
    GPU (a CUDA build of torch on a machine without one uses no CUDA)."""
    import torch

    if not torch.version.cuda or not torch.cuda.is_available():
        return {"gpu": None, "gpu_count": 0, "gpu_memory_gib": None, "cuda": None, "cudnn": None}
    properties = torch.cuda.get_device_properties(0)
    return {"gpu": properties.name, "gpu_count": torch.cuda.device_count(),
            "gpu_memory_gib": round(properties.total_memory / 2**30, 1), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}


def label(block: dict) -> str:
    """A short name for tables: the GPU when there is one, else the CPU with its cores and the
    feature that matters most for speed here (AMX, native bf16, AVX-512 or AVX2)."""
    if block.get("gpu"):
        count = block.get("gpu_count") or 1
        return f"{count}x {block['gpu']}" if count > 1 else str(block["gpu"])
    features = block.get("features") or {}
    best = next((name for name in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if features.get(name)), None)
    cores = block.get("cores")
    return f"{block.get('cpu')}, {cores} cores" + (f", {best}" if best else "")


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    block = cpu_info()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    block.update({"cores": usable, "cpu_count": os.cpu_count(), "memory_gib": memory_gib(),
                  "os": platform.system(), "arch": platform.machine()})
    block.update(gpu_info())
    block["label"] = label(block)
    return block


def describe() -> dict:
    """This machine, with the torch threads in use now (which a run may have set)."""
    import torch

    return {**_static(), "threads": torch.get_num_threads()}


def key(block: dict | None) -> str:
    """What makes two results' times comparable: the same label (CPU model, cores, GPU)."""
    return (block or {}).get("label") or "machine not recorded"
