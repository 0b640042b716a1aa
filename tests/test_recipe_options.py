"""The airbench options a recipe can turn on: the triangle schedule, a faster LR for normalization
layers, lookahead, parameters a model keeps fixed, data-dependent initialisation (the whitening
layer) and test-time translation."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import resolve
from harness.errors import HarnessError
from harness.evaluate import augmented_logits
from harness.freezing import Parts
from harness.optim import TRIANGLE_END, TRIANGLE_START, Lookahead, make_optimizer, make_step_schedule, param_groups
from harness.specs import Augment, ModelSpec, Recipe, Stage
from harness.train import Setup, Trainer, Watch
from harness_cnn.models import DeepCNN, Whitening, fit_whitening

from helpers.callbacks import after_each_epoch
from helpers.models import default_callbacks, job_and_context, net, tiny_splits


def test_norm_layers_get_the_scaled_lr_and_the_same_decay_per_step():
    model = net()
    stage = Stage(optimizer="sgd", lr=0.1, weight_decay=1e-3, norm_lr_scale=64)
    groups = param_groups(model, Parts.of(model), stage)
    norm_ids = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    (plain,), (scaled,) = [[g for g in groups if {id(p) for p in g["params"]} <= ids]
                           for ids in ({id(p) for p in model.parameters()} - norm_ids, norm_ids)]
    assert groups[0] is plain  # the history's LR is the plain weights'
    assert {id(p) for p in scaled["params"]} == norm_ids
    assert scaled["lr"] == pytest.approx(6.4) and plain["lr"] == 0.1
    assert scaled["lr"] * scaled["weight_decay"] == pytest.approx(plain["lr"] * plain["weight_decay"])
    assert len(param_groups(model, Parts.of(model), Stage(lr=0.1))) == 1


def test_norm_lr_scale_combines_with_a_lower_base_lr():
    model = net()
    groups = param_groups(model, Parts.of(model), Stage(lr=0.1, base_lr=0.01, norm_lr_scale=10))
    assert sorted(g["lr"] for g in groups) == pytest.approx([0.01, 0.1, 0.1])  # base, base norms, head


def test_triangle_rises_from_a_fifth_to_the_peak_then_falls_to_seven_percent():
    stage = Stage(optimizer="sgd", lr=1.0, epochs=10, schedule="triangle", warmup_epochs=2)
    optimizer = make_optimizer(stage, [{"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0}])
    schedule = make_step_schedule(stage, optimizer, steps_per_epoch=10)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(TRIANGLE_START) and lrs[20] == pytest.approx(1.0)
    assert lrs[100] == pytest.approx(TRIANGLE_END)
    assert all(a < b for a, b in zip(lrs[:20], lrs[1:21])) and all(a > b for a, b in zip(lrs[20:100], lrs[21:]))


def test_lookahead_pulls_back_every_fifth_step_and_ends_on_the_slow_weights():
    model = nn.Linear(2, 1)
    lookahead = Lookahead(model, decay=0.9, total_steps=12)
    start = model.weight.detach().clone()
    with torch.no_grad():
        for step in range(1, 13):
            model.weight.add_(1.0)  # a "training step"
            before = model.weight.detach().clone()
            lookahead.step(model)
            if step % 5 and step != 12:
                assert torch.equal(model.weight, before)  # untouched between pulls
            else:
                assert torch.equal(model.weight, lookahead.slow["weight"])
                if step == 5:  # decay 0.9**5 * (5/12)**3 of the way back to where it started
                    decay = 0.9 ** 5 * (5 / 12) ** 3
                    assert torch.allclose(model.weight, decay * start + (1 - decay) * before)


def test_stage_with_lookahead_ends_on_its_slow_weights():
    stage = Stage(name="train", optimizer="sgd", lr=0.05, epochs=2, batch_size=16, lookahead=0.95,
                  early_stopping=None)
    trainer = Trainer(net(), tiny_splits(), Recipe(stages=[stage]), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks()))
    trainer.fit()
    for key, value in trainer.lookahead.slow.items():
        assert torch.equal(trainer.model.state_dict()[key], value), key


def test_parameters_the_model_fixes_stay_fixed_through_every_stage():
    model = net()
    model.stem[1].weight.requires_grad_(False)  # a batch-norm scale the model keeps at its value
    fixed = model.stem[1].weight.detach().clone()
    stages = [Stage(name="head", trainable="head", epochs=1, batch_size=16, feature_cache=False),
              Stage(name="all", trainable="all", optimizer="sgd", lr=0.1, epochs=2, batch_size=16)]
    trainer = Trainer(model, tiny_splits(), Recipe(stages=stages), Setup(input_size=8, seed=0),
                      Watch(callbacks=default_callbacks()))
    trainer.fit()
    assert not model.stem[1].weight.requires_grad and torch.equal(model.stem[1].weight, fixed)
    assert model.stem[1].bias.requires_grad and model.stem[0].weight.requires_grad


def test_whitening_decorrelates_patches_of_the_images_it_was_fitted_on():
    torch.manual_seed(0)
    mixing = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])
    images = torch.einsum("dc,nchw->ndhw", mixing, torch.rand(64, 3, 16, 16)) / 2  # correlated channels
    layer = Whitening(3, 2)
    layer.fit(images)
    out = layer(images).permute(0, 2, 3, 1).reshape(-1, 24)
    half = out[:, :12]
    covariance = (half - half.mean(0)).T @ (half - half.mean(0)) / len(half)
    assert torch.allclose(covariance, torch.eye(12), atol=0.02)
    assert torch.allclose(half.mean(0), torch.zeros(12), atol=0.01)  # the mean is folded into the bias
    assert torch.allclose(out[:, 12:], -half, atol=1e-5)  # +/- pairs


def test_deep_cnn_fits_its_whitening_through_the_spec_hook_and_keeps_it_fixed():
    model = DeepCNN(3)
    before = model.whiten.weight.detach().clone()
    fit_whitening(model, torch.rand(8, 3, 32, 32))
    assert not torch.equal(model.whiten.weight, before) and not model.whiten.weight.requires_grad
    assert not any(p.requires_grad for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in [m.weight])


class Shifty(nn.Module):
    """Logits that depend on where things are in the image, so every TTA view differs."""

    def forward(self, x):
        return x[:, 0, :2, :3].reshape(len(x), -1)


def test_tta_translate_weighs_the_image_half_and_each_shift_a_quarter():
    model = Shifty()
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(augmented_logits(model, x), model(x))
    mirror = (model(x) + model(x.flip(-1))) / 2
    assert torch.allclose(augmented_logits(model, x, flip=True), mirror)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    views = [padded[..., :8, :8], padded[..., 2:, 2:]]
    expected = mirror / 2 + sum((model(v) + model(v.flip(-1))) / 2 for v in views) / 4
    assert torch.allclose(augmented_logits(model, x, flip=True, translate=1), expected)


@pytest.mark.parametrize("key, value", [("stages.train.lookahead", "1.0"), ("stages.train.norm_lr_scale", "0"),
                                        ("tta_translate", "16"), ("stages.train.schedule", "triangel")])
def test_bad_option_values_are_refused(key, value):
    spec = ModelSpec(name="m", build=lambda n: None, recipe=Recipe(stages=[Stage(name="train")]))
    with pytest.raises(HarnessError):
        resolve(spec, "quick", {key: value})


def test_init_from_data_runs_once_before_training_and_not_on_resume(tmp_path, monkeypatch):
    from harness import model_run, runner
    from harness.data import Images
    from conftest import pattern_images

    calls = []

    def init(model, images):
        calls.append((images.dtype, tuple(images.shape), float(images.min()), float(images.max())))
        red = images[:, 0].mean((1, 2))  # about 0.04 for class a, 0.38 for class b
        calls.append(bool((red < 0.2).any() and (red > 0.2).any()))  # not just the source's first images

    x, y = pattern_images(30, 2, size=8)
    images = Images(["a", "b"], x, y, x[:10], y[:10], "mem")
    spec = ModelSpec(name="m", input_size=8, init_from_data=init,
                     build=lambda n: nn.Sequential(nn.Flatten(), nn.Linear(192, n)),
                     recipe=Recipe(stages=[Stage(name="train", epochs=2, batch_size=8)], augment=Augment()))
    config = resolve(spec, "quick", {"data.val_size": 10})
    request = runner.RunRequest(models=["m"], out=tmp_path, command="test")

    def stop_after_first_epoch(row):
        if row["epoch"] == 2:  # killed in epoch 2: epoch 1's checkpoint is on disk
            raise KeyboardInterrupt

    monkeypatch.setattr(model_run, "log", lambda message: None)
    monkeypatch.setattr(model_run, "INIT_IMAGES", 10)  # of 50 training images, listed class by class
    original = Trainer.fit

    def interrupted(self, resume=None):
        after_each_epoch(self, stop_after_first_epoch)
        return original(self, resume)

    monkeypatch.setattr(Trainer, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model_run.run_model(*job_and_context(spec, config, tmp_path / "m", request), images)
    assert len(calls) == 2 and calls[0][0] == torch.float32 and calls[0][1][1:] == (3, 8, 8) and calls[1]
    assert 0 <= calls[0][2] and calls[0][3] <= 1
    monkeypatch.setattr(Trainer, "fit", original)
    # resumes from the checkpoint
    metrics = model_run.run_model(*job_and_context(spec, config, tmp_path / "m", request), images)
    assert len(calls) == 2 and metrics["epochs"] == 2


def test_recipe_dropout_sets_every_dropout_module_and_none_keeps_the_models(tmp_path, monkeypatch):
    from harness import model_run, runner
    from harness.data import Images
    from conftest import pattern_images

    seen = []
    x, y = pattern_images(20, 2, size=8)
    images = Images(["a", "b"], x, y, x[:10], y[:10], "mem")
    spec = ModelSpec(name="m", input_size=8, init_from_data=lambda model, _: seen.append(
                         [m.p for m in model.modules() if isinstance(m, nn.Dropout)]),
                     build=lambda n: nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(192, 16), nn.Dropout(0.3),
                                                   nn.Linear(16, n)),
                     recipe=Recipe(stages=[Stage(name="train", epochs=1, batch_size=8)]))
    monkeypatch.setattr(model_run, "log", lambda message: None)
    request = runner.RunRequest(models=["m"], out=tmp_path, command="test")
    for dropout, folder in ((0.1, "a"), (None, "b")):
        config = resolve(spec, "quick", {"data.val_size": 10, "dropout": dropout})
        model_run.run_model(*job_and_context(spec, config, tmp_path / folder, request), images)
    assert seen == [[0.1, 0.1], [0.5, 0.3]]
    with pytest.raises(HarnessError):
        resolve(spec, "quick", {"dropout": 1.0})


def test_recipe_dropout_reaches_timms_functional_dropout_and_says_when_there_is_none(capsys):
    """timm's classifiers apply dropout as a function of ``drop_rate`` (no module to set): the recipe's
    rate reaches it, and a model without any dropout says that the setting does nothing."""
    from harness import plugin_registry
    from harness.model_run import set_dropout

    model = plugin_registry.load(report=False).model("timm:resnet10t").spec.build(10)
    set_dropout(model, 0.9, "timm:resnet10t")
    assert model.net.drop_rate == 0.9
    model.train()
    x = torch.rand(4, 3, 32, 32)
    assert not torch.equal(model(x), model(x))  # dropped features differ call to call
    set_dropout(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), 0.2, "linear")
    assert "linear: dropout=0.2 is not applied: the model has no dropout to set" in capsys.readouterr().err


def test_an_unknown_optimizer_is_an_error_not_adam():
    from harness.errors import HarnessError

    stage = Stage("train", optimizer="rmsprop", lr=0.1)
    with pytest.raises(HarnessError, match="unknown optimizer 'rmsprop' in stage 'train'; choose adam, adamw, sgd"):
        make_optimizer(stage, [{"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}])


def test_an_unknown_schedule_is_an_error_not_a_constant_rate():
    from harness.errors import HarnessError

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert make_step_schedule(Stage("train", lr=0.1), optimizer, steps_per_epoch=4) is None
    with pytest.raises(HarnessError, match="unknown schedule 'cosin'; did you mean 'cosine'"):
        make_step_schedule(Stage("train", lr=0.1, schedule="cosin"), optimizer, steps_per_epoch=4)
