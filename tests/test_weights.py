"""Pretrained weights: from a file in the weights folder, from the hub's cache, or missing; files
for another architecture or damaged files are clear one-line errors."""
import json

import pytest
import torch
from safetensors.torch import save_file

from harness import plugin_registry, weights
from harness.cli import main
from harness.errors import HarnessError
from harness.runner import RunRequest, run

REGISTRY = plugin_registry.load(report=False)
MOBILENET = REGISTRY.models["mobilenetv3"].spec


def imagenet_state(arch, seed=1):
    import timm

    torch.manual_seed(seed)
    return timm.create_model(arch, pretrained=False, num_classes=1000).state_dict()


def test_file_in_weights_dir_is_found_loaded_and_recorded(tmp_path):
    state = imagenet_state("tf_mobilenetv3_small_100")
    path = tmp_path / "tf_mobilenetv3_small_100.test_in1k.safetensors"
    save_file(state, str(path))
    (tmp_path / "tf_mobilenetv3_small_100_other.safetensors").write_bytes(b"")  # another arch's name
    source = weights.resolve(MOBILENET, tmp_path)
    assert source.kind == "file" and source.path == path and len(source.sha256) == 64
    model = MOBILENET.build(10)
    weights.load_into(model, source, MOBILENET)
    loaded = model.net.state_dict()
    assert torch.equal(loaded["conv_stem.weight"], state["conv_stem.weight"])
    assert torch.equal(loaded["blocks.5.0.conv.weight"], state["blocks.5.0.conv.weight"])
    assert loaded["classifier.weight"].shape == (10, 1024)  # the new head is kept


def test_pth_file_with_a_wrapped_state_dict(tmp_path):
    state = imagenet_state("tf_mobilenetv3_small_100", seed=2)
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "tf_mobilenetv3_small_100.pth")
    source = weights.resolve(MOBILENET, tmp_path)
    model = MOBILENET.build(10)
    weights.load_into(model, source, MOBILENET)
    assert torch.equal(model.net.state_dict()["bn1.running_mean"], state["bn1.running_mean"])


def test_file_for_another_architecture_is_refused(tmp_path):
    save_file(imagenet_state("resnet18"), str(tmp_path / "tf_mobilenetv3_small_100.wrong.safetensors"))
    source = weights.resolve(MOBILENET, tmp_path)
    with pytest.raises(HarnessError, match="does not fit tf_mobilenetv3_small_100") as error:
        weights.load_into(MOBILENET.build(10), source, MOBILENET)
    assert "\n" not in str(error.value)


def test_damaged_file_is_refused(tmp_path):
    (tmp_path / "tf_mobilenetv3_small_100.bad.safetensors").write_bytes(b"\x00garbage" * 10)
    source = weights.resolve(MOBILENET, tmp_path)
    with pytest.raises(HarnessError, match="cannot be read"):
        weights.load_into(MOBILENET.build(10), source, MOBILENET)


def test_hub_download_path_reads_timm_weights_from_the_hub_cache(isolated_dirs):
    """timm's real hub path (huggingface_hub), answered from a local cache as offline users have it."""
    repo = isolated_dirs / "hub" / "models--timm--tf_mobilenetv3_small_100.in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    state = imagenet_state("tf_mobilenetv3_small_100", seed=3)
    save_file(state, str(snapshot / "model.safetensors"))
    source = weights.resolve(MOBILENET, None)
    assert source.kind == "hub" and source.tag == "tf_mobilenetv3_small_100.in1k"
    model = MOBILENET.build(10)
    weights.load_into(model, source, MOBILENET)
    assert torch.equal(model.net.state_dict()["conv_head.weight"], state["conv_head.weight"])


def test_missing_weights_name_the_file_and_where(tmp_path):
    with pytest.raises(weights.MissingWeights, match=r"put resnet50\.<tag>\.safetensors\|\.pth in") as error:
        weights.resolve(REGISTRY.models["resnet50"].spec, tmp_path)
    assert "--no-pretrained" in str(error.value)
    assert weights.resolve(REGISTRY.models["resnet50"].spec, tmp_path, pretrained=False).kind == "scratch"


def test_model_named_alone_without_weights_is_exit_2(tmp_path, capsys):
    assert main(["run", "--model", "resnet50", "--profile", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resnet50.<tag>.safetensors" in err


def test_during_all_a_model_without_weights_is_skipped_and_the_others_run(tmp_path):
    request = RunRequest(models=["resnet50", "baseline_cnn"], profile="smoke", out=tmp_path,
                         overrides={"epochs": "1"}, skip_missing_weights=True)
    assert run(REGISTRY, request) == 0
    skipped = json.loads((tmp_path / "resnet50" / "metrics.json").read_text())
    assert skipped["status"] == "skipped" and "no ImageNet weights" in skipped["reason"]
    # the row's identity, as the README lists it, and a reason that says what gives the model weights
    assert {key: skipped[key] for key in ("model", "family", "profile", "seed", "input_size", "variant", "weights")} \
        == {"model": "resnet50", "family": "transfer", "profile": "smoke", "seed": 0,
            "input_size": skipped["input_size"], "variant": None, "weights": None}
    assert isinstance(skipped["input_size"], int) and "--weights-dir" in skipped["reason"]
    assert json.loads((tmp_path / "baseline_cnn" / "metrics.json").read_text())["status"] == "ok"
    board = (tmp_path / "leaderboard.csv").read_text()
    assert "resnet50" in board and "skipped" in board


def test_no_pretrained_trains_from_scratch_and_says_so(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--model", "resnet50", "--profile", "smoke", "--no-pretrained", "--out", str(out),
                 "--set", "epochs=1", "--set", "data.train_size=100"]) == 0
    metrics = json.loads((out / "resnet50" / "metrics.json").read_text())
    assert metrics["weights"] == "scratch" and [s["name"] for s in metrics["stages"]] == ["frozen", "finetune"]
    assert metrics["family"] == "scratch"  # not transfer learning, whatever the model's usual recipe
    assert "scratch" in (out / "leaderboard.md").read_text()


@pytest.mark.parametrize("name", ["mobilenetv3", "vgg16", "efficientnet_lite0"])
def test_a_new_head_starts_at_a_uniform_guess(tmp_path, name):
    """Pretrained features are far larger than a random head expects (a frozen stage's first loss
    was 14.5 for ten classes): the new head starts at zero, so the first loss is ln(10)."""
    spec = REGISTRY.model(name).spec
    source = weights.resolve(spec, tmp_path) if spec.weights.locate else None
    if source is None:
        save_file(imagenet_state(spec.weights.arch), str(tmp_path / f"{spec.weights.arch}.test.safetensors"))
        source = weights.resolve(spec, tmp_path)
    model = spec.build(10).eval()
    weights.load_into(model, source, spec)
    size = spec.size_for("smoke")
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(torch.rand(8, 3, size, size)), torch.arange(8))
    assert abs(float(loss) - 2.302585) < 1e-4
