"""The dataclasses plugins fill in: facts about a model, a dataset, a callback or an evaluator.

Recipe words follow Keras (``patience``, ``min_delta``, ``factor``, ``min_lr``, ``cooldown``) so a
user of the original study recognises every knob; metric names are ``val_acc`` / ``val_loss``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Union

# the values a callback may monitor, and the way each improves: a monitor's mode when its settings
# name none
MONITOR_MODES = {"val_acc": "max", "val_loss": "min"}


class Monitored:
    """What early stopping and ReduceLROnPlateau share: a monitored value and its ``mode``, the way
    it improves (``max`` or ``min``), which is the monitor's own unless the settings name one."""

    def __post_init__(self):
        if self.mode is None:  # an unknown monitor keeps None: the config's check names it
            self.mode = MONITOR_MODES.get(self.monitor)


@dataclass
class EarlyStopping(Monitored):
    """Stop a stage when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_acc"
    patience: int = 8
    min_delta: float = 0.0
    restore_best_weights: bool = True
    mode: Optional[str] = None  # max | min: which way is better; None: the monitor's (MONITOR_MODES)


@dataclass
class ReduceLROnPlateau(Monitored):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls (torch's scheduler does it)."""

    monitor: str = "val_acc"
    factor: float = 0.5
    patience: int = 4
    min_delta: float = 0.0
    cooldown: int = 0
    min_lr: float = 1e-6
    mode: Optional[str] = None  # max | min: which way is better; None: the monitor's (MONITOR_MODES)


@dataclass
class Augment:
    """Random training-time augmentation, the study's four kinds; 0 / False turns one off."""

    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    flip: bool = False  # horizontal flip with probability 0.5
    zoom: float = 0.0  # scale uniform in [1 - zoom, 1 + zoom]
    shift: float = 0.0  # translation, fraction of width/height, uniform in [-shift, shift]
    # whole-pixel translation of up to ``translate`` pixels each way, edges reflected (airbench's
    # random crop): no resampling, so no blur, which matters at 32 px
    translate: int = 0


@dataclass
class Stage:
    """One stage of training: an optimizer, a budget of epochs and the callbacks that end it."""

    name: str = "train"
    trainable: str = "all"  # all | head | last:N (the head and the last N blocks of the base)
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    base_lr: Optional[float] = None  # learning rate of the unfrozen base (None: same as lr)
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0
    epochs: int = 60
    batch_size: int = 64
    label_smoothing: float = 0.0
    early_stopping: Optional[EarlyStopping] = field(default_factory=EarlyStopping)
    reduce_lr: Optional[ReduceLROnPlateau] = None
    schedule: Optional[str] = None  # None (constant / plateau) | onecycle | cosine | triangle
    # cosine and triangle; onecycle warms up for its first 30% of steps. triangle is airbench's:
    # linear from 0.2 x lr up to lr over the warm-up, then linear down to 0.07 x lr at the end
    warmup_epochs: float = 0.0
    # learning-rate multiplier for the parameters of normalization layers (batch norm's shift and
    # scale); their weight decay is divided by it, so the decay per step stays that of the other
    # weights (with SGD and AdamW). airbench trains batch-norm biases 64x faster.
    norm_lr_scale: float = 1.0
    # Lookahead (Zhang et al. 2019) as airbench uses it: every 5 steps slow weights move toward the
    # trained ones and the trained ones are reset to them, with the per-step decay of the slow
    # weights ramped as lookahead**5 x (progress)^3 (so it acts late); the stage ends on the slow
    # weights. 0 turns it off; airbench uses 0.95.
    lookahead: float = 0.0
    # a stage that trains only the head runs the frozen base once per image and trains the head on
    # the cached features; augmented_views > 0 caches that many augmented views of each image
    feature_cache: bool = True
    augmented_views: int = 0


@dataclass
class Recipe:
    """How a model is trained by default: its stages, augmentation and evaluation batch size."""

    stages: list = field(default_factory=lambda: [Stage()])
    augment: Augment = field(default_factory=Augment)
    eval_batch_size: int = 500
    tta_flip: bool = False  # average the logits of each test image and its mirror image
    # also average over the image moved this many pixels up-left and down-right (edges reflected),
    # weighted 1/4 each against 1/2 for the image itself: airbench's test-time augmentation
    tta_translate: int = 0
    # the rate of every dropout of the model, its modules' and timm's drop_rate (None: the model's
    # own): a short budget may want less dropout than the architecture's default
    dropout: Optional[float] = None


