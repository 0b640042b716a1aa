"""Run options that change speed, not the recipe: each has a CPU path that trains correctly."""
import pytest
import torch

from harness.accel import Accel
from harness.errors import HarnessError
from harness.specs import Recipe, Stage
from harness.train import Setup, Trainer, Watch

from helpers.models import default_callbacks, small_cnn, tiny_splits


def test_cpu_defaults_are_channels_last_with_precision_left_to_each_model():
    accel = Accel.choose("cpu")
    assert accel.amp is None and not accel.on_gpu and accel.channels_last  # "auto": settled per model
    assert accel.layout(torch.zeros(2, 3, 4, 4)).is_contiguous(memory_format=torch.channels_last)
    assert Accel.choose("cpu", channels_last=False).layout(torch.zeros(2, 3, 4, 4)).is_contiguous()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_a_one_line_error():
    with pytest.raises(HarnessError, match="torch sees no CUDA GPU here; use --device cpu"):
        Accel.choose("cuda")


def test_auto_picks_the_cpu_without_a_gpu_and_gpu_defaults_otherwise():
    accel = Accel.choose("auto")
    assert accel.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert accel.amp == (True if accel.on_gpu else None) and accel.channels_last


class Spec:  # what for_model reads of a ModelSpec
    def __init__(self, name, cpu_bf16=("train", "eval")):
        self.name, self.cpu_bf16 = name, cpu_bf16


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16-cpu", "cpu-without-bf16"])
def test_amp_auto_is_chosen_per_model_and_phase_on_a_cpu(monkeypatch, native):
    import harness.accel

    monkeypatch.setattr(harness.accel, "cpu_has_native_bf16", lambda: native)
    auto = Accel.choose("cpu")
    cnn, mobilenet = auto.for_model(Spec("cnn")), auto.for_model(Spec("mnv3", cpu_bf16=("eval",)))
    assert (cnn.amp, cnn.evaluates_in_bf16) == (native, native)
    assert (mobilenet.amp, mobilenet.evaluates_in_bf16) == (False, native)  # depthwise: bf16 trains slower
    assert ("no native bfloat16" in cnn.amp_reason) != native
    # recorded, and part of the fingerprint, when the phases differ
    assert ("eval_amp" in mobilenet.describe()) == native and "eval_amp" not in cnn.describe()
    # --amp / --no-amp force one choice for every model and phase
    for forced in (True, False):
        chosen = Accel.choose("cpu", amp=forced).for_model(Spec("mnv3", cpu_bf16=("eval",)))
        assert (chosen.amp, chosen.evaluates_in_bf16) == (forced, forced) and "forced" in chosen.amp_reason


def test_eval_autocast_follows_the_eval_choice():
    accel = Accel(amp=False, eval_amp=True)
    conv = torch.nn.Conv2d(3, 4, 3)
    with accel.autocast("train"):
        assert conv(torch.zeros(1, 3, 5, 5)).dtype == torch.float32
    with accel.autocast("eval"):
        assert conv(torch.zeros(1, 3, 5, 5)).dtype == torch.bfloat16


def test_a_run_records_its_precision_choice(tmp_path):
    """metrics.json says what was chosen and why; on a CPU without native bf16 nothing changes the
    config (old runs keep their fingerprints)."""
    import json

    from harness import accel as accel_module
    from harness.cli import main

    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=1", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "baseline_cnn" / "metrics.json").read_text())
    config = json.loads((tmp_path / "baseline_cnn" / "config.json").read_text())
    native = accel_module.cpu_has_native_bf16()
    assert metrics["accel"]["amp"] is native and metrics["accel"]["eval_amp"] is native
    assert metrics["accel"]["amp_reason"].startswith("auto: ")
    assert config["accel"]["amp"] is native


def fit(accel, epochs=3):
    recipe = Recipe(stages=[Stage(epochs=epochs, batch_size=8, lr=3e-2, early_stopping=None)])
    model = small_cnn()
    trainer = Trainer(model, tiny_splits(), recipe, Setup(input_size=8, seed=0, accel=accel),
                      Watch(show_progress=False, callbacks=default_callbacks()))
    return model, trainer.fit()


@pytest.mark.parametrize("accel", [Accel(amp=True), Accel(channels_last=False)], ids=["amp-bf16", "nchw"])
def test_each_cpu_path_trains_like_the_default(accel):
    """bf16 autocast and NCHW change the last bits only: the same tiny problem is learnt."""
    _, plain = fit(Accel())
    model, tried = fit(accel)
    assert tried.history[-1]["train_loss"] < tried.history[0]["train_loss"]
    assert tried.history[-1]["val_acc"] == pytest.approx(plain.history[-1]["val_acc"], abs=0.2)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) == accel.channels_last
    assert all(value.dtype == torch.float32 for value in model.state_dict().values() if value.is_floating_point())


def test_amp_runs_the_forward_pass_in_bfloat16():
    """Not just "trains like the default": with --amp the convolutions compute in bfloat16 (an
    autocast that did nothing would leave them in float32), the weights stay float32."""
    seen = []
    model = small_cnn()
    model[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    recipe = Recipe(stages=[Stage(epochs=1, batch_size=8, lr=3e-2, early_stopping=None)])
    Trainer(model, tiny_splits(), recipe, Setup(input_size=8, seed=0, accel=Accel(amp=True)),
            Watch(show_progress=False, callbacks=default_callbacks())).fit()
    assert seen and set(seen) == {torch.bfloat16}
    assert model[0].weight.dtype == torch.float32
    seen.clear()
    Trainer(small_cnn(), tiny_splits(), recipe, Setup(input_size=8, seed=0, accel=Accel()),
            Watch(show_progress=False, callbacks=default_callbacks()))
    assert not seen


def test_compiled_training_keeps_plain_parameter_names(tmp_path):
    """torch.compile wraps the model for the forward pass only: the checkpoint a compiled run
    writes keeps the module's own names and loads into a plain model."""
    pytest.importorskip("torch._inductor")
    from harness.train import load_checkpoint

    recipe = Recipe(stages=[Stage(epochs=1, batch_size=8, lr=3e-2, early_stopping=None)])
    trainer = Trainer(small_cnn(), tiny_splits(), recipe, Setup(input_size=8, seed=0, accel=Accel(compile=True)),
                      Watch(show_progress=False, checkpoint=tmp_path / "c.pt", callbacks=default_callbacks()))
    assert trainer.forward is not trainer.model  # the compiled wrapper is what runs
    result = trainer.fit()
    saved = load_checkpoint(tmp_path / "c.pt")["model_state"]
    assert saved and all(not key.startswith("_orig_mod") for key in saved)
    small_cnn().load_state_dict(saved)  # strict: every name matches a plain model's
    assert result.history[0]["train_loss"] > 0
