"""Throughput measurements shared by ``benchmarks/`` (pytest-benchmark): the harness's training
data pipeline against torchvision's PIL ``DataLoader`` doing the same augmentation."""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from harness.data.augment import training_batch
from harness.specs import Augment

STUDY_AUGMENT = Augment(rotation=15, flip=True, zoom=0.1, shift=0.1)


def random_images(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), rng.integers(0, 10, n)


def harness_epoch(x: torch.Tensor, y: torch.Tensor, augment: Augment, batch_size: int, generator) -> int:
    """One epoch of what the trainer does before the forward pass: shuffle, index, scale, augment."""
    order = torch.randperm(len(y), generator=generator)
    seen = 0
    for start in range(0, len(y), batch_size):
        index = order[start : start + batch_size]
        batch = training_batch(x[index], x.shape[-1], augment, generator)
        seen += batch.shape[0]
    return seen


def torchvision_loader(images: np.ndarray, labels: np.ndarray, augment: Augment, batch_size: int):
    """The usual torchvision way: a dataset of PIL images with per-image transforms."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    pipeline = transforms.Compose([
        transforms.RandomRotation(augment.rotation),
        transforms.RandomHorizontalFlip(),
        transforms.RandomAffine(0, translate=(augment.shift, augment.shift), scale=(1 - augment.zoom, 1 + augment.zoom)),
        transforms.ToTensor(),
    ])
    pil = [Image.fromarray(image.transpose(1, 2, 0)) for image in images]

    class PilDataset(Dataset):
        def __len__(self):
            return len(pil)

        def __getitem__(self, i):
            return pipeline(pil[i]), int(labels[i])

    return DataLoader(PilDataset(), batch_size=batch_size, shuffle=True, num_workers=0)


def images_per_second(run_epoch, repeats: int = 3) -> float:
    """Median images/s over ``repeats`` epochs, after one warm-up epoch."""
    run_epoch()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        seen = run_epoch()
        rates.append(seen / (time.perf_counter() - started))
    return float(np.median(rates))


def data_pipeline_speedup(n: int = 4096, batch_size: int = 128, augment: Augment = STUDY_AUGMENT,
                          repeats: int = 3) -> dict:
    """Images/s of the harness pipeline and of the torchvision baseline, measured in one run."""
    images, labels = random_images(n)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    ours = images_per_second(lambda: harness_epoch(x, y, augment, batch_size, generator), repeats)
    loader = torchvision_loader(images, labels, augment, batch_size)
    theirs = images_per_second(lambda: sum(len(batch[1]) for batch in loader), repeats)
    return {"harness_img_s": ours, "torchvision_img_s": theirs, "speedup_vs_torchvision": ours / theirs}


def frozen_stage_seconds(spec, *, n: int, input_size: int, epochs: int, feature_cache: bool) -> float:
    """Wall time of a frozen stage (head only) of ``epochs`` epochs on ``n`` random 32 px images,
    through the harness trainer, with or without the frozen-feature cache."""
    from harness.data import Splits
    from harness.freezing import Parts
    from harness.specs import Recipe, Stage
    from harness.train import Setup, Trainer, Watch

    images, labels = random_images(n)
    val_x, val_y = random_images(max(n // 10, 10), seed=1)
    splits = Splits([str(i) for i in range(10)], images, labels, val_x, val_y, val_x, val_y)
    torch.manual_seed(0)
    model = spec.build(10)
    stage = Stage(name="frozen", trainable="head", epochs=epochs, batch_size=64, early_stopping=None,
                  feature_cache=feature_cache)
    trainer = Trainer(model, splits, Recipe(stages=[stage]),
                      Setup(input_size=input_size, seed=0, parts=Parts.of(model, spec.head, spec.blocks)),
                      Watch(show_progress=False))
    started = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - started


# --- the trainer against a bare PyTorch loop ------------------------------------------------------


def _splits(n: int, size: int):
    from harness.data import Splits

    images, labels = random_images(n, size)
    return Splits([str(i) for i in range(10)], images, labels, images[:0], labels[:0], images[:0], labels[:0])


def _model(spec):
    torch.manual_seed(0)
    return spec.build(10)


def _quick_training(spec):
    """The quick profile's recipe, its first stage that trains every layer, and the input size."""
    from harness import config as configuration

    recipe = configuration.to_recipe(configuration.resolve(spec, "quick", {}))
    return recipe, next(s for s in recipe.stages if s.trainable == "all"), spec.size_for("quick")


