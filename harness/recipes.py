"""Recipes that several model plugins share, as data: the study's transfer learning (a frozen base
and a new head, then fine-tuning the whole network) with the profile settings measured for it, and
a from-scratch recipe for an architecture that has no pretrained weights. Part of the plugin API."""
from __future__ import annotations

from harness.specs import Augment, EarlyStopping, Recipe, ReduceLROnPlateau, Stage

TRANSFER_AUGMENT = Augment(rotation=10, flip=True, zoom=0.1, shift=0.1)  # the study's


def two_stages(frozen_epochs=20, finetune_epochs=30, finetune="all", finetune_lr=1e-4):
    """The study's recipe: early stopping (patience 8) and ReduceLROnPlateau (patience 4) on val_acc."""
    return [
        Stage(name="frozen", trainable="head", optimizer="adam", lr=1e-3, epochs=frozen_epochs, batch_size=64,
              early_stopping=EarlyStopping(patience=8),
              reduce_lr=ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-6)),
        Stage(name="finetune", trainable=finetune, optimizer="adam", lr=finetune_lr, epochs=finetune_epochs,
              batch_size=64, early_stopping=EarlyStopping(patience=8),
              reduce_lr=ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-7)),
    ]


# On a CPU budget of about an hour the fine-tune gets a fixed number of epochs, so a cosine decay
# (after one warm-up epoch, which spares the pretrained base the new head's first large gradients)
# beats waiting for plateaus (docs/recipes.md, "The transfer models' fine-tune", says what was measured).
QUICK_FINETUNE = {"stages.finetune.reduce_lr": None, "stages.finetune.schedule": "cosine",
                  "stages.finetune.warmup_epochs": 1, "stages.finetune.lr": 2e-4,
                  "stages.finetune.label_smoothing": 0.1, "tta_flip": True}

# full, sized for a GPU, where the study's batch 64 is launch-bound and overfits early (docs/recipes.md):
# batch 256 (a quarter of the steps), Adam 1e-3 (5e-4 at batch 64 on the CPU, times sqrt(4)),
# and quick's one warm-up epoch, cosine decay over a fixed budget, label smoothing 0.1, flip TTA.
# The frozen stage keeps the study's schedule: it trains a head on cached features in seconds.
FULL_FINETUNE = {**QUICK_FINETUNE, "stages.finetune.batch_size": 256, "stages.finetune.lr": 1e-3,
                 "stages.finetune.epochs": 20}


def transfer_recipe() -> tuple[Recipe, dict]:
    """The transfer recipe and its per-profile settings for an architecture nobody has tuned: the
    study's two stages, quick's fixed 8 + 9 epoch budget with the cosine fine-tune, full's GPU sizing."""
    quick = {"stages.frozen.epochs": 8, "stages.finetune.epochs": 9, **QUICK_FINETUNE}
    return Recipe(stages=two_stages(), augment=TRANSFER_AUGMENT), {"quick": quick, "full": FULL_FINETUNE}


def scratch_recipe() -> tuple[Recipe, dict]:
    """Training every layer from random weights: AdamW with a warm-up and cosine decay over a fixed
    budget, label smoothing, flips and whole-pixel shifts (no blur at small sizes), flip TTA."""
    stage = Stage(name="train", trainable="all", optimizer="adamw", lr=2e-3, weight_decay=0.05, epochs=30,
                  batch_size=128, label_smoothing=0.1, schedule="cosine", warmup_epochs=1, early_stopping=None)
    recipe = Recipe(stages=[stage], augment=Augment(flip=True, translate=2), tta_flip=True)
    return recipe, {"quick": {"epochs": 15}}
