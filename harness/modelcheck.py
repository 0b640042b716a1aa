"""Facts measured on a freshly built model before it trains: its output width and its MACs."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def empty_weights():
    """Build models with no memory for their weights: each parameter and buffer moves to the meta
    device as it is registered, while the constructor's own arithmetic stays on real tensors (under
    ``torch.device("meta")`` torchvision's RegNets fail: they compute their widths with ``.tolist()``)."""
    from torch import nn

    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(module, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer(module, name, tensor, persistent=True):
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def count_macs(model, input_size: int) -> int | None:
    """Multiply-accumulates of one forward pass on one image (torch's FLOP counter / 2); None, with a
    warning, for a model whose operations the counter cannot trace (any other error is a bug and raised)."""
    by_module = macs_by_module(model, input_size)
    return None if by_module is None else by_module[""]


def macs_by_module(model, input_size: int) -> dict | None:
    """One image's forward MACs for the whole model (key ``""``) and for each submodule that ran
    (keys are module names, ``head``, ``features.3``); None where ``count_macs`` says."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, input_size, input_size))
        root = type(model).__name__
        by_module = {"": int(counter.get_total_flops() // 2)}
        for name, counts in counter.get_flop_counts().items():
            if name.startswith(root + "."):
                by_module[name[len(root) + 1 :]] = int(sum(counts.values()) // 2)
        return by_module
    except (RuntimeError, NotImplementedError) as exc:  # an operation the counter cannot dispatch
        from harness.log import warn

        warn(f"MACs not counted for {type(model).__name__} ({type(exc).__name__}: "
             f"{str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    finally:
        model.train(was_training)


def check_output_width(model, input_size: int, num_classes: int) -> None:
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, input_size, input_size))
    model.train(was_training)
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"the model returns shape {tuple(out.shape)[1:]} per batch, expected ({num_classes},) logits")