def _trainer(spec, stage, *, n: int, accel=None, show_progress=True):
    """A harness ``Trainer`` with the quick profile's recipe on ``n`` random images, set up for
    ``stage`` as ``harness run`` sets it up (freezing, DDP when several processes), and the
    stage's steps (its optimizer)."""
    from harness.accel import CPU
    from harness.freezing import Parts
    from harness.optim import Lookahead, make_optimizer, param_groups
    from harness.train import Setup, Steps, Trainer, Watch

    recipe, _, size = _quick_training(spec)
    model = _model(spec)
    parts = Parts.of(model, spec.head, spec.blocks)
    trainer = Trainer(model, _splits(n, size), recipe, Setup(input_size=size, seed=0, parts=parts, accel=accel or CPU),
                      Watch(show_progress=show_progress))
    trainer.begin_stage(stage)
    if stage.lookahead:  # a stage far from its end: the pulls cost what they cost mid-run
        trainer.lookahead = Lookahead(model, stage.lookahead, total_steps=10**9)
    return trainer, Steps(stage, make_optimizer(stage, param_groups(model, parts, stage)))


def batches_for(images: int, batch_size: int, at_least: int = 2) -> int:
    """Batches of ``batch_size`` that make about ``images`` images (so a model trained on large
    batches is timed on as many images as one trained on small ones)."""
    return max(at_least, math.ceil(images / batch_size))


def train_speed(spec, *, images: int = 4096, repeats: int = 5, accel=None) -> dict:
    """Training images/s of ``harness run``'s own epoch (``Trainer.train_epoch``: indexing,
    scaling, the recipe's augmentation, loss/accuracy bookkeeping, progress reporting) against a
    bare loop (zero_grad, forward, loss, backward, step) over the same batches already in memory as
    float tensors, with the same model, batch size and optimizer. Harness and bare epochs
    alternate; the rates are medians after one warm-up each, the ratio the median of each turn's
    ratio (``alternating_rates``)."""
    from harness.accel import CPU
    from harness.freezing import Parts
    from harness.optim import Lookahead, make_optimizer, param_groups

    import torch.nn.functional as F

    accel = accel or CPU
    _, stage, size = _quick_training(spec)
    n = batches_for(images, stage.batch_size) * stage.batch_size
    trainer, steps = _trainer(spec, stage, n=n, accel=accel)

    bare_model = _model(spec)
    bare_forward = accel.prepare(bare_model)
    bare_optimizer = make_optimizer(stage, param_groups(bare_model, Parts.of(bare_model, spec.head, spec.blocks), stage))
    x = accel.layout(trainer.train_x.float().div(255))  # the same images, already on the device
    bare_batches = [(x[i : i + stage.batch_size], trainer.train_y[i : i + stage.batch_size])
                    for i in range(0, n, stage.batch_size)]
    # lookahead belongs to the optimizer: the bare loop runs the same pulls
    bare_lookahead = Lookahead(bare_model, stage.lookahead, total_steps=10**9) if stage.lookahead else None

    def harness_epoch():
        trainer.train_epoch(steps)
        accel.sync()
        return n

    def bare_epoch():
        bare_model.train()
        for xb, yb in bare_batches:
            bare_optimizer.zero_grad(set_to_none=True)
            with accel.autocast():
                logits = bare_forward(xb)
            F.cross_entropy(logits.float(), yb, label_smoothing=stage.label_smoothing).backward()
            bare_optimizer.step()
            if bare_lookahead is not None:
                bare_lookahead.step(bare_model)
        accel.sync()
        return n

    ours, bare, ratio = alternating_rates(harness_epoch, bare_epoch, repeats)
    return {"harness_img_s": ours, "bare_img_s": bare, "ratio_vs_bare": ratio,
            "batch_size": stage.batch_size, "input_size": size}


def eval_speed(spec, *, images: int = 2048, repeats: int = 5, accel=None) -> dict:
    """Evaluation images/s of ``predict_logits`` (what validation and the test set use) against a
    bare ``model(x)`` loop in inference mode over the same batches already scaled to floats."""
    from harness.accel import CPU
    from harness.evaluate import predict_logits

    accel = accel or CPU
    recipe, _, size = _quick_training(spec)
    batch = recipe.eval_batch_size
    n = batches_for(images, batch) * batch
    data = accel.to_device(torch.from_numpy(random_images(n, size)[0]))
    model = _model(spec)
    forward = accel.prepare(model)
    x = accel.layout(data.float().div(255))

    def harness_pass():
        predict_logits(forward, data, input_size=size, batch_size=batch, accel=accel)
        return n

    @torch.inference_mode()
    def bare_pass():
        forward.eval()
        for i in range(0, n, batch):
            with accel.autocast("eval"):
                forward(x[i : i + batch])
        accel.sync()
        return n

    ours, bare, ratio = alternating_rates(harness_pass, bare_pass, repeats)
    return {"harness_img_s": ours, "bare_img_s": bare, "ratio_vs_bare": ratio, "batch_size": batch}


