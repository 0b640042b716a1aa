"""What ``harness run`` is asked, whichever way it comes in: the command line's flags
(``harness.cli``) and ``harness.run``'s keywords (``harness.api``) both become one ``RunOptions``,
and ``start`` checks it and runs it: torchrun's processes for ``nproc``, else the runner on the
``RunRequest`` made here, every name checked first. Nothing here parses command-line text."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, unknown


@dataclass
class RunOptions:
    """The user's words for a run, typed; the names are ``harness run``'s flags."""

    models: list | None = None  # None: every registered model (--all)
    profile: str = "quick"
    out: Path = Path("results")
    data: str | None = None
    dataset: str | None = None
    download: bool = False
    seed: list = field(default_factory=list)  # --seed N, given once or more
    seeds: int | None = None  # --seeds K: 0..K-1
    set: dict = field(default_factory=dict)  # --set KEY=VALUE: recipe values and eval.<name>.<option>
    eval: list | None = None  # --eval: None for the profile's evaluators
    callback: list = field(default_factory=list)
    variant: str | None = None
    ablate: str | None = None
    weights_dir: Path | None = None
    no_pretrained: bool = False
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    nproc: int | None = None
    sync_bn: bool = False
    executor: str = "local"
    executor_options: dict = field(default_factory=dict)  # the chosen executor's options, as given
    resume: bool = False
    overwrite: bool = False
    tuned: Path | None = None  # a folder 'harness tune' wrote: each model trains with its best settings


def argv_of(options: RunOptions) -> list:
    """The ``harness run`` arguments equal to ``options`` (what differs from the defaults): the
    command ``harness.run`` records, and what torchrun's processes run."""
    argv = ["run", *(["--all"] if options.models is None else ["--model", *options.models])]
    defaults = RunOptions()
    for item in dataclasses.fields(RunOptions):
        value = getattr(options, item.name)
        if item.name in ("models", "executor_options") or value == getattr(defaults, item.name):
            continue
        argv += _words(item.name, value)
    for key, value in options.executor_options.items():
        argv += _words(key, value)
    return argv


def _words(name: str, value) -> list:
    flag = "--" + name.replace("_", "-")
    if name == "set":
        return [word for key, item in value.items() for word in ("--set", f"{key}={_text(item)}")]
    if isinstance(value, (list, tuple)):
        return [word for item in value for word in (flag, str(item))]
    if name in ("amp", "channels_last") and value is False:
        return ["--no-" + name.replace("_", "-")]
    if isinstance(value, bool):
        return [flag] if value else []
    return [flag, str(value)]


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def start(options: RunOptions, registry, command: str) -> int:
    """Run what ``options`` ask: with ``nproc``, torchrun's processes each run the same options
    without it (``argv_of``); else the runner, in this process. ``command`` is the shell command
    the run records (``config.json``)."""
    from harness import distributed, runner

    check_executor_options(registry, options.executor, options.executor_options)
    under_torchrun = distributed.from_environment().active
    if options.executor != "local" and (options.nproc is not None or under_torchrun):
        raise HarnessError(f"--executor {options.executor} runs each job in one process; --nproc/torchrun spread "
                           "one job over several: use one or the other (see docs/scaling.md)")
    if options.nproc is not None:
        if options.nproc < 1:
            raise HarnessError("--nproc must be at least 1")
        if under_torchrun:
            raise HarnessError("--nproc is for starting processes; under torchrun leave it out")
        return distributed.launch(options.nproc, argv_of(dataclasses.replace(options, nproc=None)))
    request = request_of(options, registry, command)
    if options.sync_bn and not request.accel.on_gpu:
        raise HarnessError("--sync-bn needs CUDA GPUs (torch's SyncBatchNorm is GPU-only); on CPUs each process "
                           "normalises its own part of the batch and rank 0's running statistics are kept")
    world = distributed.init(request.accel.device)
    if world.active and request.accel.on_gpu:
        request.accel = dataclasses.replace(request.accel, device=f"cuda:{world.local_rank}")
    try:
        return runner.run(registry, request)
    finally:
        distributed.shutdown()


