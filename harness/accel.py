"""Where and how the numbers are computed: the device, mixed precision, memory layout and
``torch.compile``. These change speed, not the recipe, so they are run options (``--device``,
``--amp``, ``--channels-last``, ``--compile``) and not ``--set`` keys; each is recorded with the
results because it changes the last bits of them.

Defaults: channels-last everywhere (training on the 2-core CPU, `harness bench`: baseline_cnn
2,999 vs 2,501 img/s, deep_cnn 432 vs 345, MobileNetV3-Small at 160 px 202 vs 154, ResNet50 at
64 px 82 vs 80); bfloat16 autocast on a GPU only (tensor cores want it; on a CPU it is an
option). A CPU run is bit-for-bit reproducible with either layout.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import asdict, dataclass

from harness.errors import HarnessError


def gpu_available() -> bool:
    """torch's answer; on Linux without a GPU driver loaded the answer is no, known without the
    seconds it takes to import torch (so that a refused command is refused at once)."""
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/kfd")):
        return False
    import torch

    return torch.cuda.is_available()


@dataclass(frozen=True)
class Accel:
    device: str = "cpu"
    amp: bool = False  # bfloat16 autocast for the forward pass (no loss scaling needed, unlike float16)
    channels_last: bool = True
    compile: bool = False

    @classmethod
    def choose(cls, device: str = "auto", amp=None, channels_last=None, compile: bool = False) -> "Accel":
        """``None`` means the device's default; a CUDA device that is not there is an error."""
        if device == "auto":
            device = "cuda" if gpu_available() else "cpu"
        kind = device.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise HarnessError(f"--device {device}: use auto, cpu, cuda or cuda:N")
        if kind == "cuda" and not gpu_available():
            raise HarnessError(f"--device {device}: torch sees no CUDA GPU here; use --device cpu")
        on_gpu = kind == "cuda"
        return cls(device, on_gpu if amp is None else bool(amp),
                   True if channels_last is None else bool(channels_last), bool(compile))

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> dict:
        return asdict(self)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)

    def to_device(self, tensor):
        # pinned host memory lets the copy overlap with compute; only worth it towards a GPU
        return tensor.to(self.device, non_blocking=self.on_gpu)

    def layout(self, x):
        if self.channels_last and x.dim() == 4:
            import torch

            return x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, model):
        """Move the model to the device (and layout) in place; return what to call forward on.

        The compiled module shares its parameters with ``model``, so state dicts, freezing and
        checkpoints keep using ``model`` and its plain parameter names.
        """
        return self.compiled(self.place(model))

    def place(self, model):
        import torch

        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def compiled(self, module):
        if not self.compile:
            return module
        import torch

        return torch.compile(module)

    def sync(self) -> None:
        """Wait for queued GPU work (timings and benchmarks only)."""
        if self.on_gpu:
            import torch

            torch.cuda.synchronize(self.device)


CPU = Accel()
