"""Built-in training callbacks, registered through the same hook as any plugin's.

``early_stopping`` and ``reduce_lr`` act on the recipe words of each stage (``Stage.early_stopping``,
``Stage.reduce_lr``) with Keras's semantics; they are in every run. ``tensorboard`` and ``mlflow``
are loggers, chosen with ``--callback NAME``.
"""
from harness import Callback, CallbackSpec, hookimpl
from harness.toolkit import improved


class EarlyStopper:
    """Keras's ``EarlyStopping``: stop when ``monitor`` has not improved by more than ``min_delta``
    for ``patience`` epochs; with ``restore_best_weights`` the stage ends on the best epoch's weights."""

    def __init__(self, settings):
        self.settings = settings
        self.best, self.best_epoch, self.wait, self.best_state = None, 0, 0, None

    def update(self, epoch: int, logs: dict, model) -> bool:
        """Record an epoch; True when training should stop."""
        if improved(logs[self.settings.monitor], self.best, self.settings.mode, self.settings.min_delta):
            self.best, self.best_epoch, self.wait = logs[self.settings.monitor], epoch, 0
            if self.settings.restore_best_weights:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        return self.wait >= self.settings.patience

    def restore(self, model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_state = state["best_state"]


class EarlyStopping(Callback):
    """The callback: one ``EarlyStopper`` per stage that sets ``early_stopping``."""

    def __init__(self):
        self.stopper, self.control = None, None

    def on_stage_start(self, stage, control):
        self.control = control
        self.stopper = EarlyStopper(stage.early_stopping) if stage.early_stopping else None

    def on_epoch_end(self, epoch, logs):
        if self.stopper is not None and self.stopper.update(epoch, logs, self.control.model):
            self.control.stop()

    def on_stage_end(self, stage, control):
        if self.stopper is not None:
            self.stopper.restore(control.model)

    def state_dict(self):
        return self.stopper.state_dict() if self.stopper else None

    def load_state_dict(self, state):
        if self.stopper is not None and state is not None:
            self.stopper.load_state_dict(state)


class ReduceLROnPlateau(Callback):
    """Keras's ``ReduceLROnPlateau``: after ``patience`` epochs in a row without an improvement of
    more than ``min_delta``, multiply the learning rate by ``factor``, never below ``min_lr``; then
    ``cooldown`` epochs in which nothing is counted, after which counting starts again at once
    (Keras cuts after epochs 3, 5, 7 with patience 2 and cooldown 1; torch's scheduler, 3, 6, 9)."""

    def __init__(self):
        self.settings, self.control = None, None
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_stage_start(self, stage, control):
        self.settings, self.control = stage.reduce_lr, control
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs):
        settings = self.settings
        if settings is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if improved(logs[settings.monitor], self.best, settings.mode, settings.min_delta):
            self.best, self.wait = logs[settings.monitor], 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= settings.patience:
                self.control.scale_lr(settings.factor, settings.min_lr)
                self.cooldown_counter, self.wait = settings.cooldown, 0

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        if state is not None:
            self.best, self.wait, self.cooldown_counter = state["best"], state["wait"], state["cooldown_counter"]


@hookimpl
def register_callbacks(register):
    register(CallbackSpec("early_stopping", lambda config: EarlyStopping(), default=True,
                          description="stop a stage when val_acc (or val_loss) stalls; best weights restored (Keras)"))
    register(CallbackSpec("reduce_lr", lambda config: ReduceLROnPlateau(), default=True,
                          description="cut the learning rate when the monitored metric stalls (Keras)"))
    register(CallbackSpec("tensorboard", _tensorboard,
                          description="TensorBoard event files in each model's folder (pip install -e .[tensorboard])"))
    register(CallbackSpec("mlflow", _mlflow, description="one MLflow run per model: config, epochs, test metrics, "
                          "files (MLFLOW_TRACKING_URI, else SQLite in --out; pip install -e .[mlflow])"))


def _tensorboard(config):
    from harness_callbacks.loggers import TensorBoardLogger

    return TensorBoardLogger()


def _mlflow(config):
    from harness_callbacks.loggers import MLflowLogger

    return MLflowLogger()
