"""What a run is made of, as plain data: the request, its jobs (model x variant x seed), what an
executor hands back for each job, and where a job's files go. Executors (``harness.executors``),
the runner and the model runs all speak in these terms; nothing here trains."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import distributed
from harness.config import fingerprinted, to_recipe
from harness.status import Status

# a job's folder: results/<model>[@variant][/seed-<n>]/ with these files
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
CONFIG = "config.json"
HISTORY = "history.csv"
ERROR_LOG = "error.log"


def job_folder(out: Path, name: str, seed: int, several_seeds: bool) -> Path:
    """``<out>/<model>[@variant]``, with a ``seed-<n>`` folder per seed when a run has several."""
    folder = Path(out) / name
    return folder / f"seed-{seed}" if several_seeds else folder


def stage_weights(folder: Path, stage: str) -> Path:
    return Path(folder) / f"{stage}.pt"


@dataclass
class RunRequest:
    models: list
    profile: str = "quick"
    data: str | None = None
    dataset: str | None = None
    download: bool = False
    out: Path = Path("results")
    seeds: list = field(default_factory=lambda: [0])
    overrides: dict = field(default_factory=dict)
    command: str = ""
    resume: bool = False
    overwrite: bool = False
    ablate: str | None = None
    weights_dir: Path | None = None  # pretrained weights files (default: $HARNESS_WEIGHTS_DIR)
    pretrained: bool = True  # False: transfer models train from scratch (--no-pretrained)
    skip_missing_weights: bool = False  # --all: a model without weights is skipped, not an error
    variant: str | None = None  # a name for this run's recipe variant: results go to <model>@<variant>
    accel: object = None  # harness.accel.Accel: device, mixed precision, layout, compile (default: CPU)
    sync_bn: bool = False  # several GPU processes: batch norm over the global batch
    evaluators: list = field(default_factory=list)  # --eval: evaluators beyond the default ones
    eval_options: dict = field(default_factory=dict)  # --set eval.<name>.<key>=value
    callbacks: list = field(default_factory=list)  # --callback: callbacks beyond the default ones
    executor: str = "local"  # an executor plugin's name (harness list): local, ray, ...
    executor_options: dict = field(default_factory=dict)  # its options (ExecutorSpec.options), as given
    # the run's --out when this process writes into another folder first (an executor's scratch)
    results_dir: Path | None = None
    tuned: dict = field(default_factory=dict)  # --tuned: model -> its best settings and their terms


@dataclass
class Job:
    """One training run: a model, a variant of its recipe, a seed, and the folder it writes."""

    spec: object
    config: dict
    name: str  # the run's folder name: model, or model@variant
    folder: Path
    weights: object = None  # harness.weights.Source
    skipped: str | None = None  # why this model cannot run (no pretrained weights)
    callbacks: object = None  # harness.callbacks.CallbackList, made for this job's config
    recipe: object = None  # harness.specs.Recipe: the config's, typed and checked once, here
    accel: object = None  # harness.accel.Accel settled for this model (accel.settled); None: the CPU

    def __post_init__(self):
        if self.recipe is None:
            self.recipe = to_recipe(self.config)


@dataclass
class Outcome:
    """What an executor hands back for a job: ``Status.OK`` with the metrics, or ``Status.FAILED``
    with a one-line reason and the traceback."""

    job: Job
    status: Status
    metrics: dict = field(default_factory=dict)
    reason: str = ""
    traceback: str = ""


@dataclass
class JobContext:
    """Everything an executor needs besides the jobs: the request, the registry, the evaluators,
    the images for an input size (decoded once), the dataset's name, the executor's options, and
    ``finished(outcome)``, to call as each job ends (it records failures and rewrites the reports)."""

    request: RunRequest
    registry: Any
    evaluators: list
    images_for: Callable[[int], Any]
    dataset: str
    options: dict
    finished: Callable[[Outcome], None]


def log(message: str) -> None:
    if distributed.is_main():  # with several processes, rank 0 speaks for all
        print(message, file=sys.stderr, flush=True)


def job_label(job: Job, request: RunRequest) -> str:
    return job.name if len(request.seeds) == 1 else f"{job.name} seed {job.config['seed']}"


def identity(config: dict) -> dict:
    keys = ("model", "family", "profile", "seed", "input_size", "variant", "weights")
    tuned = {"tuned": config["tuned"]} if config.get("tuned") else {}  # a tuned row names its budget
    return {**{key: config.get(key) for key in keys}, **tuned}


def failed_row(config: dict, reason: str) -> dict:
    """What a failed job's ``metrics.json`` holds, and what callbacks' ``on_run_end`` is given."""
    return {**identity(config), "status": Status.FAILED, "reason": reason}


def fingerprint(config: dict) -> str:
    """A job's settings as one hash: a checkpoint resumes only the settings that made it."""
    return hashlib.sha256(json.dumps(fingerprinted(config), sort_keys=True, default=str).encode()).hexdigest()
