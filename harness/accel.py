"""Where and how the numbers are computed: the device, mixed precision, memory layout and
``torch.compile``. These change speed, not the recipe, so they are run options (``--device``,
``--amp``, ``--channels-last``, ``--compile``) and not ``--set`` keys; each is recorded with the
results because it changes the last bits of them.

Defaults (docs/performance.md has the measurements behind them): channels-last everywhere, which
trains faster on a CPU too. bfloat16 autocast (``--amp auto``, the default): always on a GPU
(tensor cores want it); on a CPU only where it has native bfloat16 (AVX512-BF16 or AMX) and only
for the phases the model's ``cpu_bf16`` names (depthwise convolutions train slower in bf16); a
CPU without native bf16 emulates it, much slower, so it stays float32.
``--amp`` / ``--no-amp`` force one choice for every model and phase. A CPU run is bit-for-bit
reproducible with either layout.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import asdict, dataclass, replace

from harness.errors import HarnessError


def gpu_available() -> bool:
    """torch's answer; on Linux without a GPU driver loaded the answer is no, known without the
    seconds it takes to import torch (so that a refused command is refused at once)."""
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/kfd")):
        return False
    import torch

    return torch.cuda.is_available()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), as torch's oneDNN
    build detects it; without them bf16 is emulated and slower than float32."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


PHASES = ("train", "eval")


@dataclass(frozen=True)
class Accel:
    device: str = "cpu"
    # bfloat16 autocast for the forward pass (no loss scaling needed, unlike float16) in training;
    # None: not decided yet ("auto", settled per model by ``for_model``)
    amp: bool | None = False
    channels_last: bool = True
    compile: bool = False
    eval_amp: bool | None = None  # the same for evaluation (validation, test, cached features); None: as amp
    amp_reason: str = ""  # how the choice was made, for the results

    @classmethod
    def choose(cls, device: str = "auto", amp=None, channels_last=None, compile: bool = False,
               here: bool = True) -> "Accel":
        """``None`` means the device's default; a CUDA device that is not there is an error, unless
        ``here`` is False (the device is on other machines: Ray tasks with GPUs). On a CPU,
        ``amp=None`` is "auto": settled per model and phase by ``for_model``."""
        if device == "auto":
            device = "cuda" if gpu_available() else "cpu"
        kind = device.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise HarnessError(f"--device {device}: use auto, cpu, cuda or cuda:N")
        if kind == "cuda" and here and not gpu_available():
            raise HarnessError(f"--device {device}: torch sees no CUDA GPU here; use --device cpu")
        on_gpu = kind == "cuda"
        if amp is not None:
            reason = "forced by --amp" if amp else "forced by --no-amp"
        else:
            reason = "auto: bf16 on a GPU" if on_gpu else ""
        return cls(device, (True if on_gpu else None) if amp is None else bool(amp),
                   True if channels_last is None else bool(channels_last), bool(compile), amp_reason=reason)

    def for_model(self, spec) -> "Accel":
        """This accel with "auto" settled for one model: bf16 in the phases its ``cpu_bf16`` names
        when the CPU has native bf16, float32 otherwise. Forced choices pass through."""
        if self.amp is not None:
            return self
        phases = tuple(getattr(spec, "cpu_bf16", PHASES))
        if not cpu_has_native_bf16():
            return replace(self, amp=False, eval_amp=False,
                           amp_reason="auto: float32, this CPU has no native bfloat16 (AVX512-BF16/AMX)")
        named = ", ".join(phases) or "no phase"
        return replace(self, amp="train" in phases, eval_amp="eval" in phases,
                       amp_reason=f"auto: native bfloat16 CPU, bf16 for {named} ({spec.name}'s cpu_bf16)")

    @property
    def evaluates_in_bf16(self) -> bool:
        return bool(self.amp if self.eval_amp is None else self.eval_amp)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> dict:
        """The fields that change the numbers (recorded, and part of the fingerprint): eval_amp only
        where it differs from amp, so runs from before per-phase precision keep their fingerprints."""
        described = {k: v for k, v in asdict(self).items() if k not in ("eval_amp", "amp_reason")}
        if self.eval_amp is not None and self.eval_amp != self.amp:
            described["eval_amp"] = self.eval_amp
        return described

    def autocast(self, phase: str = "train"):
        """bf16 autocast for ``phase`` ("train" or "eval") when chosen, else nothing."""
        if not (self.amp if phase == "train" else self.evaluates_in_bf16):
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


def settled(accel: Accel | None, spec) -> Accel:
    """What one model runs with: the asked ``accel`` (the CPU when none was asked) with ``--amp
    auto`` settled for ``spec``. A job is given it once, when it is made."""
    return (accel or CPU).for_model(spec)
