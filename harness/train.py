"""The training loop: stages run in order, each with its own trainable parts, optimizer and
learning-rate schedule; validation after every epoch; early stopping on a validation metric with
the best weights restored at the end of every stage; a checkpoint after every epoch from which
an interrupted run resumes exactly. The loop only calls hooks: early stopping, ReduceLROnPlateau and
loggers are plugins' callbacks (``harness.callbacks``, built-ins in ``plugins/harness_callbacks``)
that may end the stage or change the learning rate; the best epoch, the progress bar, the console
line and the checkpoint are the trainer's own (``harness.loop_callbacks``).

Data stays uint8 (in memory or memory-mapped from the cache; on the GPU when training there); each
step indexes a batch, scales it to [0, 1] and augments it as a batch. Nothing here knows about
particular models: plugins give recipes, this runs them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from harness import distributed
from harness.accel import CPU, Accel
from harness.callbacks import CallbackList, Control
from harness.compute import TrainingCost
from harness.data.augment import augment_batch, training_batch
from harness.data.rows import as_tensor
from harness.data.tensors import model_input, unit_floats
from harness.evaluate import loss_and_accuracy, predict_logits
from harness.fileio import save_torch
from harness.freezing import Parts, fixed_parameters, freeze, train_mode, trainable_prefixes
from harness.loop_callbacks import BestEpoch, Checkpointing, ConsoleLine, OwnAndPlugins, ProgressBar
from harness.optim import Lookahead, make_optimizer, make_step_schedule, param_groups
from harness.specs import Recipe, Stage

CHECKPOINT_VERSION = 2  # 2: callback states replace the fixed early-stopping / plateau entries
GPU_FINITE_CHECK_EVERY = 25  # steps between loss checks on a GPU, where each check waits for the device


@dataclass
class StageResult:
    name: str
    epochs: int  # epochs run
    best_epoch: int
    best_value: float
    monitor: str
    stopped_early: bool
    # the run's totals when the stage ended: an earlier stage's row reports what it cost up to there
    train_time_s: float | None = None
    train_images: int | None = None
    train_flop: float | None = None
    cores: dict | None = None  # how much of the machine the stage had (harness.cores.use)
    extra: dict = field(default_factory=dict)  # what the end-of-stage hook returned (test metrics)

    @classmethod
    def of(cls, state, best: BestEpoch, result, cost_known: bool, cores: dict | None = None) -> "StageResult":
        """A stage's result as it ends (``state``: its ``StageState``; ``result``: the run's totals)."""
        return cls(state.stage.name, state.epoch, best.epoch, best.value, best.monitor,
                   stopped_early=state.epoch < state.stage.epochs, train_time_s=result.train_time_s,
                   train_images=result.train_images, train_flop=result.train_flop if cost_known else None,
                   cores=cores)


@dataclass
class FitResult:
    history: list = field(default_factory=list)  # one dict per epoch, every stage
    stages: list = field(default_factory=list)  # StageResult per finished stage
    train_time_s: float = 0.0  # time spent in training steps (validation excluded)
    train_images: int = 0
    train_flop: float = 0.0  # training compute (harness.compute's convention)

    @classmethod
    def from_checkpoint(cls, resume: dict) -> "FitResult":
        return cls(history=list(resume["history"]), stages=[StageResult(**s) for s in resume["stage_results"]],
                   train_time_s=resume["train_time_s"], train_images=resume["train_images"],
                   train_flop=resume.get("train_flop", 0.0))


@dataclass
class Steps:
    """A stage's optimisation steps: the stage's settings, its optimizer and its per-step learning
    rate schedule (None when the rate changes only between epochs)."""

    stage: Stage
    optimizer: Any
    step_schedule: Any = None


def train_step(module, x, y, steps: Steps, accel=CPU, check_over=distributed.SINGLE):
    """One optimisation step; returns the (detached) loss and the logits.

    Unless ``check_over`` is None the loss is checked before the update; the check waits for the
    device, so on a GPU the loop asks for it only every few steps (a NaN, once in the weights, stays
    in the loss). Over several processes (``check_over`` an active world) the check is on the sum
    of their losses, so all stop at the same step instead of one leaving the others waiting in the
    gradient exchange.
    """
    stage = steps.stage
    with accel.autocast():
        logits = module(x)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=stage.label_smoothing)
    if check_over is not None:
        checked = distributed.reduce_sum(loss.detach().clone()) if check_over.active else loss
        if not torch.isfinite(checked):  # stop at once: a diverged model only wastes epochs
            raise FloatingPointError(f"the training loss became {loss.item()} in stage '{stage.name}'; "
                                     "lower the learning rate (--set stages.<stage>.lr=...)")
    steps.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    steps.optimizer.step()
    if steps.step_schedule is not None:
        steps.step_schedule.step()
    return loss.detach(), logits.detach()


class FeatureCache:
    """A frozen base runs once per image: the inputs of the head are computed up front (with the
    whole model in eval mode, as frozen layers are) and the head trains on them, epoch after epoch.
    With ``augmented_views`` > 0, that many augmented views of each image are cached and every
    epoch draws one of them per image."""

    def __init__(self, trainer, head, train_features, val_features):
        self.trainer, self.head = trainer, head
        self.train_features = train_features  # (views, N, ...)
        self.val_features = val_features

    @classmethod
    def for_stage(cls, trainer, stage: Stage, result, resume) -> "FeatureCache | None":
        """The cache for a stage that trains only the head (unless it finished before an
        interruption); computing it is training time and compute, counted in ``result``."""
        if not (stage.trainable == "head" and stage.feature_cache and not (resume and resume["stage_finished"])):
            return None
        started = time.perf_counter()
        cache = cls.build(trainer, stage)
        result.train_time_s += time.perf_counter() - started  # running the base once is training work
        result.train_flop += cache.train_features.shape[0] * len(trainer.train_y) * trainer.cost.cached_base()
        return cache

    @classmethod
    def build(cls, trainer, stage: Stage) -> "FeatureCache":
        head = trainer.model.get_submodule(trainer.parts.head)
        views = max(1, stage.augmented_views)
        augment = trainer.recipe.augment if stage.augmented_views else None
        train = torch.stack([cls.head_inputs(trainer, head, trainer.train_x, augment) for _ in range(views)])
        return cls(trainer, head, train, cls.head_inputs(trainer, head, trainer.val_x, None))

    @staticmethod
    @torch.inference_mode()
    def head_inputs(trainer, head, x_uint8, augment):
        captured = []  # float32 whatever autocast computed the base in: the head trains in float32
        hook = head.register_forward_hook(lambda module, args, output: captured.append(args[0].float().clone()))
        was_training = trainer.model.training
        trainer.model.eval()
        try:
            for start in range(0, len(x_uint8), trainer.recipe.eval_batch_size):
                part = x_uint8[start : start + trainer.recipe.eval_batch_size]
                x = (augment_batch(unit_floats(part), augment, trainer.generator, size=trainer.input_size)
                     if augment is not None else model_input(part, trainer.input_size, trainer.accel.channels_last))
                with trainer.accel.autocast("eval"):
                    trainer.forward(trainer.accel.layout(x))
        finally:
            hook.remove()
            trainer.model.train(was_training)
        return torch.cat(captured)

    def train_epoch(self, steps: Steps) -> tuple[float, float]:
        trainer = self.trainer
        self.head.train()
        n = self.train_features.shape[1]
        order = torch.randperm(n, generator=trainer.generator)
        view = (torch.randint(len(self.train_features), (n,), generator=trainer.generator)
                if len(self.train_features) > 1 else torch.zeros(n, dtype=torch.long)).to(self.train_features.device)
        # every process trains the (small) head on all cached features alike: no exchange needed
        return run_batches(trainer, self.head, order, lambda index, total: self.train_features[view[index], index],
                           steps)

    @torch.inference_mode()
    def val_logits(self) -> torch.Tensor:
        was_training = self.head.training
        self.head.eval()
        size = self.trainer.recipe.eval_batch_size
        with self.trainer.accel.autocast("eval"):
            logits = torch.cat([self.head(self.val_features[i : i + size]).float()
                                for i in range(0, len(self.val_features), size)])
        self.head.train(was_training)
        return logits.cpu()


@dataclass(kw_only=True)
class StageState(Steps):
    """What a stage carries from epoch to epoch, all of it in its checkpoint: its steps (the
    optimizer and its per-step schedule), the callbacks' handle, the generator's state when the
    stage began (the feature cache draws from it), the epoch reached. The callbacks' states (the
    best epoch's among them) are the trainer's."""

    index: int
    control: Control
    stage_start: Any
    epoch: int = 0
    # how much of the machine the stage had: its parts before an interruption, and the running part
    cores_before: dict | None = None
    meter: Any = None

    @property
    def finished(self) -> bool:
        """A callback ended the stage, or its budget of epochs is spent."""
        return self.control.stopping or self.epoch >= self.stage.epochs

    def state_dict(self, trainer) -> dict:
        accel = trainer.accel
        return {
            "stage_index": self.index,
            "epoch": self.epoch,
            "stage_finished": self.finished,
            "model_state": {key: value.cpu() for key, value in trainer.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "step_schedule": self.step_schedule.state_dict() if self.step_schedule is not None else None,
            "callbacks": trainer.callbacks.state_dict(),
            "cores": self.cores_so_far(),
            "lookahead": trainer.lookahead.state_dict() if trainer.lookahead is not None else None,
            "rng": {"torch": torch.get_rng_state(), "generator": trainer.generator.get_state(),
                    "stage_start": self.stage_start,
                    "cuda": torch.cuda.get_rng_state(accel.device) if accel.on_gpu else None},
        }

    def load_state_dict(self, state: dict, trainer) -> None:
        trainer.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.step_schedule is not None:
            self.step_schedule.load_state_dict(state["step_schedule"])
        callbacks = state["callbacks"]
        if "best" in state:  # a version-2 checkpoint may keep the best epoch beside the callbacks
            callbacks = {BestEpoch.name: state["best"], **callbacks}
        trainer.callbacks.load_state_dict(callbacks)
        if trainer.lookahead is not None:
            trainer.lookahead.load_state_dict(state["lookahead"])
        torch.set_rng_state(state["rng"]["torch"])
        if trainer.accel.on_gpu and state["rng"].get("cuda") is not None:  # dropout on the GPU draws from it
            torch.cuda.set_rng_state(state["rng"]["cuda"], trainer.accel.device)
        trainer.generator.set_state(state["rng"]["generator"])
        self.epoch, self.control.stopping = state["epoch"], state["stage_finished"]
        self.cores_before = state.get("cores")  # a resumed stage's time is busy if any part of it was

    def cores_so_far(self) -> dict | None:
        from harness.cores import joined

        return joined(self.cores_before, self.meter.so_far()) if self.meter is not None else self.cores_before


@dataclass(frozen=True, kw_only=True)
class Setup:
    """How a model trains, beside its recipe: the input size, the seed of shuffling and augmentation
    (one generator, so a seed fixes both), where and how to compute, the model's parts (what a
    stage freezes; found in the model when not given) and its compute per image (uncounted when
    not given)."""

    input_size: int
    seed: int
    accel: Accel = CPU
    parts: Parts | None = None
    cost: TrainingCost | None = None


@dataclass(frozen=True, kw_only=True)
class Watch:
    """What watches a training and what it leaves: the plugins' ``callbacks`` (a ``CallbackList``;
    none when not given, as in Lightning; ``CallbackList.make`` makes a registry's), with
    ``show_progress`` a progress bar and a console line labelled ``label``, with ``checkpoint`` the
    state saved there atomically after every epoch (after every other callback) under the settings'
    ``fingerprint``, and ``on_stage_end(stage, model)``, called after the callbacks' (the best
    weights restored), whose dict is kept in the stage's result."""

    callbacks: CallbackList | None = None
    label: str = ""
    show_progress: bool = True
    checkpoint: Path | None = None
    fingerprint: str = ""
    on_stage_end: Callable | None = None


