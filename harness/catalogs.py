"""``harness list --catalog NAME``: the architectures a catalog plugin answers for, each with its
parameters, its MACs at its input size and whether this machine has its weights, counted on
PyTorch's meta device (no memory for weights, no computation)."""
from __future__ import annotations

from harness.errors import unknown


def entries(registry, catalog: str, pattern: str = "*", weights_dir=None) -> list:
    """One dict per architecture of ``catalog`` matching ``pattern`` (shell-style)."""
    import torch

    from harness import weights
    from harness.modelcheck import count_macs

    if catalog not in registry.catalogs:
        raise unknown("catalog", catalog, registry.catalogs, "see 'harness list'")
    folder = weights.weights_dir(weights_dir)
    out = []
    for arch in registry.catalogs[catalog].spec.names(pattern):
        registered = registry.model(f"{catalog}:{arch}")
        spec = registered.spec
        size = spec.size_for("full")
        with torch.device("meta"):
            model = spec.build(10)
            macs = count_macs(model, size)
        try:
            source = weights.resolve(spec, folder, offline=True).kind if spec.weights else "none"
        except weights.MissingWeights:
            source = "not here"
        out.append({"name": spec.name, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                    "input_size": size, "gmacs": round(macs / 1e9, 3) if macs is not None else None,
                    "weights": source, "plugin": registered.plugin})
    return out
