"""The settings a config holds and ``--set``'s language for them: ``key=value`` pairs whose dotted
keys name a field (``epochs`` for every stage, ``stages.train.lr`` for one, ``augment.rotation``,
``data.val_size``) and whose text values are typed by the field they set."""
from __future__ import annotations

import dataclasses
import json
import typing

from harness.errors import HarnessError, unknown
from harness.specs import Augment, EarlyStopping, Recipe, ReduceLROnPlateau, Stage


@dataclasses.dataclass
class DataConfig:
    """Which images a run trains, validates and tests on (``--set data.<field>=...``)."""

    # held out of the training set, stratified; None: 10% of the training images, at most 5,000
    # (50,000 training images keep 5,000; a folder of 1,500 images keeps 150)
    val_size: typing.Optional[int] = None
    train_size: typing.Optional[int] = None  # stratified cap on training images (None: all)
    test_size: typing.Optional[int] = None  # stratified cap on test images (None: all)
    # which images are held out for validation; None: the run's seed, so that repeats over seeds
    # vary the split too (every source of randomness); a number pins one split for every seed
    split_seed: typing.Optional[int] = None


# the nested dataclasses a key may descend into, by field name
NESTED = {"early_stopping": EarlyStopping, "reduce_lr": ReduceLROnPlateau, "augment": Augment, "data": DataConfig}
MONITORED = ("early_stopping", "reduce_lr")  # the callbacks a stage may switch off


def _fields(cls) -> dict:
    return typing.get_type_hints(cls)


# the keys of a config outside its stages, with their types: the recipe's own, the input size and
# the data settings
TOP_LEVEL = {"input_size": int, "data": DataConfig,
             **{name: kind for name, kind in _fields(Recipe).items() if name != "stages"}}


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


def set_value(config: dict, key: str, value) -> None:
    """Apply one override; a key that names a stage field applies to every stage."""
    parts = key.split(".")
    stage_names = [s["name"] for s in config["stages"]]
    if parts[0] == "stages":
        if len(parts) < 3:
            raise HarnessError(f"--set {key}: write stages.<stage>.<field>, stages are {', '.join(stage_names)}")
        if parts[1] not in stage_names:
            raise unknown("stage", parts[1], stage_names, f"in '{key}'; this model's stages: {', '.join(stage_names)}")
        _assign(config["stages"][stage_names.index(parts[1])], _fields(Stage), parts[2:], value, key)
    elif parts[0] in _fields(Stage) and parts[0] not in TOP_LEVEL:
        for stage in config["stages"]:
            _assign(stage, _fields(Stage), parts, value, key)
    elif parts[0] in TOP_LEVEL:
        _assign(config, TOP_LEVEL, parts, value, key)
    else:
        choices = sorted(set(_fields(Stage)) | set(TOP_LEVEL) | {"stages"})
        raise unknown("setting", parts[0], choices, f"in --set {key}")



def _defaults(nested) -> dict:
    """A block's default settings as a config holds them before it is resolved: a monitor's mode
    left to the monitor (None), so that a monitor set after it brings its own."""
    values = dataclasses.asdict(nested())
    return {**values, "mode": None} if "mode" in values else values


def _assign(target: dict, types: dict, parts: list, value, key: str) -> None:
    """Set ``parts`` (a dotted key's words) in ``target``, whose fields have ``types``."""
    name, rest = parts[0], parts[1:]
    if name not in types or name == "name":
        raise unknown("setting", name, [n for n in types if n != "name"], f"in --set {key}")
    if name in NESTED:
        nested = NESTED[name]
        if not rest:  # the whole block: only "none" (turn a callback off) or "default"
            parsed = _parse(value)
            if parsed is None and name in MONITORED:
                target[name] = None
            elif parsed == "default":
                target[name] = _defaults(nested)
            else:
                raise HarnessError(f"--set {key}={value}: set a field such as {key}.{next(iter(_fields(nested)))}, or 'none'")
            return
        if target.get(name) is None:  # turning a callback on: start from its defaults
            target[name] = _defaults(nested)
        _assign(target[name], _fields(nested), rest, value, key)
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
