"""Memory against data size, and the cost of reading training batches from the memory map.

Synthetic photo folders of 5,000, 20,000 and 50,000 JPEGs (256 px, 10 classes) are each decoded at
224 px into the cache and trained on for one epoch of a small model in a fresh process
(memory_child.py); this process samples the child's ``RssAnon`` (anonymous memory: the pages of
the map are page cache, which the kernel can reclaim) every 10 ms. The model's own needs are the
same child on a 300-image folder. Then CIFAR-sized training throughput from the map against the
same images in memory, alternated in one run.

Run, with nothing else on the machine (about 10 minutes on 2 cores, 13 GB of disk under the
temporary folder): python -m pytest benchmarks/test_data_memory.py -q -s
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZES = (5_000, 20_000, 50_000)
SMALL = 300  # the folder whose run measures the model's own needs
ALLOWED_GB = 1.5  # above the model's own needs, whatever the size
CLASSES = 10
CHILD = Path(__file__).with_name("memory_child.py")


def photo(index: int) -> bytes:
    """A 256 px JPEG with structure at several scales (a smooth field, edges, noise), like a photo
    for the decoder, different for every index, tinted by its class."""
    rng = np.random.default_rng(index)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((256, 256), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-24, 25, (256, 256, 3))
    pixels[:, :, index % 3] += 40 * (index % CLASSES) // CLASSES
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    import io

    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def write_photos(root: Path, start: int, stop: int) -> None:
    for index in range(start, stop):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:06d}.jpg").write_bytes(photo(index))


def photo_folders(base: Path) -> dict:
    """The largest folder written once (on every core); the smaller ones are links to its first files."""
    everything = base / f"photos-{max(SIZES)}"
    step = 2_000
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_photos, [everything] * (max(SIZES) // step), range(0, max(SIZES), step),
                      range(step, max(SIZES) + step, step)))
    folders = {max(SIZES): everything}
    for size in (SMALL, *SIZES[:-1]):
        folder = base / f"photos-{size}"
        for index in range(size):
            name = Path(f"class{index % CLASSES}") / f"{index:06d}.jpg"
            (folder / name.parent).mkdir(parents=True, exist_ok=True)
            (folder / name).symlink_to(everything / name)
        folders[size] = folder
    return folders


def rss_anon_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measured_run(folder: Path, cache: Path) -> dict:
    """The child's JSON line with its peak RssAnon in MB, sampled from outside every 10 ms."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache)}
    child = subprocess.Popen([sys.executable, str(CHILD), str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def sample():
        while child.poll() is None:
            peak[0] = max(peak[0], rss_anon_kb(child.pid) or 0)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = child.communicate(timeout=3600)
    sampler.join()
    assert child.returncode == 0, out
    return {**json.loads(out.strip().splitlines()[-1]), "peak_anon_mb": peak[0] / 1024}


def test_peak_anonymous_memory_is_flat_in_the_data_size(tmp_path):
    folders = photo_folders(tmp_path)
    own = measured_run(folders[SMALL], tmp_path / "cache")
    print(f"\n{SMALL} images (the model's own needs): peak RssAnon {own['peak_anon_mb']:.0f} MB")
    peaks = {}
    for size in SIZES:
        seen = measured_run(folders[size], tmp_path / "cache")
        assert seen["mapped"] and seen["train_images"] > 0.7 * size
        peaks[size] = seen["peak_anon_mb"]
        print(f"{size} images at 224 px: peak RssAnon {seen['peak_anon_mb']:.0f} MB "
              f"(+{seen['peak_anon_mb'] - own['peak_anon_mb']:.0f} MB), decode {seen['decode_s']:.0f} s, "
              f"one epoch {seen['train_s']:.0f} s over {seen['train_images']} images")
    slope = (peaks[SIZES[-1]] - peaks[SIZES[0]]) / (SIZES[-1] - SIZES[0]) * 1024  # KB per image
    print(f"growth from {SIZES[0]} to {SIZES[-1]} images: {slope:.2f} KB per image "
          f"(a decoded 224 px image is {3 * 224 * 224 / 1024:.0f} KB)")
    for size, peak in peaks.items():
        assert peak - own["peak_anon_mb"] <= ALLOWED_GB * 1024, (size, peak)
    assert slope < 5, peaks  # flat: labels and indices grow with the data, images do not


@pytest.fixture
def cifar_like(tmp_path):
    """10,000 random 32 px images, once in memory and once memory-mapped from the cache."""
    from harness.bench import random_images
    from harness.data.cache import cached_images
    from harness.data.images import Images

    x, y = random_images(10_000)
    test_x, test_y = random_images(1_000, seed=1)
    source = tmp_path / "source.bin"
    source.write_bytes(b"the cache key's source")
    os.environ["HARNESS_CACHE_DIR"] = str(tmp_path / "cache")
    memory = Images([str(c) for c in range(CLASSES)], x, y, test_x, test_y)
    mapped = cached_images(source, "benchmark", 32, lambda files: memory)
    assert mapped.entry is not None and memory.entry is None
    return memory, mapped


def test_training_from_the_map_is_as_fast_as_from_memory(cifar_like):
    import torch

    from harness import plugin_registry
    from harness.bench import _quick_training
    from harness.data.splits import make_splits
    from harness.specs import Recipe
    from harness.train import Setup, Trainer, Watch

    spec = plugin_registry.installed().models["baseline_cnn"].spec
    recipe, stage, size = _quick_training(spec)
    one_epoch = Recipe(stages=[replace(stage, epochs=1, early_stopping=None, reduce_lr=None)],
                       augment=recipe.augment, eval_batch_size=recipe.eval_batch_size)
    splits = {name: make_splits(images, val_size=1_000, seed=0) for name, images in zip(("memory", "map"), cifar_like)}
    rates = {"memory": [], "map": []}
    for _ in range(3):
        for name in rates:  # alternated, so drift in the machine's speed hits both alike
            torch.manual_seed(0)
            trainer = Trainer(spec.build(CLASSES), splits[name], one_epoch, Setup(input_size=size, seed=0),
                              Watch(show_progress=False))
            result = trainer.fit()
            rates[name].append(result.train_images / result.train_time_s)
    memory, mapped = (float(np.median(rates[name])) for name in ("memory", "map"))
    print(f"\nbaseline_cnn training, 9,000 images of 32 px: in memory {memory:.0f} img/s, "
          f"memory-mapped {mapped:.0f} img/s, ratio {mapped / memory:.3f}")
    assert mapped / memory >= 0.95
