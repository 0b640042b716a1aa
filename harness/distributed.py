"""Data-parallel training on PyTorch's own engine: ``torchrun --nproc-per-node N -m harness run``
(or ``harness run --nproc N``) starts N processes; each trains a DistributedDataParallel copy of
the model on its share of every batch, gloo on CPUs, nccl on GPUs.

What stays the same as one process: the recipe's batch size is the global batch (each of N
processes takes every N-th image of it), so learning rates, schedules and step counts need no
scaling rule; shuffling and augmentation draw from one seeded generator that every process
advances alike. Validation and test sets are split into N contiguous parts and the logits
gathered, so every decision (early stopping, ReduceLROnPlateau, stage ends) is made on the full
validation set, identically everywhere. Only rank 0 writes files or prints.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: a single process may never need it here
    import torch



@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def rows(self, total: int) -> slice:
        """This process's contiguous part of ``total`` rows (validation and test sets)."""
        per = -(-total // self.size)
        return slice(min(self.rank * per, total), min((self.rank + 1) * per, total))


SINGLE = World()
_world = SINGLE


def from_environment(environ=os.environ) -> World:
    return World(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)), int(environ.get("LOCAL_RANK", 0)))


def init(device: str) -> World:
    """Join the process group torchrun set up (no-op for one process); returns this process's place."""
    global _world
    world = from_environment()
    if not world.active:  # one process: torch is not even imported here (a locked folder is refused fast)
        _world = world
        return world
    import torch
    import torch.distributed as dist


    if not dist.is_initialized():
        on_gpu = device.startswith("cuda")
        if on_gpu:
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if on_gpu else "gloo")
    _world = world
    return world


# how the process group says a peer went away (gloo's transport, NCCL, the TCP store)
LOST_PEER_MARKERS = ("gloo/transport", "NCCL", "Connection closed", "Connection reset", "Broken pipe")


class PeerLost(KeyboardInterrupt):
    """Another process of the run (or its node) went away mid-job: the run ends as an interrupt
    does, its last finished epoch checkpointed, rather than failing the job's row as if the model
    had failed; ``--resume`` continues it once every process is back."""


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc``, raised in a job of a run of several processes, is the process group
    losing a peer."""
    if not _world.active:
        return False
    import torch.distributed as dist

    return isinstance(exc, dist.DistError) or any(marker in str(exc) for marker in LOST_PEER_MARKERS)


def current() -> World:
    return _world


def is_main() -> bool:
    return _world.main


def shutdown() -> None:
    if not _world.active:
        return
    import torch.distributed as dist


    if dist.is_initialized():
        dist.destroy_process_group()


def reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if _world.active:
        dist.all_reduce(tensor)
    return tensor


def gather_rows(part: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's rows in rank order (parts may differ in length by a few)."""
    import torch
    import torch.distributed as dist

    if not _world.active:
        return part
    length = torch.tensor([len(part)], device=part.device)
    lengths = [torch.zeros_like(length) for _ in range(_world.size)]
    dist.all_gather(lengths, length)
    longest = int(max(lengths))
    padded = torch.zeros((longest, *part.shape[1:]), dtype=part.dtype, device=part.device)
    padded[: len(part)] = part
    parts = [torch.zeros_like(padded) for _ in range(_world.size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(n)] for p, n in zip(parts, lengths)])


def sharded(predict, x: torch.Tensor) -> torch.Tensor:
    """``predict`` on this process's part of ``x``, results of all parts gathered in order.
    Runs on the CPU for gloo; nccl gathers on the GPU."""
    import torch.distributed as dist

    if not _world.active:
        return predict(x)
    out = predict(x[_world.rows(len(x))])
    if dist.get_backend() == "nccl":
        return gather_rows(out.cuda()).cpu()
    return gather_rows(out)


def broadcast(value):
    """Rank 0's ``value`` on every process."""
    import torch.distributed as dist

    if not _world.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model, device: str):
    """DistributedDataParallel around ``model`` when several processes train; built per stage,
    since DDP fixes the set of trainable parameters when it is made."""
    import torch

    if not _world.active or not any(p.requires_grad for p in model.parameters()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index or 0] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def launch(nproc: int, argv: list) -> int:
    """Run torchrun starting ``nproc`` copies of ``harness argv`` as a child and return its exit
    code: the caller (a shell, or a notebook's kernel through ``harness.run``) goes on after it."""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "harness", *argv]
    import signal

    child = subprocess.Popen(command)
    # a scheduler's or kill's SIGTERM reaches this process alone: pass it on (Ctrl-C reaches all)
    previous = signal.signal(signal.SIGTERM, lambda number, frame: child.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the processes got the same Ctrl-C and save their state
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def agree(decide):
    """Run ``decide()`` on rank 0 only (it may touch files) and give its result, or its
    HarnessError, to every process."""
    from harness.errors import HarnessError

    if not _world.active:
        return decide()
    outcome = None
    if _world.main:
        try:
            outcome = ("ok", decide())
        except HarnessError as exc:
            outcome = ("error", (str(exc), exc.exit_code))
    outcome = broadcast(outcome)
    if outcome[0] == "error":
        message, code = outcome[1]
        error = HarnessError(message)
        error.exit_code = code
        raise error
    return outcome[1]


def sync_buffers(model) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics). DDP sends them at the
    start of each forward pass, so after an epoch's last step each process holds its own."""
    import torch.distributed as dist

    if _world.active:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
