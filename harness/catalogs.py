"""``harness list --catalog NAME``: the architectures a catalog plugin answers for, each with its
parameters, its MACs at its input size and whether this machine has its weights, counted on
PyTorch's meta device (no memory for weights, no computation); a listing of more than
``DETAILED_AT_MOST`` names gives the names alone unless asked for the counts."""
from __future__ import annotations

from harness.errors import one_line, unknown


# architectures counted in one listing unless asked (--details): each is built on the meta device,
# about 0.65 s for a timm model on 2 CPU cores, so timm's 1,371 would take a quarter of an hour
DETAILED_AT_MOST = 100


def entries(registry, catalog: str, pattern: str = "*", weights_dir=None, details: bool | None = None) -> list:
    """One dict per architecture of ``catalog`` matching ``pattern`` (shell-style): its name and
    plugin, and with ``details`` (default: when at most ``DETAILED_AT_MOST`` match) its parameters,
    input size, GMACs and where its weights are."""
    if catalog not in registry.catalogs:
        raise unknown("catalog", catalog, registry.catalogs, "see 'harness list'")
    names = list(registry.catalogs[catalog].spec.names(pattern))
    if not (len(names) <= DETAILED_AT_MOST if details is None else details):
        return [{"name": f"{catalog}:{arch}", "plugin": registry.catalogs[catalog].plugin} for arch in names]
    return [_described_or_why(registry, f"{catalog}:{arch}", weights_dir) for arch in names]


def _described_or_why(registry, name: str, weights_dir) -> dict:
    """``described``, or the one-line reason a name could not be built: one architecture a library
    cannot build must not take the listing down."""
    try:
        return described(registry, name, weights_dir)
    except Exception as exc:  # noqa: BLE001 - whatever the library raised, shown on that name's row
        return {"name": name, "plugin": registry.catalogs[name.split(":", 1)[0]].plugin, "error": one_line(exc)}


def described(registry, name: str, weights_dir=None) -> dict:
    """A catalog model's listing row: parameters and MACs counted on the meta device, its weights."""
    import torch

    from harness import weights
    from harness.modelcheck import count_macs, empty_weights

    folder = weights.weights_dir(weights_dir)
    registered = registry.model(name)
    spec = registered.spec
    size = spec.size_for("full")
    with empty_weights():
        model = spec.build(10)
    with torch.device("meta"):  # the counting pass on the meta device too: shapes only
        macs = count_macs(model, size)
    try:
        source = weights.resolve(spec, folder, offline=True).kind if spec.weights else "none"
    except weights.MissingWeights:
        source = "not here"
    return {"name": spec.name, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "input_size": size, "gmacs": round(macs / 1e9, 3) if macs is not None else None,
            "weights": source, "plugin": registered.plugin}
