"""Pretrained backbones for transfer-learning plugins: a timm model with a new classification
head, fed [0, 1] inputs and normalising them as its pretrained weights expect."""
from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    """``net((x - mean) / std)``: the harness feeds every model [0, 1] images; a pretrained backbone
    wants the statistics it was trained with."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def timm_model(arch: str, num_classes: int, **kwargs) -> Normalized:
    """A timm architecture, randomly initialised, with a new ``num_classes`` head and the mean/std
    of its pretrained config. Pretrained weights are loaded by the harness (``harness.weights``)."""
    import timm

    net = timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    config = net.pretrained_cfg
    return Normalized(net, config.get("mean", (0.485, 0.456, 0.406)), config.get("std", (0.229, 0.224, 0.225)))
