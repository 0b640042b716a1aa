"""Stages: real freezing, the next stage starting from the restored best weights, and checkpoints
from which an interrupted run resumes to exactly the same result."""
import pytest
import torch

from harness.freezing import Parts, freeze
from harness.optim import make_optimizer, param_groups
from harness.specs import Augment, EarlyStopping, Recipe, ReduceLROnPlateau, Stage
from harness.train import Setup, Trainer, Watch, load_checkpoint

from helpers.callbacks import after_each_epoch
from helpers.models import default_callbacks, net, scripted_val_acc, tiny_splits
from helpers.timings import without_timings


def copy_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_frozen_stage_leaves_the_base_bit_for_bit_and_bn_stats_alone():
    model = net()
    before = copy_state(model)
    stage = Stage(name="frozen", trainable="head", lr=0.05, epochs=2, batch_size=16, early_stopping=None)
    Trainer(model, tiny_splits(), Recipe(stages=[stage], augment=Augment(flip=True)), Setup(input_size=8, seed=0),
            Watch(callbacks=default_callbacks())).fit()
    after = model.state_dict()
    for key in before:
        if key.startswith(("stem.", "body.")):  # weights, biases, running_mean/var, num_batches_tracked
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["head.2.weight"], after["head.2.weight"])


def test_frozen_parameters_get_no_gradient_and_are_not_in_the_optimizer():
    model = net()
    parts = Parts.of(model)
    assert parts.blocks == ["stem", "body"]
    frozen = freeze(model, parts, "last:1")
    assert [m is model.stem for m in frozen] == [True]
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert all(p.requires_grad for p in model.body.parameters())
    stage = Stage(trainable="last:1", lr=1e-2, base_lr=1e-3)
    optimizer = make_optimizer(stage, param_groups(model, parts, stage))
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in [*model.body.parameters(), *model.head.parameters()]}
    assert [g["lr"] for g in optimizer.param_groups] == [1e-2, 1e-3]


def test_next_stage_starts_from_the_restored_best_weights(monkeypatch):
    scripted_val_acc(monkeypatch, [0.6, 0.4, 0.5, 0.7, 0.8])  # stage 1 best at epoch 1
    stages = [
        Stage(name="frozen", trainable="head", lr=0.05, epochs=3, batch_size=16, early_stopping=EarlyStopping(patience=5)),
        Stage(name="finetune", trainable="all", lr=0.01, epochs=2, batch_size=16),
    ]
    snapshots, at_stage_end = {}, {}
    trainer = Trainer(net(), tiny_splits(), Recipe(stages=stages), Setup(input_size=8, seed=0),
                      Watch(on_stage_end=lambda stage, model: at_stage_end.setdefault(stage.name, copy_state(model)),
                            callbacks=default_callbacks()))
    after_each_epoch(trainer, lambda row: snapshots.setdefault((row["stage"], row["epoch"]), copy_state(trainer.model)))
    result = trainer.fit()
    assert [s.best_epoch for s in result.stages] == [1, 2]
    for key, value in snapshots[("frozen", 1)].items():
        assert torch.equal(at_stage_end["frozen"][key], value), key
    assert not torch.equal(snapshots[("frozen", 3)]["head.2.weight"], snapshots[("frozen", 1)]["head.2.weight"])


def two_stage_recipe():
    return Recipe(
        stages=[
            Stage(name="frozen", trainable="head", optimizer="adam", lr=0.02, epochs=3, batch_size=16,
                  reduce_lr=ReduceLROnPlateau(patience=1, factor=0.5)),
            Stage(name="finetune", trainable="all", optimizer="sgd", lr=0.05, base_lr=0.01, epochs=3,
                  batch_size=16, schedule="onecycle", label_smoothing=0.1),
        ],
        augment=Augment(rotation=10, flip=True, zoom=0.1, shift=0.1),
    )


def airbench_recipe():
    """One stage with the airbench options, whose state (lookahead's slow weights) must resume too."""
    return Recipe(stages=[Stage(name="train", optimizer="sgd", lr=0.05, momentum=0.85, nesterov=True, epochs=4,
                                batch_size=16, schedule="triangle", warmup_epochs=1, norm_lr_scale=8,
                                lookahead=0.95, weight_decay=1e-3, early_stopping=None)],
                  augment=Augment(flip=True, translate=1))


