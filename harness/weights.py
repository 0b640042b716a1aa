"""Pretrained weights: found in a folder, shipped by a package, or downloaded by timm's hub; loaded
into the backbone with the classifier left out; their origin recorded (path and sha256, hub tag,
or scratch). When none can be had, the error names the file to put where."""
from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from harness.errors import HarnessError

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass
class Source:
    """Where a model's starting weights come from."""

    kind: str  # file | package | hub | scratch
    path: Path | None = None
    sha256: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        if self.kind == "scratch":
            return "scratch"
        if self.kind == "hub":
            return f"hub:{self.tag}"
        return f"{self.kind}:{Path(self.path).name} sha256:{self.sha256[:12]}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path) if self.path else None, "sha256": self.sha256,
                "tag": self.tag, "summary": self.describe()}


class MissingWeights(HarnessError):
    """No pretrained weights could be had for a model that needs them; ``file`` names what would
    give them."""

    def __init__(self, message: str, file: str):
        super().__init__(message)
        self.file = file

    @property
    def short(self) -> str:
        """The reason in a skipped row: no path of this machine in it, so results read the same anywhere."""
        return f"no ImageNet weights on this machine: {self.file} in --weights-dir DIR, or --no-pretrained"


def weights_dir(given: str | None) -> Path | None:
    folder = given or os.environ.get("HARNESS_WEIGHTS_DIR")
    return Path(folder).expanduser() if folder else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_file(arch: str, folder: Path | None) -> Path | None:
    """A file named ``<arch>.<anything><suffix>`` or ``<arch><suffix>`` in ``folder``."""
    if folder is None or not folder.is_dir():
        return None
    for path in sorted(folder.iterdir()):
        stem_ok = path.name.startswith((arch + ".", arch + "-"))
        if path.is_file() and stem_ok and path.name.endswith(SUFFIXES):
            return path
    return None


def resolve(spec, folder: Path | None, pretrained: bool = True, offline: bool = False) -> Source:
    """Where ``spec``'s weights come from, without loading them; MissingWeights if nowhere.
    ``offline`` looks only at what this machine has (the folder, a package, the hub's cache)."""
    if spec.weights is None or not pretrained:
        return Source("scratch")
    arch = spec.weights.arch
    found = find_file(arch, folder)
    if found:
        return Source("file", found, sha256(found))
    if spec.weights.locate:
        shipped = spec.weights.locate()
        if shipped and Path(shipped).is_file():
            return Source("package", Path(shipped), sha256(Path(shipped)))
    tag = spec.weights.hub_tag or arch
    cached = hub_download(tag, offline) if spec.weights.hint is None else None
    if cached:
        return Source("hub", cached, sha256(cached), tag)
    where = f"in {folder}" if folder else "in a folder passed as --weights-dir (or $HARNESS_WEIGHTS_DIR)"
    file = spec.weights.hint or f"{arch}.<tag>.safetensors|.pth"
    online = "" if spec.weights.hint else ", or run online for timm's hub download"
    raise MissingWeights(f"no ImageNet weights for {spec.name}: put {file} {where}{online}, "
                         "or pass --no-pretrained to train from scratch", file)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers at all; offline, huggingface_hub would retry for close to a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_download(tag: str, offline: bool = False) -> Path | None:
    """timm's weights for a pretrained tag from the Hugging Face Hub, through its local cache
    (``$HF_HUB_CACHE``) when offline (or asked to stay so); None when neither has them."""
    try:
        import timm
        from huggingface_hub import hf_hub_download
        from timm.models import get_pretrained_cfg
    except ImportError:
        return None
    config = get_pretrained_cfg(tag)
    if config is None or not config.hf_hub_id:
        return None
    offline = offline or not hub_reachable()
    for filename in ("model.safetensors", "pytorch_model.bin"):
        try:
            return Path(hf_hub_download(config.hf_hub_id, filename, cache_dir=os.environ.get("HF_HUB_CACHE"),
                                        local_files_only=offline, library_name="timm",
                                        library_version=timm.__version__))
        except Exception:  # noqa: BLE001 - not there (or not reachable): try the next file name
            continue
    return None