@dataclass
class Weights:
    """Where a model's pretrained weights come from.

    ``arch`` is the timm architecture: files in the weights folder whose names start with it
    (``<arch>.<tag>.safetensors`` or ``.pth``) are used first; then ``locate()``, a file a package
    ships, if given; then timm's hub download (``hub_tag``) when online. ``load(module, path)``
    replaces the default loading (a timm state dict, classifier left out) for other formats.
    """

    arch: str
    hub_tag: Optional[str] = None
    locate: Optional[Callable[[], Any]] = None
    load: Optional[Callable[[Any, Any], None]] = None
    hint: Optional[str] = None  # the file to name when none is found (default: <arch>.<tag>.safetensors)


@dataclass
class ModelSpec:
    """A model a plugin registers: how to build it and how to train it by default.

    ``build(num_classes)`` returns an ``nn.Module`` that maps a float batch in [0, 1] of shape
    (N, 3, input_size, input_size) to logits of shape (N, num_classes). ``input_size`` is one size
    or a dict of sizes per profile. ``profiles`` maps a profile name to overrides written like
    ``--set`` (``{"quick": {"epochs": 20}}``), applied after the harness's own profile settings.
    """

    name: str
    build: Callable[[int], Any]
    family: str = "cnn"
    input_size: Union[int, dict] = 32
    recipe: Recipe = field(default_factory=Recipe)
    profiles: dict = field(default_factory=dict)
    description: str = ""
    head: str = "head"
    blocks: Union[None, list, Callable[[Any], list]] = None
    weights: Optional[Weights] = None  # pretrained weights to start from (transfer learning)
    # ``init_from_data(module, images)``: a data-dependent initialisation (airbench's whitening
    # layer, say), called once before training from scratch (not on --resume) with up to 5,000
    # training images as a float batch in [0, 1] at the input size, unaugmented
    init_from_data: Optional[Callable[[Any, Any], None]] = None
    # the phases ("train", "eval") where bf16 autocast beats float32 on a CPU with native bf16,
    # used by --amp auto; depthwise convolutions train slower in bf16 (docs/performance.md)
    cpu_bf16: tuple = ("train", "eval")
    # the recipe and profile settings used instead of ``recipe``/``profiles`` when the model
    # trains from random weights (--no-pretrained): freezing a random base makes no sense
    scratch_recipe: Optional[Recipe] = None
    scratch_profiles: dict = field(default_factory=dict)
    # ``search_space(config)``: what ``harness tune`` varies, ``--set`` keys mapped to
    # ``harness.Range``/``harness.Choice`` for the model's resolved config (None: learning rates,
    # weight decay and label smoothing around the recipe's, ``harness.tuning.space.default_space``)
    search_space: Optional[Callable[[dict], dict]] = None
    # test accuracies published for this model, by stage (None: its final stage), which the
    # report sets beside its own: {None: 0.69}; ``published_by`` names where they come from
    published: dict = field(default_factory=dict)
    published_by: str = ""

    def from_scratch(self) -> "ModelSpec":
        """This model as it trains without pretrained weights: no longer transfer learning, so the
        report does not set it against the CNNs as a transfer model."""
        family = "scratch" if self.family == "transfer" else self.family
        if self.scratch_recipe is None:
            return replace(self, family=family)
        return replace(self, family=family, recipe=self.scratch_recipe, profiles=self.scratch_profiles)

    def size_for(self, profile: str) -> int:
        if isinstance(self.input_size, dict):
            return int(self.input_size.get(profile, self.input_size.get("default", 32)))
        return int(self.input_size)


@dataclass
class DatasetSpec:
    """A dataset a plugin registers.

    ``load(path, size)`` returns a ``harness.data.Images`` for a data path; ``size`` is the input
    size of the model about to train, which a dataset may decode to (or ignore, keeping its native
    size: batches are resized on the fly). ``accepts(path)`` says whether a path looks like this
    dataset, so ``--data PATH`` alone can pick the loader; a ``fallback`` dataset is only picked
    when no other accepts the path.

    Without ``--data``: ``default_names`` are the file or folder names looked for in the data
    folder (``$HARNESS_DATA_DIR``); ``download(folder)``, if given, fetches the dataset into it
    when ``--download`` asks and returns the path to read; ``sample`` is a small copy the smoke
    profile trains on when nothing else is found. ``describe(path)``, if given, is ``harness data
    info``'s dict for a path of this dataset (None: the harness describes it as an image tree).
    """

    name: str
    load: Callable[..., Any]
    accepts: Callable[[Any], bool] = lambda path: False
    description: str = ""
    fallback: bool = False
    default_names: tuple = ()
    download: Optional[Callable[[Any], Any]] = None
    sample: Any = None
    describe: Optional[Callable[[Any], Optional[dict]]] = None


