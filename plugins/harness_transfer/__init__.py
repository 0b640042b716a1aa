"""Built-in transfer-learning models: timm backbones pretrained on ImageNet, a new head, and the
study's two stages: ``frozen`` (base frozen, head trained on cached features) then ``finetune``
(the whole network at a lower learning rate). Facts only; the harness owns the mechanism."""
from harness import ModelSpec, Recipe, Weights, hookimpl
from harness.recipes import FULL_FINETUNE, QUICK_FINETUNE, TRANSFER_AUGMENT, two_stages


# Per model, on top of QUICK_FINETUNE. MobileNetV3-Small: at 2e-4 val_acc was still rising at the
# end of 11 epochs (0.9096, 0.9108, 0.9156 over epochs 8-10) and an hour of a 2-core AVX2 CPU buys
# 9 epochs at 160 px (the first took 359 s there), so the cosine starts higher (5e-4, which also
# did better than 2e-4 for EfficientNet-Lite0 on a short budget)
QUICK_PER_MODEL = {"mobilenetv3": {"stages.finetune.lr": 5e-4}}


def _builder(arch, **kwargs):
    def build(num_classes):
        from harness.toolkit import timm_model

        return timm_model(arch, num_classes, **kwargs)

    return build


def _numbered(prefix, count):
    return [f"{prefix}.{i}" for i in range(count)]


def mobilenet_blocks(model):
    return [["net.conv_stem", "net.bn1"], *_numbered("net.blocks", len(model.net.blocks)),
            ["net.conv_head", "net.norm_head"]]


def vgg_blocks(model):
    """VGG's five conv stages (each ends with a max-pool), then its fc6/fc7 ``pre_logits``."""
    stages, current = [], []
    for name, layer in model.net.features.named_children():
        current.append(f"net.features.{name}")
        if type(layer).__name__ == "MaxPool2d":
            stages.append(current)
            current = []
    return stages + ([current] if current else []) + ["net.pre_logits"]


RESNET_BLOCKS = [["net.conv1", "net.bn1"], "net.layer1", "net.layer2", "net.layer3", "net.layer4"]
INCEPTION_BLOCKS = [
    ["net.Conv2d_1a_3x3", "net.Conv2d_2a_3x3", "net.Conv2d_2b_3x3"], ["net.Conv2d_3b_1x1", "net.Conv2d_4a_3x3"],
    "net.Mixed_5b", "net.Mixed_5c", "net.Mixed_5d", "net.Mixed_6a", "net.Mixed_6b", "net.Mixed_6c",
    "net.Mixed_6d", "net.Mixed_6e", "net.Mixed_7a", "net.Mixed_7b", "net.Mixed_7c",
]

# the test accuracies the original study published (README), which the report sets beside these
PUBLISHED = {"mobilenetv3": {"published": {"frozen": 0.9084, "finetune": 0.9518},
                             "published_by": "the original study"}}

MODELS = [
    # name, timm arch, hub tag, head, blocks, input size per profile, quick epoch budgets
    ("mobilenetv3", "tf_mobilenetv3_small_100", "tf_mobilenetv3_small_100.in1k", "net.classifier",
     mobilenet_blocks, {"smoke": 64, "quick": 160, "full": 224}, (8, 9),
     "MobileNetV3-Small 1.0 (timm tf_mobilenetv3_small_100), ImageNet weights"),
    ("mobilenetv3_large", "mobilenetv3_large_100", "mobilenetv3_large_100.ra_in1k", "net.classifier",
     mobilenet_blocks, {"smoke": 64, "quick": 160, "full": 224}, (8, 12),
     "MobileNetV3-Large 1.0 (timm mobilenetv3_large_100), weights from the hub"),
    ("resnet50", "resnet50", "resnet50.a1_in1k", "net.fc", RESNET_BLOCKS,
     {"smoke": 32, "quick": 64, "full": 224}, (8, 10), "ResNet-50 (timm resnet50)"),
    ("vgg16", "vgg16", "vgg16.tv_in1k", "net.head.fc", vgg_blocks,
     {"smoke": 32, "quick": 32, "full": 224}, (8, 10), "VGG-16 (timm vgg16)"),
    # InceptionV3 needs at least 75 px; timm builds it without auxiliary logits, so the model
    # returns plain logits in training too (the aux head would only add a loss term)
    ("inception_v3", "inception_v3", "inception_v3.tv_in1k", "net.fc", INCEPTION_BLOCKS,
     {"smoke": 75, "quick": 75, "full": 299}, (8, 10), "Inception-v3 (timm inception_v3), min 75 px"),
]


@hookimpl
def register_models(register):
    for name, arch, tag, head, blocks, sizes, (frozen_quick, finetune_quick), description in MODELS:
        register(
            ModelSpec(
                name=name,
                family="transfer",
                input_size=sizes,
                build=_builder(arch),
                head=head,
                blocks=blocks,
                weights=Weights(arch=arch, hub_tag=tag),
                recipe=Recipe(stages=two_stages(), augment=TRANSFER_AUGMENT),
                profiles={"quick": {"stages.frozen.epochs": frozen_quick, "stages.finetune.epochs": finetune_quick,
                                    **QUICK_FINETUNE, **QUICK_PER_MODEL.get(name, {})},
                          "full": FULL_FINETUNE},
                description=description,
                # depthwise convolutions train slower in bf16 on a CPU (docs/performance.md)
                cpu_bf16=("eval",) if name.startswith("mobilenetv3") else ("train", "eval"),
                **PUBLISHED.get(name, {}),
            )
        )
