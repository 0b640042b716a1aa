"""Common corruptions of a test set, computed on the fly, after Hendrycks & Dietterich (2019),
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations" (CIFAR-10-C):
the same kinds and the same five severities as their CIFAR code. Each takes and returns uint8
images (N, 3, H, W) and draws any randomness from the generator it is given, so a seed fixes the
corrupted set."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

# CIFAR-10-C's parameters per severity 1..5
NOISE_SD = [0.04, 0.06, 0.08, 0.09, 0.10]
BLUR_SIGMA = [0.4, 0.6, 0.7, 0.8, 1.0]
CONTRAST = [0.75, 0.5, 0.4, 0.3, 0.15]
BRIGHTNESS = [0.05, 0.1, 0.15, 0.2, 0.3]
JPEG_QUALITY = [80, 65, 58, 50, 40]
PIXELATE = [0.95, 0.9, 0.85, 0.75, 0.65]


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def gaussian_noise(x, severity, generator):
    images = _float(x)
    noise = torch.randn(images.shape, generator=generator) * NOISE_SD[severity - 1]
    return _uint8(images + noise)


def gaussian_blur(x, severity, generator):
    sigma = BLUR_SIGMA[severity - 1]
    radius = int(4 * sigma + 0.5)  # scipy's (and skimage's) truncate=4
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    images = _float(x)
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
    images = F.conv2d(F.pad(images, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)
    return _uint8(images)


def contrast(x, severity, generator):
    images = _float(x)
    means = images.mean(dim=(1, 2, 3), keepdim=True)
    return _uint8((images - means) * CONTRAST[severity - 1] + means)


def brightness(x, severity, generator):
    """HSV's value channel raised by c with hue and saturation kept: RGB scales with V."""
    images = _float(x)
    value = images.max(dim=1, keepdim=True).values
    raised = (value + BRIGHTNESS[severity - 1]).clamp(max=1)
    scaled = torch.where(value > 0, images * raised / value.clamp(min=1e-12), raised.expand_as(images))
    return _uint8(scaled)


def jpeg(x, severity, generator):
    from PIL import Image

    quality = JPEG_QUALITY[severity - 1]
    out = np.empty_like(x.numpy())
    for i, image in enumerate(x.numpy()):
        buffer = io.BytesIO()
        Image.fromarray(image.transpose(1, 2, 0)).save(buffer, format="JPEG", quality=quality)
        with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
            out[i] = np.asarray(decoded.convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(out)


def pixelate(x, severity, generator):
    from PIL import Image

    height, width = x.shape[-2:]
    small = (max(1, int(width * PIXELATE[severity - 1])), max(1, int(height * PIXELATE[severity - 1])))
    out = np.empty_like(x.numpy())
    for i, image in enumerate(x.numpy()):
        picture = Image.fromarray(image.transpose(1, 2, 0)).resize(small, Image.BOX).resize((width, height), Image.NEAREST)
        out[i] = np.asarray(picture).transpose(2, 0, 1)
    return torch.from_numpy(out)


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
    "pixelate": pixelate,
}


# images corrupted at once, so memory is a chunk's floats whatever the test set's size; a multiple
# of 16 (torch draws normal numbers 16 at a time), so when an image's values are too (32 px, 224 px)
# the noise equals one draw over the whole set
CHUNK = 256


def corrupted_chunks(name: str, x: torch.Tensor, severity: int, seed: int, chunk: int | None = None):
    """(first row, corrupted rows) of ``x`` (uint8, N x 3 x H x W) with corruption ``name`` at
    ``severity`` (1-5), ``chunk`` images at a time, all drawn from one generator seeded ``seed``."""
    if not 1 <= severity <= 5 or math.floor(severity) != severity:
        raise ValueError(f"severity must be 1 to 5, got {severity}")
    generator, chunk = torch.Generator().manual_seed(seed), chunk or CHUNK
    for start in range(0, len(x), chunk):
        yield start, CORRUPTIONS[name](x[start : start + chunk].cpu(), int(severity), generator)


def corrupt(name: str, x: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    """The whole of ``x`` corrupted (``corrupted_chunks`` joined)."""
    return torch.cat([part for _, part in corrupted_chunks(name, x, severity, seed)])
