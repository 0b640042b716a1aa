"""Finds plugins through the ``harness`` entry-point group and collects what they register.

Each plugin is imported and called inside its own guard: a broken plugin is reported in one line
and the others keep working (llm's known pain, done better).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from harness import hookspecs
from harness.specs import DatasetSpec, ModelSpec

ENTRY_POINT_GROUP = "harness"


@dataclass
class Registered:
    """Something a plugin registered, with the plugin it came from."""

    spec: object
    plugin: str  # entry-point name
    package: str  # distribution that declared the entry point


@dataclass
class Registry:
    models: dict = field(default_factory=dict)  # name -> Registered(ModelSpec)
    datasets: dict = field(default_factory=dict)  # name -> Registered(DatasetSpec)
    problems: list = field(default_factory=list)  # one line per broken plugin or registration
    plugins: list = field(default_factory=list)  # (entry-point name, package, module) loaded fine


def _entry_points():
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _make_register(registry: Registry, table: dict, kind: type, plugin: str, package: str):
    def register(spec):
        if not isinstance(spec, kind):
            raise TypeError(f"register() expects a {kind.__name__}, got {type(spec).__name__}")
        if spec.name in table:
            other = table[spec.name].plugin
            raise ValueError(f"{kind.__name__} '{spec.name}' is already registered by plugin '{other}'")
        table[spec.name] = Registered(spec, plugin, package)

    return register


def load(extra_plugins=(), report=True) -> Registry:
    """Load every plugin in the entry-point group (plus ``extra_plugins`` modules or objects).

    ``report`` prints one line per broken plugin on stderr.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    candidates = [(ep.name, ep.dist.name if ep.dist else "?", ep) for ep in _entry_points()]
    candidates += [(getattr(p, "__name__", repr(p)), "(in-process)", p) for p in extra_plugins]

    for name, package, source in candidates:
        try:
            plugin = source.load() if isinstance(source, metadata.EntryPoint) else source
            pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is that plugin's problem
            registry.problems.append(f"plugin '{name}' ({package}) failed to load: {_describe(exc)}")
            continue
        try:
            pm.check_pending()  # a misspelled hook is an error, not silence
        except pluggy.PluginValidationError as exc:
            pm.unregister(plugin)
            registry.problems.append(f"plugin '{name}' ({package}) is invalid: {exc}")
            continue
        registry.plugins.append((name, package, getattr(plugin, "__name__", repr(plugin))))
        for hook, table, kind in (
            (pm.hook.register_models, registry.models, ModelSpec),
            (pm.hook.register_datasets, registry.datasets, DatasetSpec),
        ):
            for impl in hook.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(register=_make_register(registry, table, kind, name, package))
                except Exception as exc:  # noqa: BLE001
                    registry.problems.append(
                        f"plugin '{name}' ({package}) failed in {hook.name}: {_describe(exc)}"
                    )
    if report:
        for line in registry.problems:
            print(f"harness: warning: {line}", file=sys.stderr)
    return registry


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
