"""``harness tune``: its flags (the models, data and executor flags are ``harness run``'s) and the
command, which makes the run-like request the same way ``harness run`` does and hands it to the
driver (``harness.tuning.driver``)."""
from __future__ import annotations

import shlex
from pathlib import Path


def tune_command(commands, registry) -> None:
    from harness.cli_options import add_accel_options, add_executor_options, add_selection_options

    tune = commands.add_parser("tune", help="tune each model's recipe with the same budget (Optuna), on "
                               "validation images only")
    add_selection_options(tune)
    tune.add_argument("--trials", type=int, required=True, metavar="N", help="trials per model (finished, pruned "
                      "or failed on their own error; the same command continues a study up to N)")
    budget = tune.add_mutually_exclusive_group()
    budget.add_argument("--budget-epochs", type=int, metavar="N", help="each trial's epochs, shared among the "
                        "recipe's stages as the recipe shares them (default: the profile's epochs, if it sets them)")
    budget.add_argument("--budget-flop", type=float, metavar="X", help="each trial's training compute in FLOPs, "
                        "e.g. 2e14: each stage's epochs scaled to it, and a trial ends when it is spent")
    tune.add_argument("--pruner", default="hyperband", help="hyperband | halving | median | none | "
                      "threshold:ACC (stop trials below ACC validation accuracy) (default: hyperband)")
    tune.add_argument("--parallel", type=int, metavar="K", help="trials at once (default: as many as the "
                      "executor runs side by side: 1 for local)")
    tune.add_argument("--seed", type=int, default=0, help="the studies' seed, and the trials' (default: 0)")
    add_accel_options(tune)
    add_executor_options(tune, registry)


def cmd_tune(args, argv, registry) -> int:
    from harness.cli_options import executor_options_given
    from harness.profiles import PROFILES
    from harness.run_options import RunOptions, check_executor_options, request_of
    from harness.settings import parse_overrides
    from harness.tuning.budget import Budget
    from harness.tuning.driver import TuneRequest, tune

    given = executor_options_given(args)
    check_executor_options(registry, args.executor, given)
    overrides = parse_overrides(args.set)
    options = RunOptions(
        models=None if args.all else args.model, profile=args.profile, out=Path(args.out), data=args.data,
        dataset=args.dataset, download=args.download, seed=[args.seed], set=overrides, eval=["none"],
        callback=args.callback, weights_dir=args.weights_dir, no_pretrained=args.no_pretrained, device=args.device,
        amp=args.amp, channels_last=args.channels_last, compile=args.compile, executor=args.executor,
        executor_options=given)
    run = request_of(options, registry, "harness " + shlex.join(argv))
    if args.budget_epochs is None and args.budget_flop is None and "epochs" in PROFILES.get(args.profile, {}):
        args.budget_epochs = int(PROFILES[args.profile]["epochs"])
    budget = Budget(epochs=args.budget_epochs, flop=args.budget_flop)
    if args.parallel is not None and args.parallel < 1:
        from harness.errors import HarnessError

        raise HarnessError("--parallel must be at least 1")
    return tune(registry, TuneRequest(run, args.trials, budget, args.pruner, args.parallel, args.seed))
