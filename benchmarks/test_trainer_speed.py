"""The harness trainer against a bare PyTorch loop (same model, batches, optimizer), training and
evaluation, measured alternately in one run. Run: python -m pytest benchmarks -q -s (nothing else
running); ``harness bench`` reports the same numbers."""
import pytest

from harness import plugin_registry
from harness.bench import eval_speed, train_speed

CNNS = ["baseline_cnn", "deep_cnn"]
# fine-tuning stage at the quick profile's input size, random weights (speed does not depend on
# them); fewer images per timed epoch: these models are 10-50x slower per image
TRANSFER = ["mobilenetv3", "mobilenetv3_large", "efficientnet_lite0", "resnet50", "vgg16", "inception_v3"]


@pytest.mark.parametrize("name", CNNS + TRANSFER)
def test_trainer_costs_at_most_5_percent_over_a_bare_loop(benchmark, name):
    models = plugin_registry.load().models
    if name not in models:
        pytest.skip(f"{name} is not installed (a plugin package)")
    spec = models[name].spec
    images, repeats = (1024, 3) if name in TRANSFER else (4096, 5)  # what `harness bench` measures
    train = benchmark.pedantic(train_speed, args=(spec,), kwargs={"images": images, "repeats": repeats},
                               rounds=1, iterations=1)
    evaluation = eval_speed(spec, images=images // 2, repeats=repeats)
    benchmark.extra_info.update({"train": train, "eval": evaluation})
    print(f"\n{name}: train {train['harness_img_s']:.0f} vs bare {train['bare_img_s']:.0f} img/s "
          f"(ratio {train['ratio_vs_bare']:.3f}); eval {evaluation['harness_img_s']:.0f} vs bare "
          f"{evaluation['bare_img_s']:.0f} img/s (ratio {evaluation['ratio_vs_bare']:.3f})")
    assert train["ratio_vs_bare"] >= 0.95
    assert evaluation["ratio_vs_bare"] >= 0.95