class Trainer:
    """Runs a recipe on a model over its splits, set up by ``setup`` and watched by ``watch``: a loop
    of stages, each "start, then epochs until a callback or the budget ends it", calling the
    callbacks' hooks at every boundary; the trainer's own callbacks (the best epoch, the progress
    shown, the checkpoint) come around the plugins'."""

    def __init__(self, model, splits, recipe: Recipe, setup: Setup, watch: Watch = Watch()):
        self.best = BestEpoch()
        shown = [ProgressBar(watch.label), ConsoleLine(watch.label)] if watch.show_progress else []
        self.callbacks = OwnAndPlugins([self.best, *shown], watch.callbacks or CallbackList([]),
                                       [Checkpointing(self)] if watch.checkpoint is not None else [])
        accel = setup.accel
        self.model, self.recipe, self.input_size, self.accel = model, recipe, setup.input_size, accel
        self.cost = setup.cost or TrainingCost(None)
        self.world = distributed.current()
        self.forward = accel.prepare(model)  # the model, or its compiled form (same parameters)
        self.evaluate = self.forward  # DDP's forward syncs buffers: never used for (uneven) eval parts
        self.parts = setup.parts or Parts.of(model)
        self.on_stage_end = watch.on_stage_end
        self.checkpoint, self.fingerprint = watch.checkpoint, watch.fingerprint
        # the whole training set moves to a GPU once, as uint8: no per-batch host transfers; on the
        # CPU a memory-mapped split stays where it is and each batch reads its rows
        self.train_x = accel.to_device(as_tensor(splits.train_x))
        self.train_y = accel.to_device(torch.from_numpy(splits.train_y))
        self.val_x = accel.to_device(as_tensor(splits.val_x))
        self.val_y = torch.from_numpy(splits.val_y)  # compared with logits brought back to the CPU
        self.generator = torch.Generator().manual_seed(setup.seed)
        self.frozen, self.fixed = [], fixed_parameters(model)
        self.lookahead, self.cache = None, None
        self.result, self.state = None, None  # the run's totals and the stage's state, while fitting

    # --- the loop ---------------------------------------------------------------------------

    def fit(self, resume: dict | None = None) -> FitResult:
        result = self.result = FitResult.from_checkpoint(resume) if resume is not None else FitResult()
        start = resume["stage_index"] if resume is not None else 0
        for index, stage in enumerate(self.recipe.stages):
            if index < len(result.stages):
                continue  # finished before the interruption
            result.stages.append(self.run_stage(index, stage, result, resume if index == start else None))
        return result

    def run_stage(self, index: int, stage: Stage, result: FitResult, resume: dict | None) -> StageResult:
        from harness.cores import Meter, joined

        with Meter() as meter:  # the stage's time is a speed figure only if the machine left it its cores
            state = self.start_stage(index, stage, result, resume)
            state.meter = meter
            while not state.finished:
                row = self.run_epoch(state, result)
                result.history.append(row)
                self.callbacks.on_epoch_end(state.epoch, row, state.control)  # any may end the stage
        self.callbacks.call("on_stage_end", stage, state.control)
        cores = joined(state.cores_before, meter.result)
        stage_result = StageResult.of(state, self.best, result, self.cost.known, cores)
        if self.on_stage_end:
            stage_result.extra = self.on_stage_end(stage, self.model) or {}
        return stage_result

    def begin_stage(self, stage: Stage) -> None:
        """Freeze what the stage leaves frozen; with several processes, wrap the model in DDP anew
        (DDP fixes the set of trainable parameters when it is made)."""
        self.frozen = freeze(self.model, self.parts, stage.trainable, self.fixed)
        if self.world.active:
            self.forward = self.accel.compiled(distributed.wrap(self.model, self.accel.device))

    def start_stage(self, index: int, stage: Stage, result: FitResult, resume: dict | None) -> StageState:
        """Freezing, optimizer, schedule, callbacks told, lookahead, the frozen base's features
        cached; then an interrupted stage's state restored."""
        self.begin_stage(stage)
        batches = batch_count(len(self.train_y), stage.batch_size)
        optimizer = make_optimizer(stage, param_groups(self.model, self.parts, stage))
        control = Control(self.model, optimizer, stage)
        step_schedule = make_step_schedule(stage, optimizer, batches)
        self.callbacks.call("on_stage_start", stage, control)
        self.lookahead = Lookahead(self.model, stage.lookahead, stage.epochs * batches) if stage.lookahead else None
        if resume is not None:  # the generator as it was when the stage began, for the feature cache
            self.generator.set_state(resume["rng"]["stage_start"])
        state = self.state = StageState(stage, optimizer, step_schedule, index=index, control=control,
                                        stage_start=self.generator.get_state())
        self.cache = FeatureCache.for_stage(self, stage, result, resume)
        control.features_cached = self.cache is not None
        if resume is not None:
            state.load_state_dict(resume, self)
        return state

    def run_epoch(self, state: StageState, result: FitResult) -> dict:
        """One epoch's training and validation; its history row."""
        stage = state.stage
        state.epoch += 1
        lr = state.optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        self.callbacks.call("on_epoch_start", state.epoch, batch_count(len(self.train_y), stage.batch_size))
        trains = self.cache if self.cache is not None else self  # the cached features' head, or the model
        train_loss, train_acc = trains.train_epoch(state)
        distributed.sync_buffers(self.model)
        result.train_time_s += time.perf_counter() - started
        result.train_images += len(self.train_y)
        result.train_flop += len(self.train_y) * (
            self.cost.head_step() if self.cache is not None
            else self.cost.step(trainable_prefixes(self.parts, stage.trainable)))
        val_logits = self.cache.val_logits() if self.cache is not None else self.val_logits()
        val_loss, val_acc = loss_and_accuracy(val_logits, self.val_y)
        return {"stage": stage.name, "epoch": state.epoch, "lr": lr, "train_loss": train_loss,
                "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc,
                "time_s": time.perf_counter() - started,
                # totals so far, from which time and compute to an accuracy are read
                "train_time_s": result.train_time_s, "train_images": result.train_images,
                "train_flop": result.train_flop if self.cost.known else None}

    def val_logits(self) -> torch.Tensor:
        return distributed.sharded(lambda part: predict_logits(
            self.evaluate, part, input_size=self.input_size, batch_size=self.recipe.eval_batch_size,
            accel=self.accel), self.val_x)

    def train_epoch(self, steps: Steps) -> tuple[float, float]:
        train_mode(self.model, self.frozen)
        order = torch.randperm(len(self.train_y), generator=self.generator)
        world = self.world

        def inputs(index, total):
            # transforms are drawn for the whole global batch, so every process advances the
            # generator alike and each image gets the transform it would get in one process
            return training_batch(self.train_x[index], self.input_size, self.recipe.augment, self.generator,
                                  share=(slice(world.rank, None, world.size), total), layout=self.accel.layout)

        return run_batches(self, self.forward, order, inputs, steps, world)

    # --- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """The stage's state and the run's totals so far (the ``Checkpointing`` callback's work)."""
        state, result = self.state, self.result
        if self.checkpoint is None or not self.world.main:
            return
        save_torch(self.checkpoint, {
            "version": CHECKPOINT_VERSION, "fingerprint": self.fingerprint, **state.state_dict(self),
            "history": result.history, "stage_results": [asdict(s) for s in result.stages],
            "train_time_s": result.train_time_s, "train_images": result.train_images, "train_flop": result.train_flop,
        })


