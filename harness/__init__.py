"""harness: a plugin-based model-zoo benchmarking harness for image classification.

The public plugin API is what this module exports; nothing here imports torch.
"""
from harness.hookspecs import hookimpl
from harness.specs import (
    Augment,
    DatasetSpec,
    EarlyStopping,
    ModelSpec,
    Recipe,
    ReduceLROnPlateau,
    Stage,
    Weights,
)

__all__ = [
    "hookimpl",
    "ModelSpec",
    "DatasetSpec",
    "Recipe",
    "Stage",
    "Augment",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "Weights",
]
__version__ = "0.1.0"