@pytest.mark.parametrize("recipe, interrupt_at", [
    (two_stage_recipe, ("frozen", 2)), (two_stage_recipe, ("frozen", 3)), (two_stage_recipe, ("finetune", 1)),
    (two_stage_recipe, ("finetune", 3)), (airbench_recipe, ("train", 2)), (airbench_recipe, ("train", 4)),
])
def test_resume_after_interruption_gives_the_same_history_and_weights(tmp_path, recipe, interrupt_at):
    def trainer(checkpoint, on_epoch=None):
        made = Trainer(net(), tiny_splits(), recipe(), Setup(input_size=8, seed=7),
                       Watch(checkpoint=checkpoint, fingerprint="x", on_stage_end=lambda stage, model: {"n": 1},
                             callbacks=default_callbacks()))
        return after_each_epoch(made, on_epoch) if on_epoch else made

    reference = trainer(tmp_path / "a.pt")
    expected = reference.fit()

    def interrupt(row):
        if (row["stage"], row["epoch"]) == interrupt_at:
            raise KeyboardInterrupt  # killed during this epoch: its checkpoint is never written

    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "b.pt", interrupt).fit()
    ran = []  # the epochs the resumed run trains: only those after the last checkpoint
    resumed_trainer = trainer(tmp_path / "b.pt", lambda row: ran.append((row["stage"], row["epoch"])))
    resumed = resumed_trainer.fit(load_checkpoint(tmp_path / "b.pt"))
    everything = [(row["stage"], row["epoch"]) for row in expected.history]
    assert ran == everything[everything.index(interrupt_at):]

    def strip(rows):
        return [without_timings(row) for row in rows]

    assert strip(resumed.history) == strip(expected.history)
    assert [(s.name, s.best_epoch, s.epochs, s.extra) for s in resumed.stages] == \
        [(s.name, s.best_epoch, s.epochs, s.extra) for s in expected.stages]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(resumed_trainer.model.state_dict()[key], value), key


def test_a_checkpoint_with_the_best_epoch_beside_the_callbacks_resumes_it(tmp_path, monkeypatch):
    """Version-2 checkpoints may keep the best epoch under "best" rather than among the callbacks."""
    scripted_val_acc(monkeypatch, [0.5, 0.9, 0.6, 0.7, 0.8])
    stage = Stage(name="train", lr=0.05, epochs=4, batch_size=16, early_stopping=None)

    def stop_at_three(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt  # epoch 2's checkpoint is the last on disk

    trainer = Trainer(net(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(checkpoint=tmp_path / "c.pt", callbacks=default_callbacks()))
    with pytest.raises(KeyboardInterrupt):
        after_each_epoch(trainer, stop_at_three).fit()
    state = load_checkpoint(tmp_path / "c.pt")
    state["best"] = state["callbacks"].pop("trainer.best_epoch")
    assert state["best"] == {"value": 0.9, "epoch": 2}
    resumed = Trainer(net(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks())).fit(state)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4] and resumed.stages[0].best_epoch == 2


def test_checkpoint_loads_with_weights_only(tmp_path):
    stage = Stage(name="train", epochs=1, batch_size=16, reduce_lr=ReduceLROnPlateau())
    Trainer(net(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
            Watch(checkpoint=tmp_path / "c.pt", callbacks=default_callbacks())).fit()
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["epoch"] == 1 and state["stage_finished"] is True


def frozen_run(feature_cache, augmented_views=0, augment=Augment()):
    stage = Stage(name="frozen", trainable="head", lr=0.05, epochs=3, batch_size=16, early_stopping=None,
                  feature_cache=feature_cache, augmented_views=augmented_views)
    trainer = Trainer(net(), tiny_splits(), Recipe(stages=[stage], augment=augment), Setup(input_size=8, seed=4),
                      Watch(callbacks=default_callbacks()))
    return trainer.fit(), trainer.model


def test_feature_cache_trains_the_head_as_running_the_frozen_base_does():
    cached, cached_model = frozen_run(True)
    direct, direct_model = frozen_run(False)
    for a, b in zip(cached.history, direct.history):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    for key, value in direct_model.state_dict().items():
        assert torch.allclose(cached_model.state_dict()[key], value, atol=1e-5), key


def test_augmented_views_change_head_training_reproducibly():
    history, model = frozen_run(True, augmented_views=3, augment=Augment(flip=True, shift=0.2))
    plain, _ = frozen_run(True)
    assert len(history.history) == 3
    assert history.history[0]["train_loss"] != plain.history[0]["train_loss"]
    again, _ = frozen_run(True, augmented_views=3, augment=Augment(flip=True, shift=0.2))
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in history.history]
