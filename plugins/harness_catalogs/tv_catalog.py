"""``tv:<name>``: torchvision's classification models (``torchvision.models.list_models``), with
the ImageNet normalisation and crop size of their default weights; weights from the file
torchvision downloads (``mobilenet_v3_small-047dcff4.pth``) in the weights folder or in torch's hub
cache (``$TORCH_HOME/hub/checkpoints``, where torchvision keeps its downloads)."""
from __future__ import annotations

import fnmatch
from pathlib import Path
from urllib.parse import urlparse

from harness import ModelSpec, Weights
from harness_catalogs.common import catalog_spec, has_depthwise, profile_sizes, unknown_architecture

DESCRIPTION = "torchvision's classification models (torchvision.models.list_models()), ImageNet weights"
NO_AUX = {"inception_v3", "googlenet"}  # built without auxiliary heads: plain logits in training too
FIXED_SIZE = ("vit_",)  # torchvision's ViTs are built for one image size


def names(pattern: str = "*") -> list:
    from torchvision import models

    return [n for n in models.list_models(module=models) if fnmatch.fnmatchcase(n, pattern or "*")]


def spec(name: str):
    from torchvision import models

    from harness.toolkit import empty_weights

    if name not in models.list_models(module=models):
        raise unknown_architecture("tv", name, models.list_models(module=models))
    default = models.get_model_weights(name).DEFAULT
    transforms = default.transforms()
    native = int(transforms.crop_size[0])
    build = _builder(name, list(transforms.mean), list(transforms.std),
                     {"image_size": native} if name.startswith(FIXED_SIZE) else {})
    with empty_weights():  # the head's name and the layer kinds, without allocating the weights
        net = build(7).net
    head = _head(net, 7)
    file = Path(urlparse(default.url).path).name
    weights = Weights(arch=file.rsplit(".", 1)[0], locate=lambda: _hub_cache(file), load=_loader(head),
                      hint=f"{file} (torchvision's download of {default})")
    return catalog_spec(ModelSpec(
        name=f"tv:{name}", build=build, head=f"net.{head}", weights=weights,
        input_size=profile_sizes(native, 75 if name == "inception_v3" else 0, name.startswith(FIXED_SIZE)),
        description=f"torchvision {name} ({default})",
    ), depthwise=has_depthwise(net))


def _builder(name: str, mean, std, size: dict):
    """``size``: a ViT is built for its default weights' image size (vit_h_14's are 518 px, not 224)."""
    def build(num_classes):
        from torchvision import models

        from harness.toolkit import Normalized

        extra = {"aux_logits": False, "init_weights": True} if name in NO_AUX else {}
        return Normalized(models.get_model(name, weights=None, num_classes=num_classes, **extra, **size), mean, std)

    return build


def _head(net, classes: int) -> str:
    """The name of the last layer that outputs ``classes`` values: the classifier."""
    from torch import nn

    found = [n for n, m in net.named_modules()
             if (isinstance(m, nn.Linear) and m.out_features == classes)
             or (isinstance(m, nn.Conv2d) and m.out_channels == classes)]
    return found[-1]


def _hub_cache(file: str):
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / file
    return path if path.is_file() else None


def _loader(head: str):
    def load(net, path):
        from harness.toolkit import load_state, read_state

        load_state(net, read_state(path), type(net).__name__, path, classifier=head)

    return load
