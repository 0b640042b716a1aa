"""One resolved config per model run, as plain data: the model's recipe, then the harness's
profile settings (``harness.profiles``), then the model's own profile overrides, then the user's
``--set`` values (``harness.settings``); checked as a whole, and read back as the typed recipe the
trainer runs. A checkpoint's fingerprint is made from it too.
"""
from __future__ import annotations

import copy
import dataclasses

from harness.errors import HarnessError, unknown
from harness.freezing import TRAINABLE
from harness.profiles import PROFILES
from harness.settings import MONITORED, DataConfig, set_value
from harness.specs import MONITOR_MODES, Augment, EarlyStopping, ModelSpec, Recipe, ReduceLROnPlateau, Stage


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
    _leave_own_modes_out(config)  # a monitor changed below brings its own mode
    for layer in (PROFILES[profile], spec.profiles.get(profile, {}), overrides):
        for key, value in layer.items():
            set_value(config, key, value)
    if config["data"]["split_seed"] is None:
        config["data"]["split_seed"] = seed
    recipe = to_recipe(config)  # validates the whole thing; each monitor's mode is filled in there
    for raw, typed in zip(config["stages"], recipe.stages):
        for name in MONITORED:
            if raw.get(name):
                raw[name]["mode"] = getattr(typed, name).mode
    return config


def _monitors(config: dict):
    """(stage, key) of every monitor a config's stages have switched on."""
    return [(stage, name) for stage in config["stages"] for name in MONITORED if stage.get(name)]


def _leave_own_modes_out(config: dict) -> None:
    """A monitor's mode that is the monitor's own, left out (None): it trains the same as naming
    none, and a monitor set later brings its own."""
    for stage, name in _monitors(config):
        if stage[name].get("mode") == MONITOR_MODES.get(stage[name]["monitor"]):
            stage[name]["mode"] = None


def fingerprinted(config: dict) -> dict:
    """``config`` as a checkpoint's fingerprint reads it: a mode that is its monitor's own is left out,
    since it trains the same as a config that names none (which then resumes the checkpoint)."""
    config = copy.deepcopy(config)
    _leave_own_modes_out(config)
    for stage, name in _monitors(config):
        if stage[name].get("mode") is None:
            stage[name].pop("mode", None)
    return config


def to_recipe(config: dict) -> Recipe:
    """The typed recipe of a resolved config, every stage and setting checked."""
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
    from harness.optim import check_names  # the optimizer and schedule names the trainer builds

    check_names(stage)
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
