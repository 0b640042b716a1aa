"""Profiles and --set overrides resolve to one validated config."""
import pytest

from harness import plugin_registry
from harness.config import resolve, to_recipe
from harness.settings import parse_overrides
from harness.errors import HarnessError


@pytest.fixture(scope="module")
def baseline():
    return plugin_registry.load(report=False).models["baseline_cnn"].spec


def test_profile_then_model_profile_then_set(baseline):
    quick = resolve(baseline, "quick", {})
    assert quick["stages"][0]["epochs"] == 18  # the model's own quick budget
    assert resolve(baseline, "full", {})["stages"][0]["epochs"] == 100  # the study's recipe
    smoke = resolve(baseline, "smoke", {})
    # the harness's smoke settings (1,000 images), then the model's own smoke budget
    assert smoke["stages"][0]["epochs"] == 12 and smoke["data"]["train_size"] == 1000
    overridden = resolve(baseline, "smoke", parse_overrides(["epochs=3", "stages.train.lr=1e-4", "augment.rotation=0"]))
    recipe = to_recipe(overridden)
    assert recipe.stages[0].epochs == 3 and recipe.stages[0].lr == 1e-4 and recipe.augment.rotation == 0.0


def test_nested_callbacks_can_be_tuned_and_turned_off(baseline):
    config = resolve(baseline, "full", parse_overrides(["early_stopping.patience=3", "reduce_lr=none"]))
    stage = to_recipe(config).stages[0]
    assert stage.early_stopping.patience == 3 and stage.reduce_lr is None
    config = resolve(baseline, "full", parse_overrides(["reduce_lr=none", "reduce_lr.factor=0.2"]))
    assert to_recipe(config).stages[0].reduce_lr.factor == 0.2  # turned back on from defaults


@pytest.mark.parametrize(
    "pair, message",
    [
        ("epochz=3", "did you mean 'epochs'"),
        ("epochs=three", "expected int"),
        ("stages.trian.lr=1", "did you mean 'train'"),
        ("augment.rotate=5", "did you mean 'rotation'"),
        ("optimizer=rmsprop", "unknown optimizer 'rmsprop'"),
        ("flip", "key=value"),
        ("early_stopping.patience=0", "at least 1"),
    ],
)
def test_bad_overrides_are_one_line_errors(baseline, pair, message):
    with pytest.raises(HarnessError, match=message) as error:
        resolve(baseline, "quick", parse_overrides([pair]))
    assert "\n" not in str(error.value)


def test_unknown_profile(baseline):
    with pytest.raises(HarnessError, match="did you mean 'quick'"):
        resolve(baseline, "quik", {})


def test_monitors_name_their_mode_and_it_is_obeyed(baseline):
    from torch import nn

    from harness.jobs import fingerprint
    from harness.specs import EarlyStopping
    from harness_callbacks import EarlyStopper

    config = resolve(baseline, "full", {})
    assert config["stages"][0]["early_stopping"]["mode"] == "max" and config["stages"][0]["reduce_lr"]["mode"] == "max"
    on_loss = resolve(baseline, "full", parse_overrides(["early_stopping.monitor=val_loss"]))
    assert on_loss["stages"][0]["early_stopping"]["mode"] == "min"
    named = resolve(baseline, "full", parse_overrides(["early_stopping.mode=min"]))
    assert named["stages"][0]["early_stopping"]["mode"] == "min"
    with pytest.raises(HarnessError, match="mode must be max or min"):
        resolve(baseline, "full", parse_overrides(["early_stopping.mode=up"]))
    # a mode that is its monitor's own trains alike: same fingerprint as a config naming none
    unnamed = resolve(baseline, "full", {})
    for stage in unnamed["stages"]:
        del stage["early_stopping"]["mode"], stage["reduce_lr"]["mode"]
    assert fingerprint(config) == fingerprint(unnamed) != fingerprint(named)
    # one name, filled in once: settings made by hand carry their monitor's mode too
    assert EarlyStopping(monitor="val_loss").mode == "min" and EarlyStopping().mode == "max"
    # mode min on val_acc: a falling accuracy is the improvement
    stopper = EarlyStopper(EarlyStopping(monitor="val_acc", patience=1, mode="min"))
    model = nn.Linear(1, 1)
    assert not stopper.update(1, {"val_acc": 0.5}, model) and not stopper.update(2, {"val_acc": 0.4}, model)
    assert stopper.update(3, {"val_acc": 0.6}, model) and stopper.best_epoch == 2


def test_a_translation_of_half_the_image_or_more_is_refused_before_anything_trains():
    from harness import plugin_registry
    from harness.config import resolve
    from harness.errors import HarnessError

    spec = plugin_registry.load().model("baseline_cnn").spec
    assert resolve(spec, "smoke", {"augment.translate": "15"})["augment"]["translate"] == 15
    with pytest.raises(HarnessError, match="augment.translate must be between 0 and half the input size"):
        resolve(spec, "smoke", {"augment.translate": "16"})


def test_a_monitor_changed_by_set_brings_its_own_mode():
    """A model's recipe monitoring val_loss (its settings filled in with mode min) and --set
    switching it to val_acc: the mode is val_acc's, not the one filled in for val_loss; a callback
    switched on by --set and then given a monitor does the same."""
    import dataclasses

    from harness.specs import EarlyStopping

    spec = plugin_registry.load(report=False).models["baseline_cnn"].spec
    stages = [dataclasses.replace(stage, early_stopping=EarlyStopping(monitor="val_loss"), reduce_lr=None)
              for stage in spec.recipe.stages]
    on_loss = dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, stages=stages), profiles={})
    assert resolve(on_loss, "full", {})["stages"][0]["early_stopping"]["mode"] == "min"
    switched = resolve(on_loss, "full", parse_overrides(["early_stopping.monitor=val_acc"]))
    assert switched["stages"][0]["early_stopping"]["mode"] == "max"
    turned_on = resolve(on_loss, "full", parse_overrides(["reduce_lr.patience=2", "reduce_lr.monitor=val_loss"]))
    assert turned_on["stages"][0]["reduce_lr"]["mode"] == "min"
