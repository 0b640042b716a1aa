"""``timm:<architecture>[.<tag>]``: any of timm's models, normalised as its pretrained config says;
weights from ``<architecture>.<tag>.safetensors`` (or ``.pth``) in the weights folder, or timm's hub."""
from __future__ import annotations

from harness import ModelSpec, Weights
from harness_catalogs.common import catalog_spec, has_depthwise, profile_sizes, unknown_architecture

DESCRIPTION = "every architecture timm builds (timm.list_models()), ImageNet weights where timm has them"


def names(pattern: str = "*") -> list:
    import timm

    return timm.list_models(pattern or "*")


def spec(arch: str):
    import timm
    from timm.models import get_pretrained_cfg, split_model_name_tag

    from harness.toolkit import empty_weights

    base, tag = split_model_name_tag(arch)
    if not timm.is_model(base):
        raise unknown_architecture("timm", arch, timm.list_models())
    config = get_pretrained_cfg(arch if tag else base)
    if tag and config is None:
        raise unknown_architecture("timm", arch, timm.list_pretrained(f"{base}.*"))
    with empty_weights():  # the head's name and the layer kinds, without allocating the weights
        net = timm.create_model(base, pretrained=False, num_classes=2)
    classifier = net.pretrained_cfg.get("classifier") or "head"
    classifier = classifier[0] if isinstance(classifier, (tuple, list)) else classifier
    native = int((config.input_size if config else net.pretrained_cfg.get("input_size", (3, 224, 224)))[-1])
    smallest = int((getattr(config, "min_input_size", None) or (3, 0, 0))[-1])
    weights = None
    if config is not None and (config.hf_hub_id or config.url):
        weights = Weights(arch=arch, hub_tag=f"{base}.{config.tag}" if config.tag else base)
    return catalog_spec(ModelSpec(
        name=f"timm:{arch}", build=_builder(base), head=f"net.{classifier}", weights=weights,
        input_size=profile_sizes(native, smallest, fixed=bool(getattr(config, "fixed_input_size", False))),
        description=f"timm {arch}" + (f" ({config.tag} weights)" if weights else " (no pretrained weights)"),
    ), depthwise=has_depthwise(net))


def _builder(base: str):
    def build(num_classes):
        from harness.toolkit import timm_model

        return timm_model(base, num_classes)

    return build
