"""Finds plugins through the ``harness`` entry-point group and collects what they register.

Each plugin is imported and called inside its own guard: a broken plugin is reported in one line
and the others keep working (llm's known pain, done better).
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Any
from importlib import metadata

import pluggy

from harness import hookspecs
from harness.errors import HarnessError, one_line, unknown
from harness.log import warn
from harness.specs import CallbackSpec, CatalogSpec, DatasetSpec, EvaluatorSpec, ExecutorSpec, ModelSpec

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
    callbacks: dict = field(default_factory=dict)  # name -> Registered(CallbackSpec)
    evaluators: dict = field(default_factory=dict)  # name -> Registered(EvaluatorSpec)
    catalogs: dict = field(default_factory=dict)  # name -> Registered(CatalogSpec)
    executors: dict = field(default_factory=dict)  # name -> Registered(ExecutorSpec)
    problems: list = field(default_factory=list)  # one line per broken plugin or registration
    errors: list = field(default_factory=list)  # one line per plugin implementing a hook that does not exist
    plugins: list = field(default_factory=list)  # (entry-point name, package, module) loaded fine
    resolvers: list = field(default_factory=list)  # (plugin, package, resolve_model) in the order loaded
    resolved: dict = field(default_factory=dict)  # name -> Registered(ModelSpec) a resolver gave

    def report(self) -> None:
        """A command's check of its plugins: one line per broken plugin on stderr, and a one-line
        error when a plugin implements a hook that does not exist (a misspelled hook would otherwise
        be silently never called, as pytest's ``check_pending`` also refuses)."""
        for line in self.problems:
            warn(line)
        if self.errors:
            raise HarnessError(self.errors[0])

    def model(self, name: str) -> Registered:
        """A registered model, or one a ``resolve_model`` plugin answers for (asked once per name);
        a one-line error naming close registered names when none does."""
        if name in self.models:
            return self.models[name]
        if name not in self.resolved:
            self.resolved[name] = self._resolve(name)
        return self.resolved[name]

    def _resolve(self, name: str) -> Registered:
        """The first resolver's answer for ``name``, in the order the plugins loaded."""
        for plugin, package, resolve in self.resolvers:
            try:
                spec = resolve(name=name)
            except HarnessError:
                raise
            except Exception as exc:  # noqa: BLE001 - that plugin's failure, named
                raise HarnessError(f"plugin '{plugin}' ({package}) failed to resolve model '{name}': "
                                   f"{one_line(exc)}") from None
            if spec is None:
                continue
            if not isinstance(spec, ModelSpec) or spec.name != name:
                raise HarnessError(f"plugin '{plugin}' ({package}) resolved model '{name}' to "
                                   f"{getattr(spec, 'name', type(spec).__name__)!r}, not a ModelSpec of that name")
            return Registered(spec, plugin, package)
        catalogs = ", ".join(f"{c}:<name>" for c in self.catalogs)
        raise unknown("model", name, self.models, "see 'harness list'" + (f", or name one as {catalogs}"
                                                                          if catalogs else ""))


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

    ``report``: check the plugins at once (``Registry.report``). A command loads them once, in
    ``cli.main``, and hands the registry down; nothing below it loads them again.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    # (name, package, how to get the plugin); entry points are told apart by where they came from,
    # not by class: some packages (mlflow's dependencies) swap importlib.metadata's EntryPoint class
    candidates = [(ep.name, ep.dist.name if ep.dist else "?", ep.load) for ep in _entry_points()]
    candidates += [(getattr(p, "__name__", repr(p)), "(in-process)", lambda p=p: p) for p in extra_plugins]

    for name, package, get in candidates:
        try:
            plugin = get()
            pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is that plugin's problem
            registry.problems.append(f"plugin '{name}' ({package}) failed to load: {one_line(exc)}")
            continue
        if not _hooks_exist(pm, plugin, name, package, registry):
            continue
        registry.plugins.append((name, package, getattr(plugin, "__name__", repr(plugin))))
        for hook, table, kind in (
            (pm.hook.register_models, registry.models, ModelSpec),
            (pm.hook.register_datasets, registry.datasets, DatasetSpec),
            (pm.hook.register_callbacks, registry.callbacks, CallbackSpec),
            (pm.hook.register_evaluators, registry.evaluators, EvaluatorSpec),
            (pm.hook.register_catalogs, registry.catalogs, CatalogSpec),
            (pm.hook.register_executors, registry.executors, ExecutorSpec),
        ):
            for impl in hook.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(register=_make_register(registry, table, kind, name, package))
                except Exception as exc:  # noqa: BLE001
                    registry.problems.append(
                        f"plugin '{name}' ({package}) failed in {hook.name}: {one_line(exc)}"
                    )
        registry.resolvers += [(name, package, impl.function) for impl in pm.hook.resolve_model.get_hookimpls()
                               if impl.plugin is plugin]
    if report:
        registry.report()
    return registry


def _hooks_exist(pm, plugin, name: str, package: str, registry: Registry) -> bool:
    """Whether every hook ``plugin`` implements exists; if not, it is unregistered and the error
    recorded (a misspelled hook is an error, not silence)."""
    try:
        pm.check_pending()
        return True
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        registry.errors.append(_not_a_hook(pm, plugin, name, package) or f"plugin '{name}' ({package}) is "
                               f"invalid: {one_line(exc)}")
        return False


def _not_a_hook(pm, plugin, name: str, package: str) -> str | None:
    """'plugin 'x' (pkg): register_model is not a hook; did you mean register_models?', or None."""
    hooks = [h for h in dir(hookspecs) if pm.parse_hookspec_opts(hookspecs, h) is not None]
    wrong = [attr for attr in dir(plugin) if attr not in hooks and pm.parse_hookimpl_opts(plugin, attr) is not None]
    if not wrong:
        return None
    close = difflib.get_close_matches(wrong[0], hooks, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else f"the hooks: {', '.join(hooks)}"
    return f"plugin '{name}' ({package}) implements '{wrong[0]}', which is not a hook; {hint} (see docs/plugins.md)"


@dataclass
class Evaluator:
    """A chosen evaluator: its spec, the plugin it came from and its resolved options."""

    name: str
    plugin: str
    spec: Any
    options: dict = field(default_factory=dict)


def choose_evaluators(registry, chosen=(), options=None) -> list:
    """The default evaluators (``classification``) then the ``chosen`` ones, with their options:
    the spec's defaults overridden by ``options[name]`` (from ``--set eval.<name>.<key>=value``)."""
    from harness.settings import typed_like

    options = options or {}
    for name in list(chosen) + list(options):
        if name not in registry.evaluators:
            raise unknown("evaluator", name, registry.evaluators, "see 'harness list'")
    names = [name for name, r in registry.evaluators.items() if r.spec.default]
    names += [name for name in chosen if name not in names]
    out = []
    for name in names:
        registered = registry.evaluators[name]
        settings = dict(registered.spec.options)
        for key, value in options.get(name, {}).items():
            if key not in settings:
                raise unknown("option", key, settings, f"of evaluator '{name}'; its options: {', '.join(settings) or 'none'}")
            settings[key] = typed_like(value, settings[key], f"eval.{name}.{key}")
        out.append(Evaluator(name, registered.plugin, registered.spec, settings))
    return out


@functools.lru_cache(maxsize=1)
def installed() -> Registry:
    """The installed plugins, loaded once per process: for a process that starts without a command
    (a Ray worker), which loads them itself."""
    return load(report=False)