def alternating_rates(first, second, repeats: int) -> tuple[float, float, float]:
    """Median images/s of two workloads timed in turn, after one warm-up run of each, and the
    median of the per-turn ratios (first / second): both runs of a turn meet the machine in the
    same state, so a drift in its speed (a busy neighbour on a shared host) cancels out of the
    ratio instead of landing on whichever workload it hit."""
    first(), second()
    rates = ([], [])
    for _ in range(repeats):
        for run, sink in ((first, rates[0]), (second, rates[1])):
            started = time.perf_counter()
            seen = run()
            sink.append(seen / (time.perf_counter() - started))
    ratios = [ours / theirs for ours, theirs in zip(*rates)]
    return float(np.median(rates[0])), float(np.median(rates[1])), float(np.median(ratios))


def peak_memory_mb(accel=None) -> dict:
    """The process's peak resident memory so far (and the GPU's peak allocation when on one)."""
    import resource

    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if accel is not None and accel.on_gpu:
        peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated(accel.device) / 2**20
    return peak


def bench(specs: list, *, accel=None, images: int = 4096, repeats: int = 5) -> dict:
    """Everything ``harness bench`` reports, measured in this one process."""
    from harness.provenance import environment

    described = accel.describe() if accel else None
    if described and described["amp"] is None:
        described["amp"] = "auto"  # settled per model: see each model's accel and amp_reason
    from harness import machine

    result = {"environment": environment(), "machine": machine.describe(), "accel": described, "models": {}}
    result["data"] = data_pipeline_speedup(n=max(512, images), repeats=repeats)
    for spec in specs:
        chosen = accel.for_model(spec) if accel else None  # --amp auto: this model's choice
        train = train_speed(spec, images=images, repeats=repeats, accel=chosen)
        evaluation = eval_speed(spec, images=images // 2, repeats=repeats, accel=chosen)
        result["models"][spec.name] = {
            "accel": chosen.describe() if chosen else None, "amp_reason": chosen.amp_reason if chosen else None,
            "train": train, "eval": evaluation,
            "train_ratio_vs_bare": train["ratio_vs_bare"], "eval_ratio_vs_bare": evaluation["ratio_vs_bare"],
            "data_speedup_vs_torchvision": result["data"]["speedup_vs_torchvision"],
        }
    result.update(peak_memory_mb(accel))
    return result


# --- one process against several ------------------------------------------------------------------


def _train_worker(rank, world_size, port, task, out):
    """One process of ``process_scaling``: one thread, the harness epoch of ``task`` (the model's
    name, about how many images, the repeats) over its share of the images (whole global batches,
    at least two per process); rank 0 records the median images/s of the whole group."""
    import json
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from harness import distributed, plugin_registry

    name, images, repeats = task
    distributed.init("cpu")
    spec = plugin_registry.load(report=False).models[name].spec
    _, stage, _ = _quick_training(spec)
    n = batches_for(images, stage.batch_size, at_least=2 * world_size) * stage.batch_size
    trainer, steps = _trainer(spec, stage, n=n, show_progress=False)

    def epoch():
        trainer.train_epoch(steps)
        return n

    rate = images_per_second(epoch, repeats)
    if rank == 0:
        with open(out, "w") as handle:
            json.dump({"img_s": rate}, handle)
    distributed.shutdown()


def process_scaling(name: str, nproc: int = 2, images: int = 4096, repeats: int = 3) -> dict:
    """Training images/s of ``name`` with 1 and with ``nproc`` data-parallel processes (gloo, one
    thread each) over the same global batches, and the ratio."""
    import json
    import socket
    import tempfile

    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in (1, nproc):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            out = f"{folder}/{size}.json"
            torch.multiprocessing.spawn(_train_worker, args=(size, port, (name, images, repeats), out), nprocs=size)
            with open(out) as handle:
                rates[size] = json.load(handle)["img_s"]
    return {"model": name, "img_s_1_process": rates[1], f"img_s_{nproc}_processes": rates[nproc],
            "ratio": rates[nproc] / rates[1], "threads_per_process": 1}


# --- cost against data size and batch size -------------------------------------------------------


def epoch_scaling(spec, sizes=(5000, 10000, 25000, 45000), batch_sizes=(64, 128, 256), accel=None) -> list:
    """Seconds for one training epoch of the harness (``Trainer.train_epoch``) for each number of
    training images and batch size, after one warm-up epoch per batch size on the smallest size."""
    from harness.accel import CPU

    accel = accel or CPU
    _, base, _ = _quick_training(spec)
    rows = []
    for batch_size in batch_sizes:
        stage = dataclasses.replace(base, batch_size=batch_size)
        for n in (sizes[0], *sizes):  # the first is the warm-up
            trainer, steps = _trainer(spec, stage, n=n, accel=accel, show_progress=False)
            started = time.perf_counter()
            trainer.train_epoch(steps)
            accel.sync()
            rows.append({"train_images": n, "batch_size": batch_size, "epoch_s": time.perf_counter() - started})
        del rows[-len(sizes) - 1]  # drop the warm-up
    for row in rows:
        row["us_per_image"] = 1e6 * row["epoch_s"] / row["train_images"]
    return rows