def request_of(options: RunOptions, registry, command: str):
    """The ``RunRequest`` of ``options``, every model, callback and setting name checked."""
    from harness.jobs import RunRequest
    from harness.profiles import evaluator_names
    from harness.settings import split_eval_options

    if options.models is None:
        names = sorted(registry.models)
        if not names:
            raise HarnessError("no models are registered; install a model plugin (see 'harness list')")
    else:
        names = list(dict.fromkeys(options.models))
        for name in names:
            registry.model(name)  # a one-line error for a name nothing registered or resolves
    for name in options.callback:
        if name not in registry.callbacks:
            raise unknown("callback", name, registry.callbacks, "see 'harness list'")
    overrides, eval_options = split_eval_options(dict(options.set))
    return RunRequest(
        models=names, profile=options.profile, data=options.data, dataset=options.dataset, download=options.download,
        out=Path(options.out), seeds=seeds_of(options), overrides=overrides,
        evaluators=evaluator_names(options.eval, options.profile), eval_options=eval_options,
        callbacks=list(dict.fromkeys(options.callback)), command=command, resume=options.resume,
        overwrite=options.overwrite, ablate=options.ablate, variant=options.variant,
        weights_dir=Path(options.weights_dir) if options.weights_dir is not None else None,
        pretrained=not options.no_pretrained, skip_missing_weights=options.models is None,
        # an executor whose jobs get GPUs (--job-gpus) runs them on its machines' GPUs, not this one's
        accel=task_gpu_accel(options) if options.executor_options.get("job_gpus") else accel_of(options),
        sync_bn=options.sync_bn, executor=options.executor, executor_options=dict(options.executor_options),
        tuned=tuned_settings(options.tuned, names) if options.tuned is not None else {})


def tuned_settings(folder, models: list) -> dict:
    """Each model's best settings from ``folder`` (``harness tune --out``), with what they were
    found under: the model must have been tuned there."""
    import json

    from harness.tuning.files import BEST

    found = {}
    for model in models:
        path = Path(folder) / model / "tuning" / BEST
        if not path.is_file():
            raise HarnessError(f"--tuned {folder}: no finished tuning of '{model}' there (expected {path}); "
                               f"run harness tune --model {model} --out {folder} first")
        best = json.loads(path.read_text())
        found[model] = {"set": best["set"], "from": str(folder), "trials": best["trials"], "val_acc": best["val_acc"],
                        "budget": best["budget_text"], "trial": best["trial"]}
    return found


def check_executor_options(registry, executor: str, given: dict) -> None:
    """An unknown executor, or an option of another executor, is a one-line error (the executor
    checks the values when the run starts)."""
    if executor not in registry.executors:
        raise unknown("executor", executor, registry.executors, "see 'harness list'")
    foreign = sorted(set(given) - set(registry.executors[executor].spec.options))
    if foreign:
        owners = {name for name, r in registry.executors.items() if foreign[0] in r.spec.options}
        if not owners:
            raise unknown("executor option", foreign[0], executor_option_names(registry), "see 'harness run --help'")
        raise HarnessError(f"--{foreign[0].replace('_', '-')}: only used with --executor {' or '.join(sorted(owners))}")


def executor_option_names(registry) -> list:
    """Every installed executor's option names, each once."""
    return list(dict.fromkeys(o for _, r in sorted(registry.executors.items()) for o in r.spec.options))


def seeds_of(options) -> list:
    if options.seeds is not None and options.seed:
        raise HarnessError("give either --seeds K or --seed N (once or more), not both")
    if options.seeds is not None:
        if options.seeds < 1:
            raise HarnessError("--seeds must be at least 1")
        return list(range(options.seeds))
    return list(dict.fromkeys(options.seed or [0]))


def accel_of(options):
    """Device and precision from ``device``, ``amp``, ``channels_last``, ``compile`` (a run's or a bench's)."""
    from harness.accel import Accel

    return Accel.choose(options.device, options.amp, options.channels_last, options.compile)


def task_gpu_accel(options):
    """With --job-gpus the tasks' machines have the GPUs, not necessarily this one: CUDA, on the GPU
    defaults, without asking this machine's torch (a task without a GPU fails on its own)."""
    from harness.accel import Accel

    if options.device not in ("auto", "cuda") and not options.device.startswith("cuda:"):
        raise HarnessError(f"--job-gpus runs jobs on GPUs; --device {options.device} contradicts it")
    device = "cuda" if options.device == "auto" else options.device
    return Accel.choose(device, options.amp, options.channels_last, options.compile, here=False)
