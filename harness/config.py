"""One resolved config per model run, as plain data: the model's recipe, then the harness's
profile settings, then the model's own profile overrides, then the user's ``--set`` values.

Keys are dotted paths: ``epochs`` (every stage), ``stages.train.lr`` (one stage),
``early_stopping.patience``, ``augment.rotation``, ``data.val_size``, ``eval_batch_size``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import typing

from harness.errors import HarnessError, unknown
from harness.freezing import TRAINABLE
from harness.specs import MONITOR_MODES, Augment, EarlyStopping, ModelSpec, Recipe, ReduceLROnPlateau, Stage


@dataclasses.dataclass
class DataConfig:
    # held out of the training set, stratified; None: 10% of the training images, at most 5,000
    # (50,000 training images keep 5,000; a folder of 1,500 images keeps 150)
    val_size: typing.Optional[int] = None
    train_size: typing.Optional[int] = None  # stratified cap on training images (None: all)
    test_size: typing.Optional[int] = None  # stratified cap on test images (None: all)
    # which images are held out for validation; None: the run's seed, so that repeats over seeds
    # vary the split too (every source of randomness); a number pins one split for every seed
    split_seed: typing.Optional[int] = None


# Profile settings, in --set language. A model's own ``profiles`` entry is applied after these.
PROFILES = {
    "smoke": {  # seconds per model: for tests and CI
        "data.train_size": 1000,
        "data.val_size": 200,
        "data.test_size": 500,
        "epochs": 2,
    },
    "quick": {},  # a real result on a 2-core CPU: models set their own epoch budgets
    "full": {},  # the study's settings, for a GPU
}

# --ablate callbacks: the study's question, what early stopping and LR reduction each bring
ABLATIONS = {
    "callbacks": {
        "no-early-stopping": {"early_stopping": "none"},
        "no-reduce-lr": {"reduce_lr": "none"},
    },
}
# the variant names an ablation gives its runs (<model>@no-early-stopping, ...)
ABLATED_VARIANTS = frozenset(name for variants in ABLATIONS.values() for name in variants)

# evaluators each profile runs besides classification when --eval is not given (calibration costs
# nothing: it reads the logits the test pass computed anyway)
PROFILE_EVALUATORS = {"smoke": [], "quick": ["calibration"], "full": ["calibration"]}

# the nested dataclasses a key may descend into, by field name
NESTED = {"early_stopping": EarlyStopping, "reduce_lr": ReduceLROnPlateau, "augment": Augment, "data": DataConfig}


def resolve(spec: ModelSpec, profile: str, overrides: dict, seed: int = 0) -> dict:
    """The full config for one run of ``spec``, validated."""
    if profile not in PROFILES:
        raise unknown("profile", profile, PROFILES, f"choose one of: {', '.join(PROFILES)}")
    config = {
        "model": spec.name,
        "family": spec.family,
        "profile": profile,
        "seed": seed,
        "input_size": spec.size_for(profile),
        "data": dataclasses.asdict(DataConfig()),
        **dataclasses.asdict(copy.deepcopy(spec.recipe)),
    }
    for layer in (PROFILES[profile], spec.profiles.get(profile, {}), overrides):
        for key, value in layer.items():
            set_value(config, key, value)
    if config["data"]["split_seed"] is None:
        config["data"]["split_seed"] = seed
    to_recipe(config)  # validates the whole thing
    for stage, name in _monitors(config):  # each monitor names the way it improves
        stage[name]["mode"] = stage[name].get("mode") or MONITOR_MODES[stage[name]["monitor"]]
    return config


MONITORED = ("early_stopping", "reduce_lr")


def _monitors(config: dict):
    """(stage, key) of every monitor a config's stages have switched on."""
    return [(stage, name) for stage in config["stages"] for name in MONITORED if stage.get(name)]


def fingerprinted(config: dict) -> dict:
    """``config`` as a checkpoint's fingerprint reads it: a mode that is its monitor's own is left out,
    since it trains the same as a config that names none (which then resumes the checkpoint)."""
    config = copy.deepcopy(config)
    for stage, name in _monitors(config):
        if stage[name].get("mode") == MONITOR_MODES.get(stage[name]["monitor"]):
            del stage[name]["mode"]
    return config


