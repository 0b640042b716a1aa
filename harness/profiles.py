"""What each profile and each ablation changes, as data in ``--set``'s words, and the evaluators a
profile runs by default."""
from __future__ import annotations


# Profile settings, in --set language. A model's own ``profiles`` entry is applied after these.
PROFILES = {
    "smoke": {  # seconds per model: for tests and CI
        "data.train_size": 1000,
        "data.val_size": 200,
        "data.test_size": 500,
        "epochs": 2,
    },
    "quick": {},  # a real result on a 2-core CPU: models set their own epoch budgets
    "full": {},  # the study's settings, for a GPU
}

# --ablate callbacks: the study's question, what early stopping and LR reduction each bring
ABLATIONS = {
    "callbacks": {
        "no-early-stopping": {"early_stopping": "none"},
        "no-reduce-lr": {"reduce_lr": "none"},
    },
}
# the variant names an ablation gives its runs (<model>@no-early-stopping, ...)
ABLATED_VARIANTS = frozenset(name for variants in ABLATIONS.values() for name in variants)

# evaluators each profile runs besides classification when --eval is not given (calibration costs
# nothing: it reads the logits the test pass computed anyway)
PROFILE_EVALUATORS = {"smoke": [], "quick": ["calibration"], "full": ["calibration"]}


def evaluator_names(values, profile: str | None = None) -> list:
    """``--eval a,b --eval c`` -> [a, b, c]; without ``--eval``, the profile's default evaluators."""
    if not values:
        return list(PROFILE_EVALUATORS.get(profile, []))
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(name for name in names if name != "none"))
