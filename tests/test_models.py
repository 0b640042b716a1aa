"""Every registered model, as timm tests its registry: it builds, runs forward and backward at its
input size and returns one logit per class; its head and blocks name real modules."""
import pytest
import torch

from harness import plugins
from harness.freezing import Parts, trainable_prefixes

REGISTRY = plugins.load(report=False)


@pytest.mark.parametrize("name", sorted(REGISTRY.models))
def test_model_builds_runs_forward_and_backward(name):
    spec = REGISTRY.models[name].spec
    size = spec.size_for("smoke")
    torch.manual_seed(0)
    model = spec.build(10)
    model.train()
    x = torch.rand(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    parts = Parts.of(model, spec.head, spec.blocks)
    modules = dict(model.named_modules())
    assert parts.head in modules
    for stage in spec.recipe.stages:
        for prefix in trainable_prefixes(parts, stage.trainable) or []:
            assert prefix in modules, f"{name}: stage {stage.name} names missing module {prefix}"


@pytest.mark.parametrize("name", sorted(n for n, r in REGISTRY.models.items() if r.spec.family == "transfer"))
def test_transfer_models_declare_two_stages_and_pretrained_weights(name):
    spec = REGISTRY.models[name].spec
    assert [stage.name for stage in spec.recipe.stages] == ["frozen", "finetune"]
    assert spec.recipe.stages[0].trainable == "head"
    assert spec.weights is not None and spec.weights.arch
    model = spec.build(10)
    # the normalisation comes from timm's pretrained config of the architecture
    assert torch.allclose(model.mean.flatten(), torch.tensor(model.net.pretrained_cfg["mean"]))