def parse_overrides(pairs) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}``; values are typed when applied."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--set expects key=value, got '{pair}'")
        out[key.strip()] = value.strip()
    return out


def split_eval_options(overrides: dict) -> tuple[dict, dict]:
    """``--set`` values: recipe overrides, and ``eval.<evaluator>.<option>`` settings by evaluator."""
    recipe, options = {}, {}
    for key, value in overrides.items():
        if key.startswith("eval."):
            parts = key.split(".")
            if len(parts) != 3:
                raise HarnessError(f"--set {key}: write eval.<evaluator>.<option>=value, e.g. eval.robustness.severities=3-5")
            options.setdefault(parts[1], {})[parts[2]] = value
        else:
            recipe[key] = value
    return recipe, options


def evaluator_names(values, profile: str | None = None) -> list:
    """``--eval a,b --eval c`` -> [a, b, c]; without ``--eval``, the profile's default evaluators."""
    if not values:
        return list(PROFILE_EVALUATORS.get(profile, []))
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(name for name in names if name != "none"))


def set_value(config: dict, key: str, value) -> None:
    """Apply one override; a key that names a stage field applies to every stage."""
    parts = key.split(".")
    stage_names = [s["name"] for s in config["stages"]]
    if parts[0] == "stages":
        if len(parts) < 3:
            raise HarnessError(f"--set {key}: write stages.<stage>.<field>, stages are {', '.join(stage_names)}")
        if parts[1] not in stage_names:
            raise unknown("stage", parts[1], stage_names, f"in '{key}'; this model's stages: {', '.join(stage_names)}")
        _assign(config["stages"][stage_names.index(parts[1])], Stage, parts[2:], value, key)
    elif parts[0] in _fields(Stage) and parts[0] not in _TOP_LEVEL:
        for stage in config["stages"]:
            _assign(stage, Stage, parts, value, key)
    elif parts[0] in _TOP_LEVEL:
        _assign(config, _TopLevel, parts, value, key)
    else:
        choices = sorted(set(_fields(Stage)) | set(_TOP_LEVEL) | {"stages"})
        raise unknown("setting", parts[0], choices, f"in --set {key}")


@dataclasses.dataclass
class _TopLevel:
    """The keys of a config outside its stages (for typing --set values)."""

    input_size: int = 32
    data: DataConfig = None
    augment: Augment = None
    eval_batch_size: int = 500
    tta_flip: bool = False
    tta_translate: int = 0
    dropout: typing.Optional[float] = None


_TOP_LEVEL = [f.name for f in dataclasses.fields(_TopLevel)]


def _fields(cls) -> dict:
    return typing.get_type_hints(cls)


def _assign(target: dict, cls, parts: list, value, key: str) -> None:
    name, rest = parts[0], parts[1:]
    types = _fields(cls)
    if name not in types or name == "name":
        raise unknown("setting", name, [n for n in types if n != "name"], f"in --set {key}")
    if name in NESTED:
        nested = NESTED[name]
        if not rest:  # the whole block: only "none" (turn a callback off) or "default"
            parsed = _parse(value)
            if parsed is None and name in MONITORED:
                target[name] = None
            elif parsed == "default":
                target[name] = dataclasses.asdict(nested())
            else:
                raise HarnessError(f"--set {key}={value}: set a field such as {key}.{next(iter(_fields(nested)))}, or 'none'")
            return
        if target.get(name) is None:  # turning a callback on: start from its defaults
            target[name] = dataclasses.asdict(nested())
        _assign(target[name], nested, rest, value, key)
        return
    if rest:
        raise HarnessError(f"--set {key}: '{name}' has no fields")
    target[name] = _typed(value, types[name], key)


