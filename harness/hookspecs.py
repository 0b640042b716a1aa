"""The whole plugin contract: hooks handed a ``register`` callback, and one that resolves a name."""
import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


@hookspec
def register_models(register):
    """Call ``register(ModelSpec(...))`` once for each model this plugin provides."""


@hookspec
def register_datasets(register):
    """Call ``register(DatasetSpec(...))`` once for each dataset this plugin provides."""


@hookspec
def register_callbacks(register):
    """Call ``register(CallbackSpec(...))`` once for each training callback this plugin provides."""


@hookspec
def register_evaluators(register):
    """Call ``register(EvaluatorSpec(...))`` once for each evaluator (metric set) this plugin provides."""


@hookspec
def register_executors(register):
    """Call ``register(ExecutorSpec(...))`` once for each way of carrying out a run's jobs this plugin provides."""


@hookspec
def register_catalogs(register):
    """Call ``register(CatalogSpec(...))`` once for each catalog of architectures this plugin answers for."""


@hookspec(firstresult=True)
def resolve_model(name):
    """Return a ``ModelSpec`` for a model name no plugin registered (``timm:resnet18``), or None."""
