"""Training-batch throughput of the harness data pipeline (uint8 in memory, batched augmentation)
against torchvision's DataLoader over PIL images with the equivalent per-image transforms,
measured in the same run. Run: python -m pytest benchmarks -q (nothing else running)."""
from harness.bench import STUDY_AUGMENT, data_pipeline_speedup, harness_epoch, random_images


def test_data_pipeline_is_at_least_5x_torchvision(benchmark):
    result = data_pipeline_speedup()
    benchmark.extra_info.update(result)
    print(f"\nharness {result['harness_img_s']:.0f} img/s, torchvision {result['torchvision_img_s']:.0f} img/s, "
          f"speedup {result['speedup_vs_torchvision']:.1f}x")

    import torch

    images, labels = random_images(4096)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    benchmark(harness_epoch, x, y, STUDY_AUGMENT, 128, generator)
    assert result["speedup_vs_torchvision"] >= 5
