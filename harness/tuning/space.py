"""A model's search space: ``--set`` keys mapped to the values a trial may give them.

A plugin declares its model's space with ``ModelSpec.search_space(config)``, handed the model's
resolved config (the profile's epochs and learning rates), usually ``default_space(config)`` plus
what matters for that kind of model; a model that declares none (a catalog architecture) is tuned
over ``default_space``: each stage's learning rate on a log scale from a tenth to ten times the
recipe's, weight decay on a log scale around the recipe's, and label smoothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import HarnessError

EDGE = 0.05  # a best value this close to an end of its range (a share of the range) is flagged


def _flagged(side: str | None, low) -> str | None:
    """A lower bound of 0 is no edge to widen: nothing (no smoothing, no translation) is below it."""
    return None if side == "lower" and low == 0 else side


@dataclass(frozen=True)
class Range:
    """A number from ``low`` to ``high``: on a log scale with ``log``, whole numbers with ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial, key: str):
        if self.integer:
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(key, self.low, self.high, log=self.log)

    def edge(self, value) -> str | None:
        """``lower`` or ``upper`` when ``value`` lies at that end of the range, else None."""
        scale = math.log if self.log else (lambda x: x)
        width = scale(self.high) - scale(self.low)
        if width <= 0:
            return None
        share = (scale(value) - scale(self.low)) / width
        return _flagged("lower" if share <= EDGE else "upper" if share >= 1 - EDGE else None, self.low)

    def describe(self) -> str:
        kind = "integer" if self.integer else "number"
        return f"{kind} {self.low:g} to {self.high:g}" + (", log scale" if self.log else "")


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple

    def suggest(self, trial, key: str):
        return trial.suggest_categorical(key, list(self.values))

    def edge(self, value) -> str | None:
        ordered = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)
        if not ordered or len(self.values) < 3:
            return None
        side = "lower" if value == min(self.values) else "upper" if value == max(self.values) else None
        return _flagged(side, min(self.values))

    def describe(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


def _stage_key(config: dict, stage: dict, field: str) -> str:
    """``lr`` for a one-stage recipe, ``stages.<name>.lr`` when there are several."""
    return field if len(config["stages"]) == 1 else f"stages.{stage['name']}.{field}"


def default_space(config: dict) -> dict:
    """Every model's space: learning rates, weight decay and label smoothing around its recipe."""
    space = {}
    for stage in config["stages"]:
        space[_stage_key(config, stage, "lr")] = Range(stage["lr"] / 10, stage["lr"] * 10, log=True)
    decays = [stage["weight_decay"] for stage in config["stages"] if stage["weight_decay"] > 0]
    decay = max(decays) if decays else None
    space["weight_decay"] = Range(decay / 10, decay * 10, log=True) if decay else Range(1e-6, 1e-3, log=True)
    space["label_smoothing"] = Range(0.0, 0.2)
    return space


def space_for(spec, config: dict) -> dict:
    """The model's declared space, or the default; checked to hold only ranges and choices."""
    declared = spec.search_space(config) if getattr(spec, "search_space", None) else default_space(config)
    for key, value in declared.items():
        if not isinstance(value, (Range, Choice)):
            raise HarnessError(f"model '{spec.name}': its search space gives '{key}' a {type(value).__name__}; "
                               "use harness.Range or harness.Choice")
        if isinstance(value, Range) and (value.low > value.high or (value.log and value.low <= 0)):
            raise HarnessError(f"model '{spec.name}': search space '{key}' has an empty range {value.describe()}")
        if isinstance(value, Choice) and not value.values:
            raise HarnessError(f"model '{spec.name}': search space '{key}' has no choices")
    return declared


def suggest(trial, space: dict) -> dict:
    """A trial's settings, as ``--set`` pairs."""
    return {key: domain.suggest(trial, key) for key, domain in space.items()}


def edges(best: dict, space: dict) -> list:
    """Lines naming each best value at an end of its range: "lr's best is its upper bound ..."."""
    found = []
    for key, domain in space.items():
        side = domain.edge(best[key]) if key in best else None
        if side:
            value = f"{best[key]:.3g}" if isinstance(best[key], float) else str(best[key])
            found.append(f"the best {key} ({value}) is at its {side} bound: widen the space")
    return found


def describe(space: dict) -> dict:
    """The space as plain data, for ``space.json`` and the report."""
    return {key: {"kind": type(domain).__name__.lower(), "text": domain.describe(),
                  **({"low": domain.low, "high": domain.high, "log": domain.log, "integer": domain.integer}
                     if isinstance(domain, Range) else {"values": list(domain.values)})}
            for key, domain in space.items()}
