"""Loggers as callbacks (Lightning's TensorBoardLogger / MLFlowLogger): what a run records, written
with each tool's own library so that its own readers can read it back. Only the process that
writes files (``run.main``) logs."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from harness import Callback, Status
from harness.toolkit import HarnessError

EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def _missing(extra: str, module: str) -> HarnessError:
    return HarnessError(f"the {extra} callback needs the '{module}' package: pip install -e .[{extra}]")


def test_metrics(metrics: dict) -> dict:
    """The numbers of each evaluated stage, as ``<stage>/<field>``, and the final ones as ``test_<field>``."""
    out = {}
    for stage in metrics.get("stages") or []:
        for key, value in stage.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epochs", "best_epoch"):
                out[f"{stage['name']}/{key}"] = float(value)
    for key in ("accuracy", "precision", "recall", "f1", "train_time_s", "wall_time_s"):
        if isinstance(metrics.get(key), (int, float)):
            out[f"test_{key}" if key in ("accuracy", "precision", "recall", "f1") else key] = float(metrics[key])
    return out


class TensorBoardLogger(Callback):
    """Event files in ``<model folder>/tensorboard``: every epoch's ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` and ``lr`` (step: epochs counted across stages), then the test metrics."""

    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _missing("tensorboard", "tensorboard") from None
        self.make_writer, self.writer, self.step = SummaryWriter, None, 0

    def on_run_start(self, run):
        if run.main:
            self.writer = self.make_writer(log_dir=str(Path(run.folder) / "tensorboard"))

    def on_epoch_end(self, epoch, logs):
        self.step += 1
        if self.writer is not None:
            for key in EPOCH_KEYS:
                self.writer.add_scalar(key, logs[key], self.step)
            self.writer.flush()

    def on_run_end(self, metrics):
        if self.writer is not None:
            for key, value in test_metrics(metrics).items():
                self.writer.add_scalar(key, value, self.step)
            self.writer.close()
            self.writer = None

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = state["step"]


class MLflowLogger(Callback):
    """One MLflow run per model run: the resolved config as params, every epoch's metrics, the
    test metrics, and the model's folder as artifacts. The tracking URI is ``MLFLOW_TRACKING_URI``,
    otherwise a SQLite store ``mlflow.db`` in ``--out`` (artifacts beside it, in ``mlflow-artifacts``).
    A job that trains elsewhere (a Ray task's scratch folder) logs into the store of the run's
    ``--out`` when its machine has that folder; processes sharing a store take turns (a lock file
    beside it), so every job keeps its own MLflow run. A resumed run goes on logging into the MLflow
    run it started (its id is in the checkpoint)."""

    EXPERIMENT = "harness"

    def __init__(self):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow") from None
        self.client_class, self.client, self.run_id, self.step, self.run = MlflowClient, None, None, 0, None

    def on_run_start(self, run):
        if not run.main:
            return
        self.run = run
        results = Path(run.results or run.out).resolve()
        self.store = results if results.is_dir() else Path(run.out).resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.store / 'mlflow.db'}"
        with self.turn():
            self.client = self.client_class(tracking_uri=uri)

    @contextlib.contextmanager
    def turn(self):
        """This process's turn at the store: SQLite and MLflow's schema set-up are not safe to share."""
        with open(self.store / ".mlflow.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _active(self) -> str | None:
        """The MLflow run, created at first use (after a resumed checkpoint has named its id)."""
        if self.client is None:
            return None
        if self.run_id is None:
            with self.turn():
                self._create_run()
        return self.run_id

    def _create_run(self) -> None:
        experiment = self.client.get_experiment_by_name(self.EXPERIMENT)
        if experiment is None:
            artifacts = (self.store / "mlflow-artifacts").as_uri()
            experiment_id = self.client.create_experiment(self.EXPERIMENT, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        config = self.run.config
        name = self.run.name + (f" seed {config.get('seed')}" if "seed-" in Path(self.run.folder).name else "")
        created = self.client.create_run(experiment_id, run_name=name,
                                         tags={"model": str(config.get("model")), "profile": str(config.get("profile"))})
        self.run_id = created.info.run_id
        self.log_params(config)

    def log_params(self, config: dict) -> None:
        from mlflow.entities import Param

        flat = _flatten(config)
        params = [Param(key, str(value)[:6000]) for key, value in flat.items() if key != "command"]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_metrics(self, values: dict, step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key.replace("@", "_"), float(value), now, step) for key, value in values.items()]
        with self.turn():
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_stage_start(self, stage, control):
        self._active()

    def on_epoch_end(self, epoch, logs):
        self.step += 1
        if self._active():
            self.log_metrics({key: logs[key] for key in EPOCH_KEYS}, self.step)

    def on_run_end(self, metrics):
        if not self._active():
            return
        self.log_metrics(test_metrics(metrics), self.step)
        with self.turn():
            self.client.log_artifacts(self.run_id, str(self.run.folder))
            self.client.set_terminated(self.run_id, "FINISHED" if metrics.get("status") == Status.OK else "FAILED")

    def state_dict(self):
        return {"run_id": self.run_id, "step": self.step}

    def load_state_dict(self, state):
        self.run_id, self.step = state["run_id"], state["step"]


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        out = {}
        for inner in value:
            out.update(_flatten(inner, f"{prefix}{inner['name']}."))
        return out
    return {prefix.rstrip("."): value}