def batch_count(n: int, batch_size: int) -> int:
    # a last batch of one image is dropped: batch norm cannot train on it
    return n // batch_size + (1 if n % batch_size > 1 else 0)


def run_batches(trainer: Trainer, module, order, inputs, steps: Steps, world=distributed.SINGLE):
    """Batches in ``order``; ``inputs(index, total)`` gives this process's inputs of a batch of
    ``total`` images (with several processes, ``index`` is every ``world.size``-th image of
    the batch). Returns mean loss and accuracy over every process's images."""
    device = trainer.train_y.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    size = steps.stage.batch_size
    batches = batch_count(len(trainer.train_y), size)
    order = order.to(device)
    for step in range(batches):
        batch = order[step * size : (step + 1) * size]
        index = batch[world.rank :: world.size]
        y = trainer.train_y[index]
        check = not trainer.accel.on_gpu or step % GPU_FINITE_CHECK_EVERY == 0 or step == batches - 1
        loss, logits = train_step(module, inputs(index, len(batch)), y, steps, trainer.accel,
                                  world if check else None)
        if trainer.lookahead is not None:
            trainer.lookahead.step(trainer.model)
        with torch.no_grad():
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        trainer.callbacks.call("on_batch_end", step + 1)
    if world.active:
        totals = distributed.reduce_sum(torch.stack([loss_sum, correct.to(loss_sum.dtype),
                                                     torch.tensor(float(seen), device=device)]))
        loss_sum, correct, seen = totals[0], totals[1], int(totals[2].item())
    return loss_sum.item() / seen, int(correct.item()) / seen


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by ``Trainer``; only tensors and plain data are unpickled."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"not a version {CHECKPOINT_VERSION} checkpoint")
    return state
