"""The harness trainer against a bare PyTorch loop (same model, batches, optimizer), training and
evaluation, measured alternately in one run. Run: python -m pytest benchmarks -q -s (nothing else
running); ``harness bench`` reports the same numbers."""
import pytest

from harness import plugins
from harness.bench import eval_speed, train_speed


@pytest.mark.parametrize("name", ["baseline_cnn", "deep_cnn"])
def test_trainer_costs_at_most_5_percent_over_a_bare_loop(benchmark, name):
    spec = plugins.load().models[name].spec
    train = benchmark.pedantic(train_speed, args=(spec,), rounds=1, iterations=1)
    evaluation = eval_speed(spec)
    benchmark.extra_info.update({"train": train, "eval": evaluation})
    print(f"\n{name}: train {train['harness_img_s']:.0f} vs bare {train['bare_img_s']:.0f} img/s "
          f"(ratio {train['ratio_vs_bare']:.3f}); eval {evaluation['harness_img_s']:.0f} vs bare "
          f"{evaluation['bare_img_s']:.0f} img/s (ratio {evaluation['ratio_vs_bare']:.3f})")
    assert train["ratio_vs_bare"] >= 0.95
    assert evaluation["ratio_vs_bare"] >= 0.95
