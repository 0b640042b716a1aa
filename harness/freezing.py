"""Which parameters train in a stage. Freezing is real: frozen parameters get no gradient, are
left out of the optimizer, and the frozen modules stay in eval mode so batch-norm running
statistics do not drift (Keras's behaviour for a frozen base)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError

TRAINABLE = re.compile(r"^(all|head|last:(\d+))$")


@dataclass
class Parts:
    """A model's head and the ordered blocks of its base, as module names (a block may be a list
    of names: the layers of one VGG stage, say)."""

    head: str
    blocks: list

    @classmethod
    def of(cls, model, head: str = "head", blocks=None) -> "Parts":
        if callable(blocks):
            blocks = blocks(model)
        if blocks is None:
            blocks = [name for name, _ in model.named_children() if name != head]
        return cls(head, list(blocks))


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def trainable_prefixes(parts: Parts, trainable: str):
    """Module names whose parameters train; None means every parameter."""
    match = TRAINABLE.match(trainable)
    if not match:
        raise HarnessError(f"trainable='{trainable}': use all, head, or last:N")
    if trainable == "all":
        return None
    count = int(match.group(2) or 0)
    if count > len(parts.blocks):
        raise HarnessError(f"trainable='{trainable}': the base has only {len(parts.blocks)} blocks")
    chosen = parts.blocks[len(parts.blocks) - count :] if count else []
    return [parts.head] + [name for block in chosen for name in ([block] if isinstance(block, str) else block)]


def fixed_parameters(model) -> set:
    """Parameters the model itself keeps out of training (``requires_grad`` off when built, like
    airbench's whitening filters and batch-norm scales): no stage turns them on."""
    return {id(p) for p in model.parameters() if not p.requires_grad}


def freeze(model, parts: Parts, trainable: str, fixed: set = frozenset()) -> list:
    """Set ``requires_grad`` for the stage, leaving ``fixed`` parameters off; returns the frozen
    modules (to keep in eval mode)."""
    prefixes = trainable_prefixes(parts, trainable)
    if prefixes is None:
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) not in fixed)
        return []
    names = dict(model.named_modules())
    missing = [p for p in prefixes if p not in names]
    if missing:
        raise HarnessError(f"the model has no module named {missing[0]!r} (head or block of its spec)")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(id(parameter) not in fixed and any(_under(name, p) for p in prefixes))
    # the largest modules none of whose parameters or buffers is under a trainable prefix
    frozen = []
    for name, module in model.named_modules():
        if not name or any(_under(name, f) for f in (n for n, _ in frozen)):
            continue
        if not any(_under(name, p) or _under(p, name) for p in prefixes):
            frozen.append((name, module))
    return [module for _, module in frozen]


def train_mode(model, frozen: list) -> None:
    """``model.train()``, except the frozen parts, which stay in eval mode."""
    model.train()
    for module in frozen:
        module.eval()
