"""What a catalog's model is, whichever library builds it: the profile sizes, the transfer recipe
with pretrained weights, the from-scratch recipe without, and names close to an unknown one."""
from __future__ import annotations

import dataclasses
import difflib

from harness import ModelSpec
from harness.toolkit import HarnessError
from harness.recipes import scratch_recipe, transfer_recipe

SMOKE_SIZE, QUICK_SIZE = 64, 160  # the built-in transfer models' smoke and (at most) quick sizes


def profile_sizes(native: int, smallest: int = SMOKE_SIZE, fixed: bool = False) -> dict:
    """The architecture's pretrained size for full; quick at most 160 px, smoke 64 px (never below
    the size the architecture needs); a fixed-size architecture (a ViT) at its size everywhere."""
    if fixed:
        return {"default": native}
    smoke = max(SMOKE_SIZE, smallest)
    return {"smoke": min(smoke, native), "quick": max(min(QUICK_SIZE, native), min(smoke, native)), "full": native}


def catalog_spec(architecture: ModelSpec, depthwise: bool) -> ModelSpec:
    """A catalog's architecture (its name, builder, sizes, head, weights and description) with the
    study's recipes: with weights, the transfer recipe and the from-scratch one for
    --no-pretrained; without, from scratch only."""
    scratch, scratch_profiles = scratch_recipe()
    pretrained = architecture.weights is not None
    recipe, profiles = transfer_recipe() if pretrained else (scratch, scratch_profiles)
    return dataclasses.replace(
        architecture, family="transfer" if pretrained else "scratch", recipe=recipe, profiles=profiles,
        scratch_recipe=scratch, scratch_profiles=scratch_profiles,
        # depthwise convolutions train slower in bf16 on a CPU (MobileNetV3-Small 0.67x)
        cpu_bf16=("eval",) if depthwise else ("train", "eval"),
    )


def unknown_architecture(catalog: str, name: str, known: list) -> HarnessError:
    """One line naming the closest architectures: among those of the same family (the same first
    word, ``resnet`` of ``resnet_big``) when there are any, else among all."""
    family = [k for k in known if k.startswith(name.split("_")[0].split(".")[0])]
    close = difflib.get_close_matches(name, family, n=5, cutoff=0) if family else \
        difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; close: {', '.join(f'{catalog}:{c}' for c in close)}" if close else ""
    return HarnessError(f"unknown {catalog} architecture '{name}'{hint} (see harness list --catalog {catalog})")


def has_depthwise(model) -> bool:
    from torch import nn

    return any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())
