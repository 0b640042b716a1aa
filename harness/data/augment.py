"""Batched augmentation on tensors: rotation, zoom, shift and horizontal flip of a whole batch in
one affine resampling (``affine_grid`` + ``grid_sample``), seeded by a ``torch.Generator``.

Edges are filled with the nearest pixel, as Keras's ``ImageDataGenerator`` does by default.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.specs import Augment


def is_identity(augment: Augment) -> bool:
    return not (augment.rotation or augment.flip or augment.zoom or augment.shift)


def augment_batch(x: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Augment a float batch (N, C, H, W); each image gets its own random transform."""
    if is_identity(augment):
        return x
    n = x.shape[0]

    def uniform(limit):  # n values uniform in [-limit, limit]
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

    flips = torch.rand(n, generator=generator) < 0.5 if augment.flip else torch.zeros(n, dtype=torch.bool)
    if not (augment.rotation or augment.zoom or augment.shift):
        # a flip alone needs no resampling
        return torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)
    angle = uniform(augment.rotation * math.pi / 180)
    scale = 1 + uniform(augment.zoom)
    # grid coordinates span [-1, 1], so a shift by a fraction f of the width is 2f
    tx, ty = uniform(2 * augment.shift), uniform(2 * augment.shift)
    sign = 1 - 2 * flips.float()
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # output pixel -> input pixel: rotate and scale the (optionally mirrored) output coordinates
    theta = torch.stack(
        [torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
