"""harness: a plugin-based model-zoo benchmarking harness for image classification.

The public plugin API is what this module exports; nothing here imports torch.
"""
from harness.callbacks import Callback
from harness.hookspecs import hookimpl
from harness.status import Status
from harness.tuning.space import Choice, Range, default_space
from harness.specs import (
    Augment,
    CallbackSpec,
    CatalogSpec,
    Column,
    DatasetSpec,
    EarlyStopping,
    EvaluatorSpec,
    ExecutorSpec,
    ModelSpec,
    Recipe,
    ReduceLROnPlateau,
    Stage,
    Weights,
)

__all__ = [
    "hookimpl",
    "Callback",
    "ModelSpec",
    "DatasetSpec",
    "CallbackSpec",
    "CatalogSpec",
    "EvaluatorSpec",
    "Column",
    "ExecutorSpec",
    "Recipe",
    "Stage",
    "Augment",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "Weights",
    "Status",
    "Range",
    "Choice",
    "default_space",
    "run",
    "leaderboard",
]
__version__ = "0.1.0"


def run(models="all", **options):
    """Train and evaluate models as ``harness run`` does; returns the leaderboard (a DataFrame).
    See ``harness.api.run``."""
    from harness.api import run as run_models

    return run_models(models, **options)


def leaderboard(*paths):
    """The leaderboard of results folders as a DataFrame. See ``harness.api.leaderboard``."""
    from harness.api import leaderboard as read

    return read(*paths)
