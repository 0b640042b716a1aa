"""The trainer: early stopping semantics, best weights restored, determinism under a seed."""
import pytest
import torch
from torch import nn

from harness_callbacks import EarlyStopper
from harness import Callback
from harness.specs import Augment, EarlyStopping, Recipe, ReduceLROnPlateau, Stage
from harness.train import Setup, Trainer, Watch

from helpers.callbacks import after_each_epoch
from helpers.models import default_callbacks, scripted_val_acc, tiny_splits
from helpers.timings import without_timings


def tiny_model(classes=3, size=8):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 16), nn.ReLU(), nn.Linear(16, classes))


def snapshots_per_epoch(trainer):
    """Record a copy of the weights at the end of every epoch, keyed by (stage, epoch)."""
    seen = {}

    def on_epoch(row):
        seen[(row["stage"], row["epoch"])] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    after_each_epoch(trainer, on_epoch)
    return seen


def test_early_stopper_counts_patience_like_keras():
    model = nn.Linear(1, 1)
    stopper = EarlyStopper(EarlyStopping(patience=2, min_delta=0.01))
    values = [0.5, 0.6, 0.605, 0.61]  # 0.605 and 0.61 are within min_delta of 0.6
    stops = [stopper.update(i + 1, {"val_acc": v}, model) for i, v in enumerate(values)]
    assert stops == [False, False, False, True]
    assert stopper.best_epoch == 2 and stopper.best == 0.6


def test_early_stopper_on_val_loss_wants_lower():
    stopper = EarlyStopper(EarlyStopping(monitor="val_loss", patience=1))
    model = nn.Linear(1, 1)
    assert not stopper.update(1, {"val_loss": 1.0}, model)
    assert not stopper.update(2, {"val_loss": 0.5}, model)
    assert stopper.update(3, {"val_loss": 0.7}, model)
    assert stopper.best_epoch == 2


def test_stops_after_patience_and_restores_best_weights(monkeypatch):
    scripted_val_acc(monkeypatch, [0.5, 0.7, 0.6, 0.7, 0.65, 0.69, 0.9])
    stage = Stage(name="train", lr=1e-2, epochs=20, batch_size=16, early_stopping=EarlyStopping(patience=3))
    trainer = Trainer(tiny_model(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks()))
    seen = snapshots_per_epoch(trainer)
    result = trainer.fit()
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5]  # best epoch 2 + patience 3
    assert result.stages[0].best_epoch == 2 and result.stages[0].stopped_early
    final = trainer.model.state_dict()
    for key, value in seen[("train", 2)].items():
        assert torch.equal(final[key], value)
    assert not torch.equal(final["1.weight"], seen[("train", 5)]["1.weight"])


def test_without_early_stopping_a_stage_ends_on_its_last_epoch(monkeypatch):
    """The README: no early stopping, no restoring -- the last epoch's weights stay, even when an
    earlier epoch validated better."""
    scripted_val_acc(monkeypatch, [0.5, 0.9, 0.6, 0.7])
    stage = Stage(name="train", lr=1e-2, epochs=4, batch_size=16, early_stopping=None)
    trainer = Trainer(tiny_model(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks()))
    seen = snapshots_per_epoch(trainer)
    result = trainer.fit()
    assert len(result.history) == 4 and not result.stages[0].stopped_early
    final = trainer.model.state_dict()
    assert all(torch.equal(final[key], value) for key, value in seen[("train", 4)].items())
    assert not torch.equal(final["1.weight"], seen[("train", 2)]["1.weight"])


def test_training_learns_and_is_deterministic():
    def run():
        stage = Stage(name="train", lr=1e-2, epochs=5, batch_size=16)
        recipe = Recipe(stages=[stage], augment=Augment(flip=True, shift=0.1))
        trainer = Trainer(tiny_model(), tiny_splits(), recipe, Setup(input_size=8, seed=3),
                          Watch(callbacks=default_callbacks()))
        return trainer.fit(), trainer.model

    first, model_a = run()
    second, model_b = run()
    strip = lambda rows: [without_timings(r) for r in rows]  # noqa: E731
    assert strip(first.history) == strip(second.history)
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    assert max(row["val_acc"] for row in first.history) > 0.9  # the classes differ by colour


def plateau_lrs(monkeypatch, values, **settings):
    """The LR of each epoch when validation reports ``values`` (val_acc and val_loss alike)."""
    import harness.train

    sequence = iter(values)
    monkeypatch.setattr(harness.train, "loss_and_accuracy", lambda logits, labels: (next(sequence),) * 2)
    stage = Stage(name="train", lr=1e-2, epochs=len(values), batch_size=16, early_stopping=None,
                  reduce_lr=ReduceLROnPlateau(**settings))
    trainer = Trainer(tiny_model(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks()))
    return [row["lr"] for row in trainer.fit().history]


