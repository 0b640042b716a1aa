"""Batched augmentation on tensors: rotation, zoom, shift and horizontal flip of a whole batch in
one affine resampling (``affine_grid`` + ``grid_sample``), seeded by a ``torch.Generator``.

Edges are filled with the nearest pixel, as Keras's ``ImageDataGenerator`` does by default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.data.tensors import model_input, resize, unit_floats
from harness.specs import Augment


@dataclass
class Transforms:
    """One transform per image of a batch."""

    flip: torch.Tensor  # bool: mirror left-right
    angle: torch.Tensor  # degrees, counter-clockwise
    scale: torch.Tensor  # > 1 zooms in
    shift_x: torch.Tensor  # fraction of the width, positive moves the content right
    shift_y: torch.Tensor  # fraction of the height, positive moves the content down

    def map(self, change) -> "Transforms":
        """The same transforms with ``change`` applied to each field (a device move, a row slice)."""
        return Transforms(*(change(value) for value in vars(self).values()))


def is_identity(augment: Augment) -> bool:
    return not (augment.rotation or augment.flip or augment.zoom or augment.shift or augment.translate)


def sample(n: int, augment: Augment, generator: torch.Generator) -> Transforms:
    """Random transforms for ``n`` images, uniform within the recipe's ranges."""

    def uniform(limit):  # n values uniform in [-limit, limit]
        return (torch.rand(n, generator=generator) * 2 - 1) * limit

    flip = torch.rand(n, generator=generator) < 0.5 if augment.flip else torch.zeros(n, dtype=torch.bool)
    return Transforms(flip, uniform(augment.rotation), 1 + uniform(augment.zoom),
                      uniform(augment.shift), uniform(augment.shift))


def apply(x: torch.Tensor, t: Transforms, resample: bool = True, size: int | None = None) -> torch.Tensor:
    """Apply per-image transforms to a float batch (N, C, H, W). With ``size`` the result is
    ``size`` x ``size``: resizing and transforming in one bilinear sampling of ``x`` (for a whole
    scale factor such as 32 -> 160 px the same numbers as resizing first, to float rounding, at a
    fraction of the cost: the source is small and no full-size intermediate is written)."""
    if not resample:  # a flip alone needs no resampling
        x = x if size is None else resize(x, size)
        return torch.where(t.flip.view(-1, 1, 1, 1), x.flip(-1), x)
    radians = t.angle * math.pi / 180
    sign = 1 - 2 * t.flip.float()
    cos, sin = torch.cos(radians) / t.scale, torch.sin(radians) / t.scale
    # theta maps output coordinates (in [-1, 1]) to input coordinates: a mirror, then a rotation
    # and scaling, then the shift (2f in grid units for a fraction f), inverted
    theta = torch.stack(
        [torch.stack([cos * sign, -sin, -2 * t.shift_x], 1),
         torch.stack([sin * sign, cos, -2 * t.shift_y], 1)], 1
    ).to(x.dtype)
    height, width = (size, size) if size is not None else x.shape[-2:]
    return F.grid_sample(x, affine_grid(theta, height, width), mode="bilinear", padding_mode="border",
                         align_corners=False)


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, height, width), align_corners=False)``, by broadcasting
    instead of a batched product with a 3-wide inner dimension (about 3x faster on a CPU)."""
    def centres(n):  # pixel centres in [-1, 1]
        return (torch.arange(n, dtype=theta.dtype, device=theta.device) * 2 + 1) / n - 1

    xs, ys = centres(width)[None, None, :], centres(height)[None, :, None]
    t = theta[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    return (t[:, :, 0] * xs + t[:, :, 1] * ys + t[:, :, 2]).permute(0, 2, 3, 1)


def augment_batch(x: torch.Tensor, augment: Augment, generator: torch.Generator, rows=None,
                  total=None, size: int | None = None) -> torch.Tensor:
    """Augment a float batch (N, C, H, W); each image gets its own random transform, drawn from
    ``generator`` (a CPU one, so a seed gives the same transforms on any device). ``x`` may be
    the ``rows`` (a slice) of a batch of ``total`` images: transforms are drawn for all of them.
    With ``size``, the batch comes out resized to ``size`` x ``size`` (see ``apply``)."""
    if is_identity(augment):
        return x if size is None else resize(x, size)
    total, rows = (x.shape[0], slice(None)) if rows is None else (total, rows)
    transforms = sample(total, augment, generator).map(lambda value: value[rows].to(x.device))
    x = apply(x, transforms, resample=bool(augment.rotation or augment.zoom or augment.shift), size=size)
    return translate(x, augment.translate, generator, rows, total) if augment.translate else x


def training_batch(x_uint8: torch.Tensor, input_size: int, augment: Augment, generator: torch.Generator,
                   share: tuple | None = None, layout=lambda x: x) -> torch.Tensor:
    """A training batch as the model takes it: uint8 images -> floats in [0, 1] at ``input_size``,
    augmented, in the memory layout ``layout`` gives. ``share``, with several processes, is
    ``(rows, total)``: the images are these rows of a global batch of ``total`` images, for which
    the draws are made (``augment_batch``'s ``rows`` and ``total``). When the augmentation only
    moves whole pixels (flips, ``translate``) and no resize is needed, it is done on the uint8
    pixels as one gather: the same draws and bit-for-bit the same batch as ``augment_batch`` on
    floats, with a quarter of the memory traffic."""
    rows, total = share if share is not None else (None, None)
    resized = x_uint8.shape[-1] != input_size or x_uint8.shape[-2] != input_size
    if resized or augment.rotation or augment.zoom or augment.shift or is_identity(augment):
        return layout(augment_batch(unit_floats(x_uint8), augment, generator, rows, total, size=input_size))
    total, rows = (x_uint8.shape[0], slice(None)) if rows is None else (total, rows)
    flip = sample(total, augment, generator).flip[rows]  # the draws augment_batch makes
    moved = translate(x_uint8, augment.translate, generator, rows, total, flip=flip)
    return model_input(layout(moved), input_size)


def translate(x: torch.Tensor, pixels: int, generator: torch.Generator, rows=slice(None), total=None,
              flip=None) -> torch.Tensor:
    """Move each image by a whole number of pixels in [-pixels, pixels] on both axes, reflecting
    at the edges (a random crop of the reflect-padded image), after mirroring the images ``flip``
    marks: one gather over the batch, on any dtype; no draws when ``pixels`` is 0."""
    n, c, h, w = x.shape
    shifts = (torch.randint(0, 2 * pixels + 1, (2, total or n), generator=generator)[:, rows] - pixels
              if pixels else torch.zeros(2, n, dtype=torch.long)).to(x.device)

    def reflect(k, size):  # index into the reflect-padded image -> index into the image
        return torch.where(k < 0, -k, torch.where(k > size - 1, 2 * (size - 1) - k, k))

    ys = reflect(shifts[0][:, None] + torch.arange(h, device=x.device), h)
    xs = reflect(shifts[1][:, None] + torch.arange(w, device=x.device), w)
    if flip is not None:  # the mirror image's column x is the image's column w - 1 - x
        xs = torch.where(flip.to(x.device)[:, None], w - 1 - xs, xs)
    index = (ys[:, :, None] * w + xs[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
