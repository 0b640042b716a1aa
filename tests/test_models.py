"""Every registered model, as timm tests its registry: it builds, runs forward and backward at its
input size and returns one logit per class; its head and blocks name real modules."""
import pytest
import torch

from harness import plugin_registry
from harness.freezing import Parts, trainable_prefixes

REGISTRY = plugin_registry.load(report=False)


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


def test_macs_are_counted_by_hand_and_an_untraceable_model_says_so(capsys):
    """conv 3->4, 3x3 on 8x8 with padding: 8*8*4*3*9 = 6,912; linear 256->5: 1,280 (biases not counted)."""
    from torch import nn

    from harness.modelcheck import count_macs

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    assert count_macs(model, 8) == 6_912 + 1_280
    assert model.training  # left as it was found

    class Untraceable(nn.Module):
        def forward(self, x):
            raise NotImplementedError("no FLOP formula for my_op")

    assert count_macs(Untraceable(), 8) is None
    assert "MACs not counted for Untraceable (NotImplementedError: no FLOP formula for my_op)" in capsys.readouterr().err

    class Broken(nn.Module):
        def forward(self, x):
            return x.no_such_method()

    with pytest.raises(AttributeError):  # a bug is not hidden as a missing figure
        count_macs(Broken(), 8)