def _parse(text):
    if not isinstance(text, str):
        return text
    lowered = text.lower()
    if lowered in ("none", "null", ""):
        return None
    if lowered in ("true", "false", "yes", "no", "on", "off"):
        return lowered in ("true", "yes", "on")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _typed(value, annotation, key):
    parsed = _parse(value)
    args = typing.get_args(annotation)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), annotation) if args else annotation
    if parsed is None:
        if optional:
            return None
        raise HarnessError(f"--set {key}: a value is required ({base.__name__})")
    if base is bool:
        if isinstance(parsed, bool):
            return parsed
    elif base is int:
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
    elif base is float:
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return float(parsed)
    elif base is str:
        return str(parsed)
    raise HarnessError(f"--set {key}={value}: expected {base.__name__}, got '{value}'")


def typed_like(value, default, key: str):
    """``value`` (text from ``--set``) as the type of ``default`` (an option's default value)."""
    annotation = type(default) if default is not None else str
    return _typed(value, annotation, key)


# --- from plain data back to the dataclasses the trainer uses ---------------------------------

def to_recipe(config: dict) -> Recipe:
    stages = []
    for raw in config["stages"]:
        stage = Stage(
            **{
                **raw,
                "early_stopping": raw["early_stopping"] and EarlyStopping(**raw["early_stopping"]),
                "reduce_lr": raw["reduce_lr"] and ReduceLROnPlateau(**raw["reduce_lr"]),
            }
        )
        _check_stage(stage)
        stages.append(stage)
    if not stages:
        raise HarnessError(f"model '{config['model']}' has no training stages")
    if not 0 <= config.get("tta_translate", 0) < config["input_size"] // 2:
        raise HarnessError("tta_translate must be between 0 and half the input size")
    if not 0 <= config["augment"].get("translate", 0) < config["input_size"] // 2:
        raise HarnessError("augment.translate must be between 0 and half the input size")
    if config.get("dropout") is not None and not 0 <= config["dropout"] < 1:
        raise HarnessError("dropout must be in [0, 1), or none for the model's own")
    return Recipe(
        stages=stages,
        augment=Augment(**config["augment"]),
        eval_batch_size=config["eval_batch_size"],
        tta_flip=config["tta_flip"],
        tta_translate=config.get("tta_translate", 0),  # configs written before it existed lack these
        dropout=config.get("dropout"),
    )


def data_config(config: dict) -> DataConfig:
    return DataConfig(**config["data"])


def _check_stage(stage: Stage) -> None:
    where = f"stage '{stage.name}'"
    if not TRAINABLE.match(stage.trainable):
        raise HarnessError(f"{where}: trainable='{stage.trainable}'; use all, head, or last:N")
    from harness.optim import OPTIMIZERS, SCHEDULES  # the names the trainer builds

    if stage.optimizer not in OPTIMIZERS:
        raise unknown("optimizer", stage.optimizer, OPTIMIZERS, f"in {where}; choose {', '.join(OPTIMIZERS)}")
    if stage.schedule is not None and stage.schedule not in SCHEDULES:
        raise unknown("schedule", str(stage.schedule), SCHEDULES, f"in {where}; or none")
    if stage.schedule and stage.reduce_lr:
        raise HarnessError(f"{where}: a fixed schedule and reduce_lr exclude each other; set one to none")
    if stage.epochs < 1 or stage.batch_size < 1 or stage.lr <= 0:
        raise HarnessError(f"{where}: epochs, batch_size and lr must be positive")
    for callback in (stage.early_stopping, stage.reduce_lr):
        if callback and callback.monitor not in MONITOR_MODES:
            raise HarnessError(f"{where}: monitor must be {' or '.join(MONITOR_MODES)}, got '{callback.monitor}'")
        if callback and callback.mode not in (None, "max", "min"):
            raise HarnessError(f"{where}: mode must be max or min (or none for the monitor's own), got '{callback.mode}'")
        if callback and callback.patience < 1:
            raise HarnessError(f"{where}: patience must be at least 1 (set the callback to none to turn it off)")
    if stage.norm_lr_scale <= 0 or not 0 <= stage.lookahead < 1:
        raise HarnessError(f"{where}: norm_lr_scale must be positive and lookahead in [0, 1)")
    if stage.reduce_lr and not 0 < stage.reduce_lr.factor < 1:
        raise HarnessError(f"{where}: reduce_lr.factor must be between 0 and 1")
