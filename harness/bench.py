"""Throughput measurements shared by ``benchmarks/`` (pytest-benchmark): the harness's training
data pipeline against torchvision's PIL ``DataLoader`` doing the same augmentation."""
from __future__ import annotations

import time

import numpy as np
import torch

from harness.data.augment import augment_batch
from harness.evaluate import model_input
from harness.specs import Augment

STUDY_AUGMENT = Augment(rotation=15, flip=True, zoom=0.1, shift=0.1)


def random_images(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), rng.integers(0, 10, n)


def harness_epoch(x: torch.Tensor, y: torch.Tensor, augment: Augment, batch_size: int, generator) -> int:
    """One epoch of what the trainer does before the forward pass: shuffle, index, scale, augment."""
    order = torch.randperm(len(y), generator=generator)
    seen = 0
    for start in range(0, len(y), batch_size):
        index = order[start : start + batch_size]
        batch = augment_batch(model_input(x[index], x.shape[-1]), augment, generator)
        seen += batch.shape[0]
    return seen


def torchvision_loader(images: np.ndarray, labels: np.ndarray, augment: Augment, batch_size: int):
    """The usual torchvision way: a dataset of PIL images with per-image transforms."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    pipeline = transforms.Compose([
        transforms.RandomRotation(augment.rotation),
        transforms.RandomHorizontalFlip(),
        transforms.RandomAffine(0, translate=(augment.shift, augment.shift), scale=(1 - augment.zoom, 1 + augment.zoom)),
        transforms.ToTensor(),
    ])
    pil = [Image.fromarray(image.transpose(1, 2, 0)) for image in images]

    class PilDataset(Dataset):
        def __len__(self):
            return len(pil)

        def __getitem__(self, i):
            return pipeline(pil[i]), int(labels[i])

    return DataLoader(PilDataset(), batch_size=batch_size, shuffle=True, num_workers=0)


def images_per_second(run_epoch, repeats: int = 3) -> float:
    """Median images/s over ``repeats`` epochs, after one warm-up epoch."""
    run_epoch()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        seen = run_epoch()
        rates.append(seen / (time.perf_counter() - started))
    return float(np.median(rates))


def data_pipeline_speedup(n: int = 4096, batch_size: int = 128, augment: Augment = STUDY_AUGMENT,
                          repeats: int = 3) -> dict:
    """Images/s of the harness pipeline and of the torchvision baseline, measured in one run."""
    images, labels = random_images(n)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    ours = images_per_second(lambda: harness_epoch(x, y, augment, batch_size, generator), repeats)
    loader = torchvision_loader(images, labels, augment, batch_size)
    theirs = images_per_second(lambda: sum(len(batch[1]) for batch in loader), repeats)
    return {"harness_img_s": ours, "torchvision_img_s": theirs, "speedup_vs_torchvision": ours / theirs}


def frozen_stage_seconds(spec, *, n: int, input_size: int, epochs: int, feature_cache: bool) -> float:
    """Wall time of a frozen stage (head only) of ``epochs`` epochs on ``n`` random 32 px images,
    through the harness trainer, with or without the frozen-feature cache."""
    from harness.data import Splits
    from harness.freezing import Parts
    from harness.specs import Recipe, Stage
    from harness.train import Trainer

    images, labels = random_images(n)
    val_x, val_y = random_images(max(n // 10, 10), seed=1)
    splits = Splits([str(i) for i in range(10)], images, labels, val_x, val_y, val_x, val_y)
    torch.manual_seed(0)
    model = spec.build(10)
    stage = Stage(name="frozen", trainable="head", epochs=epochs, batch_size=64, early_stopping=None,
                  feature_cache=feature_cache)
    trainer = Trainer(model, splits, Recipe(stages=[stage]), input_size=input_size, seed=0,
                      parts=Parts.of(model, spec.head, spec.blocks), show_progress=False)
    started = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - started
