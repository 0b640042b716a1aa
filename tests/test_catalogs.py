"""Architectures by name: ``timm:`` and ``tv:`` through the ``resolve_model`` hook, a third-party
catalog through the same hook, ``harness list --catalog``, and catalog models in every command."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from conftest import install_plugin, write_canonical
from harness import plugin_registry
from harness.cli import main

pytestmark = pytest.mark.slow

SMALL = ["--set", "data.val_size=20", "--set", "data.train_size=120", "--set", "data.test_size=40",
         "--set", "epochs=1", "--set", "input_size=32"]


@pytest.fixture
def data(tmp_path):
    return write_canonical(tmp_path / "cifar-10-batches-py", per_class=(20, 5))


def metrics_of(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_a_timm_name_resolves_to_a_full_transfer_spec():
    registry = plugin_registry.load()
    registered = registry.model("timm:resnet10t")
    spec = registered.spec
    assert registered.plugin == "catalogs" and spec.name == "timm:resnet10t"
    assert spec.input_size == {"smoke": 64, "quick": 160, "full": 176}  # timm's pretrained config: 176 px
    assert [s.name for s in spec.recipe.stages] == ["frozen", "finetune"] and spec.weights.arch == "resnet10t"
    model = spec.build(4)
    assert model.get_submodule(spec.head).out_features == 4
    assert model.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    scratch = spec.from_scratch()
    assert [s.name for s in scratch.recipe.stages] == ["train"] and scratch.recipe.stages[0].trainable == "all"
    assert (spec.family, scratch.family) == ("transfer", "scratch")  # random weights: no transfer learning
    assert "timm:resnet10t" not in registry.models  # --all stays the registered zoo


def test_a_torchvision_name_resolves_with_its_head_and_crop_size():
    spec = plugin_registry.load().model("tv:mobilenet_v3_small").spec
    assert spec.head == "net.classifier.3" and spec.input_size["full"] == 224
    assert spec.cpu_bf16 == ("eval",)  # depthwise convolutions
    assert spec.build(5)(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    assert plugin_registry.load().model("tv:inception_v3").spec.input_size["smoke"] == 75  # its smallest input


@pytest.mark.parametrize("name, close", [("timm:resnet_nonexistent", "timm:resnet"), ("tv:resnet_18", "tv:resnet18")])
def test_an_unknown_catalog_name_is_one_line_with_close_names(name, close, capsys, tmp_path):
    assert main(["run", "--model", name, "--profile", "smoke", "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and close in err[0] and "close:" in err[0], err


def test_list_a_catalog_with_params_macs_and_weights(tmp_path, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "resnet10t.c3_in1k.safetensors").write_bytes(b"")  # found by name; not read by list
    assert main(["list", "--catalog", "timm", "--match", "resnet1?t", "--json", "--weights-dir", str(weights)]) == 0
    found = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(found) == {"timm:resnet10t", "timm:resnet14t"}
    assert found["timm:resnet10t"]["weights"] == "file" and found["timm:resnet14t"]["weights"] == "not here"
    assert found["timm:resnet10t"]["params_m"] == pytest.approx(4.93, abs=0.01)  # with a 10-class head
    assert found["timm:resnet10t"]["gmacs"] == pytest.approx(0.698, abs=0.01) and found["timm:resnet10t"]["input_size"] == 176  # at 176 px
    assert main(["list", "--catalog", "tv", "--match", "resnet18"]) == 0
    assert "tv:resnet18" in capsys.readouterr().out


def test_a_long_catalog_listing_names_the_architectures_and_says_how_to_count_them(capsys):
    """timm's whole catalog would take minutes to build on the meta device: names alone, at once."""
    from harness.catalogs import DETAILED_AT_MOST

    assert main(["list", "--catalog", "timm", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) > DETAILED_AT_MOST and all(set(row) == {"name", "plugin"} for row in rows)
    assert main(["list", "--catalog", "timm"]) == 0
    assert "narrow --match, or pass --details" in capsys.readouterr().out
    assert main(["list", "--catalog", "timm", "--match", "resnet10t", "--details", "--json"]) == 0
    detailed = json.loads(capsys.readouterr().out)[0]
    assert detailed["gmacs"] > 0 and {"name": "timm:resnet10t", "plugin": detailed["plugin"]} in rows


def test_timm_and_torchvision_models_train_from_scratch_onto_the_leaderboard(tmp_path, data):
    out = tmp_path / "out"
    assert main(["run", "--model", "timm:resnet10t", "tv:mobilenet_v3_small", "--no-pretrained", "--profile",
                 "smoke", "--data", str(data), "--out", str(out), *SMALL]) == 0
    board = (out / "leaderboard.csv").read_text()
    assert "timm:resnet10t" in board and "tv:mobilenet_v3_small" in board
    for name in ("timm:resnet10t", "tv:mobilenet_v3_small"):
        metrics = metrics_of(out / name)
        assert metrics["status"] == "ok" and metrics["weights_source"]["kind"] == "scratch"
        assert [s["name"] for s in metrics["stages"]] == ["train"]
    report = (out / "report.md").read_text()
    assert "](./timm:resnet10t/README.md)" in report  # not a URL scheme to a Markdown viewer
    assert "Only the scratch family ran here" in report  # neither is set against CNNs as transfer learning
    # the saved model is evaluated and predicts by its catalog name
    assert main(["evaluate", "--model-dir", str(out / "timm:resnet10t"), "--data", str(data)]) == 0


def test_timm_weights_from_the_weights_folder_give_a_frozen_and_a_finetuned_stage(tmp_path, data):
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "weights"
    weights.mkdir()
    state = timm.create_model("tf_mobilenetv3_small_100", pretrained=False).state_dict()
    file = weights / "tf_mobilenetv3_small_100.test.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    out = tmp_path / "out"
    assert main(["run", "--model", "timm:tf_mobilenetv3_small_100", "--profile", "smoke", "--data", str(data),
                 "--weights-dir", str(weights), "--out", str(out), *SMALL]) == 0
    metrics = metrics_of(out / "timm:tf_mobilenetv3_small_100")
    assert metrics["weights_source"]["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert [s["name"] for s in metrics["stages"]] == ["frozen", "finetune"]


def test_torchvision_weights_load_everything_but_the_classifier(tmp_path):
    from torchvision import models

    from harness import weights

    spec = plugin_registry.load().model("tv:resnet18").spec
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(1)
    state = models.resnet18(weights=None).state_dict()  # torchvision's names, 1,000 classes
    torch.save(state, folder / "resnet18-f37072fd.pth")
    source = weights.resolve(spec, folder)
    assert source.kind == "file"
    model = spec.build(3)
    weights.load_into(model, source, spec)
    assert torch.equal(model.net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model.net.fc.out_features == 3
    with pytest.raises(weights.MissingWeights, match="resnet18-f37072fd.pth"):
        weights.resolve(spec, tmp_path / "empty")


CATALOG_PLUGIN = '''
import torch.nn as nn
from harness import CatalogSpec, ModelSpec, Recipe, Stage, hookimpl

ZOO = {"tiny": 8, "wide": 16}


@hookimpl
def resolve_model(name):
    prefix, _, arch = name.partition(":")
    if prefix == "acme" and arch in ZOO:
        width = ZOO[arch]
        return ModelSpec(
            name=name, input_size=8,
            build=lambda classes: nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                                nn.Flatten(), nn.Linear(width, classes)),
            recipe=Recipe(stages=[Stage(name="train", epochs=1, batch_size=32)]), head="4")
    return None


@hookimpl
def register_catalogs(register):
    register(CatalogSpec("acme", lambda pattern: sorted(ZOO), "the company zoo"))
'''


def test_an_outside_catalog_plugin_resolves_and_runs_its_models(site, tmp_path, data, capsys):
    install_plugin(site, "acme_zoo", CATALOG_PLUGIN, "acme", dist="acme-zoo")
    registry = plugin_registry.load()
    assert registry.model("acme:tiny").plugin == "acme" and registry.model("acme:tiny").package == "acme-zoo"
    out = tmp_path / "out"
    assert main(["run", "--model", "acme:tiny", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=20"]) == 0
    assert metrics_of(out / "acme:tiny")["status"] == "ok"
    assert "acme:tiny" in (out / "leaderboard.md").read_text()
    capsys.readouterr()
    assert main(["list", "--catalog", "acme", "--json"]) == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["acme:tiny", "acme:wide"]
    assert main(["run", "--model", "acme:huge", "--out", str(out)]) == 2
    assert "unknown model 'acme:huge'" in capsys.readouterr().err


def test_every_torchvision_name_resolves_and_lists():
    """The README promises all of torchvision's classification models: each resolves to a spec and
    lists with its counts (RegNets compute their widths with real tensors; vit_h_14 is built for
    its weights' 518 px)."""
    from harness.catalogs import entries

    registry = plugin_registry.load()
    rows = entries(registry, "tv", details=True)
    assert len(rows) == len(registry.catalogs["tv"].spec.names("*")) >= 80
    assert not [row for row in rows if "error" in row]
    assert all(row["params_m"] > 0 and row["gmacs"] > 0 for row in rows)


def test_a_regnet_and_a_sample_of_timm_train_a_step():
    """Resolved names build for real and take a training step at their smoke size: a RegNet and one
    small architecture of each of timm's main kinds (convolutional, depthwise, attention, MLP)."""
    registry = plugin_registry.load()
    names = ["tv:regnet_x_400mf", "tv:regnet_y_400mf", *(f"timm:{n}" for n in (
        "resnet10t", "regnetx_002", "efficientnet_b0", "ghostnet_100", "convnext_atto", "densenet121",
        "mobilevit_xxs", "vit_tiny_patch16_224", "deit_tiny_patch16_224", "levit_128s", "mixer_s16_224"))]
    for name in names:
        spec = registry.model(name).spec.from_scratch()
        size = spec.size_for("smoke")
        model = spec.build(3)
        loss = torch.nn.functional.cross_entropy(model(torch.rand(2, 3, size, size)), torch.tensor([0, 2]))
        loss.backward()
        assert torch.isfinite(loss), name


def test_one_name_a_library_cannot_build_does_not_take_the_listing_down(site, capsys):
    install_plugin(site, "brittle_catalog", """
        from harness import CatalogSpec, ModelSpec, hookimpl
        import torch

        def build(num_classes):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, num_classes))

        def broken(num_classes):
            raise NotImplementedError("Cannot copy out of meta tensor; no data!")

        @hookimpl
        def resolve_model(name):
            if name.startswith("brittle:"):
                return ModelSpec(name=name, build=broken if name.endswith("bad") else build, input_size=8)

        @hookimpl
        def register_catalogs(register):
            register(CatalogSpec("brittle", names=lambda pattern: ["bad", "good"]))
    """, "brittle")
    assert main(["list", "--catalog", "brittle"]) == 0
    out = capsys.readouterr().out
    bad, good = (line for line in out.splitlines() if line.startswith("brittle:"))
    assert "NotImplementedError: Cannot copy out of meta tensor" in bad and good.split()[-1] == "none"