@dataclass
class CallbackSpec:
    """A training callback a plugin registers, named as Keras and Lightning users expect.

    ``make(config)`` gets the run's resolved config (plain data) and returns an object with any of:
    ``on_run_start(run)`` (``run.name``, ``run.config``, ``run.folder``, ``run.main``: whether this
    process writes files), ``on_stage_start(stage, control)`` (``control.model``, ``control.lr``,
    ``control.set_lr(value)``, ``control.stop()``), ``on_epoch_start(epoch, batches)``,
    ``on_batch_end(step)``, ``on_epoch_end(epoch, logs)`` (``logs``: ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, ``lr``, ``stage``; returning True ends the stage),
    ``on_stage_end(stage, control)`` and ``on_run_end(metrics)``; ``state_dict()`` /
    ``load_state_dict(state)`` put its state in the checkpoint, so ``--resume`` continues it.
    ``default`` callbacks are in every run (they act on recipe words such as ``early_stopping``);
    others are chosen with ``--callback NAME``.
    """

    name: str
    make: Callable[[dict], Any]
    description: str = ""
    default: bool = False


@dataclass(frozen=True)
class Column:
    """A leaderboard column an evaluator declares for one of its fields: ``title`` heads it in
    ``leaderboard.md``'s table, ``legend`` is the sentence the legend above the table says of it,
    ``digits`` how many decimals it shows (with ``± <field>_ci95`` when the rows have it).
    Every field is in ``leaderboard.csv`` whether declared or not; a declared one is also shown."""

    field: str
    title: str
    legend: str = ""
    digits: int = 4


@dataclass
class EvaluatorSpec:
    """A set of test-set metrics a plugin registers.

    ``evaluate(ctx)`` runs once per trained stage and returns a dict: its numbers become result
    fields and leaderboard columns (other JSON values are kept in ``metrics.json``). ``ctx`` holds
    ``model`` (eval mode, on the run's device), ``predict(x_uint8) -> logits`` (the harness's batched
    path with the run's device, layout, precision and test-time augmentation), ``test_x`` (uint8,
    N x 3 x H x W), ``test_y``, ``classes``, ``input_size``, ``logits`` (of the plain test pass),
    ``folder`` (the model's output folder, for files the report shows), ``stage``, ``config`` (the
    run's settings as plain data), ``recipe`` (the same recipe, typed: for ``predictor(model,
    recipe, input_size, accel)`` with other test-time settings), ``options`` and ``main``. ``options`` are this evaluator's settings with their defaults, changed
    with ``--set eval.<name>.<key>=value``. ``report(results, folder)``, if given, returns the
    report's section for this evaluator. ``default`` evaluators always run; others are chosen with
    ``--eval NAME``. ``columns`` (``Column``) are the fields the leaderboard's table shows, each
    with its title and legend line, once a row has them; ``headline=("ece", "ECE")`` is short for
    one column with no legend. Every field is in ``leaderboard.csv`` either way.
    """

    name: str
    evaluate: Callable[[Any], dict]
    description: str = ""
    default: bool = False
    options: dict = field(default_factory=dict)
    report: Optional[Callable[[list, Any], str]] = None
    columns: tuple = ()  # of Column
    headline: Optional[tuple] = None  # (field, column title): one column, no legend

    def __post_init__(self):
        if self.headline and not self.columns:
            self.columns = (Column(*self.headline),)


@dataclass
class CatalogSpec:
    """A catalog of architectures a plugin answers ``resolve_model`` for: ``<name>:<architecture>``.

    ``names(pattern)`` lists the architectures matching a shell-style pattern (``resnet*``), for
    ``harness list --catalog NAME``.
    """

    name: str
    names: Callable[[str], list]
    description: str = ""


@dataclass
class ExecutorSpec:
    """How a run's jobs are carried out: one after another here, as Ray tasks, on a scheduler.

    ``run(jobs, context)`` carries out every job (``harness.executors``: ``run_job`` trains one in
    this process) and calls ``context.finished(outcome)`` as each ends. ``options`` maps each
    option's name to its default; every one is a ``harness run --<name>`` flag (underscores as
    dashes, typed like the default) described by ``help[name]``, and reaches ``run`` as
    ``context.options``. ``check(options, request)``, if given, refuses options that cannot work
    (a one-line ``HarnessError``) before anything is loaded. ``slots(options)``, if given, says how
    many jobs it runs side by side (``harness tune`` asks its study for that many trials at once).
    """

    name: str
    run: Callable[[list, Any], None]
    options: dict = field(default_factory=dict)
    help: dict = field(default_factory=dict)
    description: str = ""
    check: Optional[Callable[[dict, Any], None]] = None
    slots: Optional[Callable[[dict], int]] = None
