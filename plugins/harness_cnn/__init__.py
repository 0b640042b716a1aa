"""Built-in CNN models trained from scratch. Facts only: how to build each model and its recipe."""
from harness import (Augment, Choice, EarlyStopping, ModelSpec, Range, Recipe, ReduceLROnPlateau, Stage, default_space,
                     hookimpl)


def _baseline(num_classes):
    from harness_cnn.models import BaselineCNN

    return BaselineCNN(num_classes)


def _deep(num_classes):
    from harness_cnn.models import DeepCNN

    return DeepCNN(num_classes)


def _whiten(model, images):
    from harness_cnn.models import fit_whitening

    fit_whitening(model, images)


# quick: a fixed one-cycle budget of 18 epochs in place of the study's plateaus, and less dropout for a
# network that underfits there (docs/recipes.md, "The CNNs' short budgets", says what was measured)
QUICK_BASELINE = {
    "epochs": 18, "stages.train.optimizer": "adam", "stages.train.lr": 3e-3, "stages.train.batch_size": 128,
    "stages.train.schedule": "onecycle", "stages.train.reduce_lr": None, "stages.train.label_smoothing": 0.1,
    "stages.train.lookahead": 0.95, "augment.rotation": 0, "augment.zoom": 0, "augment.shift": 0,
    "augment.translate": 2, "tta_flip": True, "tta_translate": 1, "dropout": 0.25,
}


# smoke: budgets that leave both CNNs above chance on 1,000 training images (docs/recipes.md)
SMOKE_BASELINE = {"epochs": 12, "stages.train.schedule": "onecycle", "stages.train.reduce_lr": None,
                  "stages.train.lr": 3e-3, "stages.train.batch_size": 32, "stages.train.label_smoothing": 0.1,
                  "augment.rotation": 0, "augment.zoom": 0, "augment.shift": 0, "augment.translate": 2,
                  "tta_flip": True}
SMOKE_DEEP = {"epochs": 4, "stages.train.batch_size": 128, "stages.train.lr": 0.2, "stages.train.warmup_epochs": 1}


def baseline_space(config: dict) -> dict:
    """What harness tune varies for the study's CNN: besides the learning rate, weight decay and
    label smoothing, the dense layer's dropout and the whole-pixel translation."""
    return {**default_space(config), "dropout": Range(0.0, 0.6), "augment.translate": Choice((0, 2, 4))}


def deep_space(config: dict) -> dict:
    """airbench's knobs: its label smoothing (0.2) inside the range, SGD's momentum, and the batch (a
    short budget may want more steps than batches of 1,024 give)."""
    batches = tuple(sorted({256, 512, config["stages"][0]["batch_size"]}))
    return {**default_space(config), "label_smoothing": Range(0.0, 0.4), "momentum": Range(0.75, 0.95),
            "batch_size": Choice(batches)}


STUDY = "the original study"  # the CNN-vs-transfer study this zoo reproduces (README)


def baseline_cnn() -> ModelSpec:
    """The study's CNN, with its recipe and the measured profile settings."""
    return ModelSpec(
        name="baseline_cnn", family="cnn", input_size=32, build=_baseline,
        description="the study's CNN: 3x (conv3x3 + ReLU + maxpool) 32/64/128, dense 256 + dropout",
        recipe=Recipe(
            stages=[
                Stage(
                    name="train",
                    optimizer="adam",
                    lr=1e-3,
                    epochs=100,
                    batch_size=64,
                    early_stopping=EarlyStopping(patience=8),
                    reduce_lr=ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-5),
                )
            ],
            augment=Augment(rotation=10, flip=True, zoom=0.05, shift=0.1),
        ),
        # full: the study's recipe. quick: the same network on a 5-minute CPU budget, where a
        # fixed one-cycle schedule, whole-pixel translation (no resampling blur at 32 px),
        # label smoothing, lookahead and test-time flips/shifts beat waiting for plateaus
        profiles={"quick": QUICK_BASELINE, "smoke": SMOKE_BASELINE},
        search_space=baseline_space,
        published={None: 0.6900}, published_by=STUDY,
    )


def deep_cnn() -> ModelSpec:
    """airbench94's network and training."""
    return ModelSpec(
        name="deep_cnn", family="cnn", input_size=32, build=_deep, init_from_data=_whiten,
        description="airbench94's CNN: 2x2 whitening stem, 3 conv groups (64/256/256) with BN+GELU, scaled linear head",
        # airbench94's training, in mean-loss terms: its lr 11.5 and weight decay 0.0153 per
        # 1024 summed examples are lr 1.5 and weight decay 1.33e-3 here; batch-norm biases 64x
        recipe=Recipe(
            stages=[
                Stage(
                    name="train",
                    optimizer="sgd",
                    lr=1.5,
                    momentum=0.85,
                    nesterov=True,
                    weight_decay=1.33e-3,
                    epochs=15,
                    batch_size=1024,
                    label_smoothing=0.2,
                    schedule="triangle",
                    warmup_epochs=3.45,  # 23% of the steps
                    norm_lr_scale=64,
                    lookahead=0.95,
                    early_stopping=EarlyStopping(patience=8),
                )
            ],
            # whole-pixel translation, not a resampled shift: on a GPU probe (45k images, 10
            # epochs) val_acc went from 0.865 with shift=0.125 to 0.885 with translate=2
            augment=Augment(flip=True, translate=2),
            tta_flip=True,
            tta_translate=1,
        ),
        profiles={"full": {"epochs": 40, "stages.train.warmup_epochs": 9}, "smoke": SMOKE_DEEP},
        search_space=deep_space,
        published={None: 0.7653}, published_by=STUDY,
    )


@hookimpl
def register_models(register):
    register(baseline_cnn())
    register(deep_cnn())
