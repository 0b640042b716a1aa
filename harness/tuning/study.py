"""A model's Optuna study in ``<out>/<model>/tuning/study.db``: opened or continued, its trials
counted, the pruner named as data so that a trial in another process builds the same one.

A trial killed with its process stays ``RUNNING`` in the file; when the study is opened again it
is recorded as failed ("interrupted") and does not count: the study goes on until ``trials``
trials finished, were pruned, or failed on their own error.
"""
from __future__ import annotations

import zlib
from pathlib import Path

from harness.errors import HarnessError

STUDY_FILE = "study.db"
INTERRUPTED = "interrupted"
# --pruner NAME: Optuna's pruners, as (class, its arguments); "threshold:X" prunes below X
PRUNERS = {
    "hyperband": ("HyperbandPruner", {"min_resource": 1, "reduction_factor": 3}),
    "halving": ("SuccessiveHalvingPruner", {"min_resource": 1, "reduction_factor": 3}),
    "median": ("MedianPruner", {"n_startup_trials": 2, "n_warmup_steps": 1}),
    "none": ("NopPruner", {}),
}


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise HarnessError("harness tune needs Optuna: pip install -e '.[tune]' (or pip install 'optuna>=4')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the harness prints its own line per trial
    return optuna


def pruner_of(name: str, max_epochs: int) -> dict:
    """``--pruner``'s value as data: {"class": ..., "args": {...}}."""
    if name.startswith("threshold:"):
        try:
            return {"class": "ThresholdPruner", "args": {"lower": float(name.split(":", 1)[1])}}
        except ValueError:
            raise HarnessError(f"--pruner {name}: write threshold:<validation accuracy>, e.g. threshold:0.2") from None
    if name not in PRUNERS:
        raise HarnessError(f"--pruner {name}: choose {', '.join(PRUNERS)} or threshold:<validation accuracy>")
    cls, args = PRUNERS[name]
    if cls == "HyperbandPruner":
        args = {**args, "max_resource": max_epochs}
    return {"class": cls, "args": dict(args)}


def make_pruner(described: dict):
    optuna = require_optuna()
    return getattr(optuna.pruners, described["class"])(**described["args"])


def storage_url(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / STUDY_FILE).resolve()}"


def open_study(folder: Path, model: str, seed: int, pruner: dict):
    """The study in ``folder`` (made if new), its interrupted trials recorded as failed; the sampler
    is seeded with ``seed``, the model's name and the number of trials so far."""
    optuna = require_optuna()
    folder.mkdir(parents=True, exist_ok=True)
    url = storage_url(folder)
    existing = optuna.create_study(study_name=model, storage=url, direction="maximize", load_if_exists=True)
    # each model draws its own settings; a continued study draws new ones
    own = zlib.crc32(model.encode()) % 10_000
    sampler = optuna.samplers.TPESampler(seed=seed * 10_000 + own + len(existing.trials), constant_liar=True)
    study = optuna.load_study(study_name=model, storage=url, sampler=sampler, pruner=make_pruner(pruner))
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        fail(study, trial.number, INTERRUPTED)
    return study


def fail(study, trial, reason: str) -> None:
    """Record ``trial`` (a Trial or its number) as failed, with its one-line reason."""
    optuna = require_optuna()
    number = trial if isinstance(trial, int) else trial.number
    frozen = study.get_trials(deepcopy=False)[number]
    optuna.trial.Trial(study, frozen._trial_id).set_user_attr("reason", reason)
    study.tell(number, state=optuna.trial.TrialState.FAIL)


def counted(study) -> int:
    """Trials that use up the budget: finished, pruned, or failed by their own error."""
    return sum(1 for trial in study.get_trials(deepcopy=False)
               if trial.state.is_finished() and trial.user_attrs.get("reason") != INTERRUPTED)


def trial_handle(info: dict):
    """The running trial ``info`` names (``config["trial"]``), in this process: to report to and
    ask whether to prune."""
    optuna = require_optuna()
    study = optuna.load_study(study_name=info["study"], storage=info["storage"], pruner=make_pruner(info["pruner"]))
    return optuna.trial.Trial(study, info["trial_id"])
