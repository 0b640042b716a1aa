"""Tuning every model on equal terms: ``harness tune`` runs one Optuna study per model over the
search space its plugin declares (``harness.tuning.space``), each trial a job that the executor
plugins carry out (``harness.tuning.driver``), scored on validation images only
(``harness.tuning.trial``), with the same number of trials and the same budget per trial for every
model (``harness.tuning.budget``)."""
from harness.tuning.space import Choice, Range, default_space

__all__ = ["Range", "Choice", "default_space"]