def read_state(path: Path) -> dict:
    """A state dict from a .safetensors file or a torch file (unpickling tensors only)."""
    import torch

    try:
        if path.name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise HarnessError(f"weights file '{path}' cannot be read ({type(exc).__name__}); "
                           "it is damaged or not a weights file: download it again") from None
    for key in ("state_dict", "model", "model_state"):  # common wrappers around a state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise HarnessError(f"weights file '{path}' holds no state dict")
    return state


def load_into(model, source: Source, spec) -> None:
    """Load ``source`` into the backbone of ``model`` (``model.net`` when wrapped) and start the new
    classifier at zero; a spec's own loader handles other formats."""
    if source.kind == "scratch":
        return
    net = getattr(model, "net", model)
    if spec.weights.load:
        spec.weights.load(net, source.path)
    else:
        load_state(net, read_state(source.path), spec.weights.arch, source.path)
    zero_head(model, spec.head)


def zero_head(model, head: str | None) -> None:
    """Zero the last layer of ``head``: the first logits are all zero, a uniform guess (loss ln of the
    class count) whatever the scale of the pretrained features. A randomly initialised head on
    features of ImageNet scale starts far from it (loss 6-15 for ten classes) and spends its first
    epochs undoing that."""
    import torch
    from torch import nn

    if not head:
        return
    layers = [m for m in model.get_submodule(head).modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not layers:
        return
    with torch.no_grad():
        layers[-1].weight.zero_()
        if layers[-1].bias is not None:
            layers[-1].bias.zero_()


def check(spec, source: Source) -> None:
    """Load ``source`` into a freshly built model now (the classifier is left out, so any class
    count does), so that a damaged file or one made for another architecture stops a run before
    any data is decoded."""
    if source.kind != "scratch":
        load_into(spec.build(2), source, spec)


def _classifier(net) -> str:
    return net.pretrained_cfg.get("classifier", "") if hasattr(net, "pretrained_cfg") else ""


def load_state(net, state: dict, arch: str, path, classifier: str | None = None) -> None:
    """Load every tensor but the classifier's (``classifier``: its module name in ``net``, by default
    from timm's config); a file made for another architecture is a one-line error."""
    classifier = _classifier(net) if classifier is None else classifier
    own = net.state_dict()
    is_classifier = lambda key: classifier and (key == classifier or key.startswith(classifier + "."))  # noqa: E731
    wanted = {k for k in own if not is_classifier(k)}
    given = {k for k in state if not is_classifier(k)}
    missing, unexpected = sorted(wanted - given), sorted(given - wanted)
    wrong_shape = sorted(k for k in wanted & given if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong_shape:
        example = (missing or unexpected or wrong_shape)[0]
        raise HarnessError(
            f"weights file '{path}' does not fit {arch}: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong_shape)} wrongly shaped tensors (e.g. '{example}'); use a file made for {arch}"
        )
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)


def rename_by_order(state: dict, net, arch: str, path) -> dict:
    """Give a state dict that lists the same tensors in the same order under other names (another
    implementation of the architecture) the names of ``net``'s own state dict."""
    own = net.state_dict()
    classifier = _classifier(net)
    if len(state) != len(own):
        raise HarnessError(f"weights file '{path}' has {len(state)} tensors, {arch} has {len(own)}; "
                           f"use a file made for {arch}")
    renamed = {}
    for (theirs, tensor), (mine, target) in zip(state.items(), own.items()):
        in_classifier = classifier and mine.startswith(classifier)
        if tuple(tensor.shape) != tuple(target.shape) and not in_classifier:
            raise HarnessError(f"weights file '{path}': tensor '{theirs}' {tuple(tensor.shape)} does not match "
                               f"'{mine}' {tuple(target.shape)} of {arch}; use a file made for {arch}")
        renamed[mine] = tensor
    return renamed
