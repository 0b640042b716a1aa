"""One measured process of test_data_memory.py: decode an image folder at 224 px through the
imagefolder dataset (into the cache, or mapped from it), split it, train a small model for one epoch
over the whole training split and predict the test split, as ``harness run`` does. Prints one JSON
line with what it saw. Usage: python memory_child.py FOLDER"""
from __future__ import annotations

import json
import sys
import time

import torch
from torch import nn

from harness.data.splits import make_splits
from harness.evaluate import predict_logits
from harness.specs import Augment, Recipe, Stage
from harness.train import Setup, Trainer, Watch
from harness_datasets import load_imagefolder

SIZE = 224


def small_model(classes: int) -> nn.Module:
    """A few hundred thousand MACs per 224 px image: the data, not the model, is measured."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 8, stride=8), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes),
    )


def main(folder: str) -> None:
    torch.manual_seed(0)
    started = time.perf_counter()
    images = load_imagefolder(folder, SIZE)
    decoded = time.perf_counter() - started
    splits = make_splits(images, val_size=None, seed=0)
    model = small_model(len(splits.classes))
    stage = Stage(name="train", optimizer="adam", lr=1e-3, epochs=1, batch_size=128, early_stopping=None)
    recipe = Recipe(stages=[stage], augment=Augment(flip=True), eval_batch_size=256)
    started = time.perf_counter()
    result = Trainer(model, splits, recipe, Setup(input_size=SIZE, seed=0), Watch(show_progress=False)).fit()
    trained = time.perf_counter() - started
    logits = predict_logits(model, torch.from_numpy(splits.test_x), input_size=SIZE, batch_size=256)
    print(json.dumps({"images": len(images.train_y) + len(images.test_y), "mapped": images.entry is not None,
                      "decode_s": decoded, "train_s": trained, "train_images": result.train_images,
                      "val_acc": result.history[-1]["val_acc"], "test_predicted": len(logits)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