def test_plateau_has_keras_cooldown_never_below_min_lr(monkeypatch):
    lrs = plateau_lrs(monkeypatch, [0.5] * 12, factor=0.1, patience=2, cooldown=1, min_lr=1e-5)
    # Keras: epochs 2-3 without improvement -> cut after epoch 3; epoch 4 is the cooldown and
    # counting starts again at once, so epoch 5 is the second bad one -> cut after 5, then 7
    # (torch's scheduler would cut after 3, 6, 9); floored at min_lr
    expected = [1e-2] * 3 + [1e-3] * 2 + [1e-4] * 2 + [1e-5] * 5
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_plateau_counts_again_after_an_improvement(monkeypatch):
    # bad epochs 2, 4, 6, 7 with improvements at 3 and 5 between them: only 6-7 are two in a row,
    # so the first cut comes after epoch 7 (without the reset it would come after epoch 4)
    lrs = plateau_lrs(monkeypatch, [0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7], factor=0.5, patience=2)
    assert lrs == pytest.approx([1e-2] * 7 + [5e-3], rel=1e-9)


def test_plateau_min_delta_and_val_loss(monkeypatch):
    # on val_loss lower is better; a fall of 0.005 is not more than min_delta 0.01, so it is no improvement
    lrs = plateau_lrs(monkeypatch, [1.0, 0.995, 0.99, 0.5, 0.6, 0.7], monitor="val_loss", factor=0.5, patience=2,
                      min_delta=0.01)
    assert lrs == pytest.approx([1e-2] * 3 + [5e-3] * 3, rel=1e-9)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_fixed_schedules_run_to_the_end(schedule):
    stage = Stage(name="train", optimizer="sgd", lr=0.05, epochs=3, batch_size=16, schedule=schedule,
                  warmup_epochs=1, early_stopping=None)
    history = Trainer(tiny_model(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks())).fit().history
    assert len(history) == 3
    assert history[-1]["lr"] < 0.05


def test_a_callback_on_the_base_class_overrides_only_what_it_needs():
    from harness import Callback
    from harness.callbacks import CallbackList

    class StopAtTwo(Callback):
        def on_stage_start(self, stage, control):
            self.control = control

        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                self.control.stop()

    stopper = StopAtTwo()
    assert stopper.on_run_start(None) is None and stopper.state_dict() is None  # the base's no-ops
    recipe = Recipe(stages=[Stage(epochs=5, batch_size=16, early_stopping=None)], augment=Augment())
    trainer = Trainer(tiny_model(), tiny_splits(), recipe, Setup(input_size=8, seed=0),
                      Watch(show_progress=False, callbacks=CallbackList([("stop_at_two", "test", stopper)])))
    result = trainer.fit()
    assert [row["epoch"] for row in result.history] == [1, 2] and result.stages[0].stopped_early


class CountAndStopAtTwo(Callback):
    """Counts epochs in its state and ends the stage through its control handle at epoch 2."""

    def __init__(self):
        self.count = 0

    def on_stage_start(self, stage, control):
        self.control = control

    def on_epoch_end(self, epoch, logs):
        self.count += 1
        if epoch == 2:
            self.control.stop()

    def state_dict(self):
        return {"count": self.count}


def test_the_trainers_own_callbacks_frame_the_plugins(tmp_path, capsys):
    from harness.callbacks import CallbackList
    from harness.train import load_checkpoint

    recipe = Recipe(stages=[Stage(epochs=5, batch_size=16, early_stopping=None)], augment=Augment())
    counter = CountAndStopAtTwo()
    trainer = Trainer(tiny_model(), tiny_splits(), recipe, Setup(input_size=8, seed=0),
                      Watch(label="tiny", checkpoint=tmp_path / "c.pt",
                            callbacks=CallbackList([("count", "test", counter)])))
    result = trainer.fit()
    assert [row["epoch"] for row in result.history] == [1, 2] and result.stages[0].stopped_early
    saved = load_checkpoint(tmp_path / "c.pt")  # written after the plugin's epoch: its stop and state are in
    assert saved["stage_finished"] is True and saved["epoch"] == 2 and saved["callbacks"]["count"] == {"count": 2}
    assert saved["callbacks"]["trainer.best_epoch"]["epoch"] == result.stages[0].best_epoch
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["tiny train epoch 1", "tiny train epoch 2"]
    Trainer(tiny_model(), tiny_splits(), recipe, Setup(input_size=8, seed=0),
            Watch(show_progress=False, callbacks=CallbackList([("count", "test", CountAndStopAtTwo())]))).fit()
    assert capsys.readouterr().err == ""


def test_a_checkpoint_that_cannot_be_written_stops_training(tmp_path):
    """The trainer's own callbacks are not switched off on failure as a plugin's are."""
    from harness.fileio import WriteFailed

    (tmp_path / "file").write_text("")
    recipe = Recipe(stages=[Stage(epochs=3, batch_size=16, early_stopping=None)], augment=Augment())
    trainer = Trainer(tiny_model(), tiny_splits(), recipe, Setup(input_size=8, seed=0),
                      Watch(show_progress=False, checkpoint=tmp_path / "file" / "c.pt", callbacks=default_callbacks()))
    with pytest.raises(WriteFailed, match="could not write"):
        trainer.fit()
    assert trainer.state.epoch == 1
