"""How much faster the frozen stage is when the frozen base runs once per image (cached features)
than when it runs every epoch. Run: python -m pytest benchmarks -q -s (nothing else running)."""
import pytest

from harness import plugin_registry
from harness.bench import frozen_stage_seconds


@pytest.mark.parametrize("name, size", [("mobilenetv3", 160)])
def test_frozen_feature_cache_speedup(benchmark, name, size):
    spec = plugin_registry.load(report=False).models[name].spec
    kwargs = dict(n=1024, input_size=size, epochs=5)
    direct = frozen_stage_seconds(spec, feature_cache=False, **kwargs)
    cached = benchmark.pedantic(frozen_stage_seconds, args=(spec,), kwargs={**kwargs, "feature_cache": True},
                                rounds=1, iterations=1)
    speedup = direct / cached
    benchmark.extra_info.update({"model": name, "input_size": size, "epochs": 5, "images": 1024,
                                 "direct_s": direct, "cached_s": cached, "speedup": speedup})
    print(f"\n{name}@{size}: 5 frozen epochs on 1024 images: every epoch through the base {direct:.1f}s, "
          f"cached features {cached:.1f}s, {speedup:.1f}x faster")
    assert speedup > 2
