"""Facts measured on a freshly built model before it trains: its output width and its MACs."""
from __future__ import annotations

import torch


def count_macs(model, input_size: int) -> int | None:
    """Multiply-accumulates of one forward pass on one image (torch's FLOP counter / 2); None, with a
    warning, for a model whose operations the counter cannot trace (any other error is a bug and raised)."""
    import sys

    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, input_size, input_size))
        return int(counter.get_total_flops() // 2)
    except (RuntimeError, NotImplementedError) as exc:  # an operation the counter cannot dispatch
        print(f"harness: warning: MACs not counted for {type(model).__name__} ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''})", file=sys.stderr)
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
