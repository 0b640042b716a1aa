"""Operations on batches of image tensors: uint8 pixels to floats in [0, 1], bilinear resizing as
two matrix products, and both together at a model's input size, in the memory layout asked for."""
from __future__ import annotations

import torch


def model_input(x_uint8: torch.Tensor, input_size: int, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float in [0, 1] at the model's input size (resized as a batch), in
    the memory layout asked for (written directly in that layout: no copy after)."""
    if tuple(x_uint8.shape[-2:]) == (input_size, input_size):
        return unit_floats(x_uint8, channels_last)
    return resize(unit_floats(x_uint8), input_size, channels_last)


def unit_floats(x_uint8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 pixels -> floats in [0, 1], the scale every model input has, in the input's layout or
    channels-last: one kernel converts, scales and lays out (``.float().div_(255)`` and then a
    layout copy are three passes over the float batch); the same numbers as ``x.float() / 255``."""
    layout = torch.channels_last if channels_last else torch.preserve_format
    return torch.div(x_uint8, 255, out=torch.empty_like(x_uint8, dtype=torch.float32, memory_format=layout))


def bilinear_weights(n_in: int, n_out: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (n_out, n_in) matrix of 1-D bilinear resampling exactly as ``F.interpolate(...,
    mode="bilinear", align_corners=False)`` does it: pixel centres mapped, clamped at the edges."""
    source = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp_min(0)
    left = source.floor().long().clamp_max(n_in - 1)
    right = (left + 1).clamp_max(n_in - 1)
    weight = source - left
    matrix = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    matrix.index_put_((rows, left), 1 - weight, accumulate=True)
    matrix.index_put_((rows, right), weight, accumulate=True)
    return matrix.to(dtype=dtype, device=device)


def resize(x: torch.Tensor, size: int, channels_last: bool = False) -> torch.Tensor:
    """A float batch (N, C, H, W) bilinearly resized to ``size`` x ``size`` (returned as it is, in
    the layout asked for, when it has that size already): the same numbers as
    ``F.interpolate`` (to float rounding), as two matrix products, which on a CPU is faster and
    writes the channels-last result directly (interpolate's channels-last kernel is 3x slower)."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x
    rows = bilinear_weights(h, size, x.dtype, x.device)
    cols = bilinear_weights(w, size, x.dtype, x.device)
    if not channels_last:
        return rows @ (x @ cols.T)
    across = torch.einsum("nchw,sw->nhsc", x, cols).reshape(n, h, size * c)  # columns resized, NHWC
    return (rows @ across).view(n, size, size, c).permute(0, 3, 1, 2)
