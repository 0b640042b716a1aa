"""The flags several commands share, each defined once: the models and data of ``run`` and
``tune``, the evaluators, the device and precision, and the executors with their options."""
from __future__ import annotations

import argparse


def add_selection_options(parser) -> None:
    """What ``run`` and ``tune`` share: the models, the data, the profile, the recipe's settings,
    the callbacks and the weights."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every registered model")
    which.add_argument("--model", nargs="+", metavar="NAME", help="one or more model names")
    parser.add_argument("--profile", default="quick", help="smoke | quick | full (default: quick)")
    parser.add_argument("--data", metavar="PATH", help="a folder, zip or .tar.gz a dataset plugin reads (see "
                        "'harness list'; default: a dataset's file in $HARNESS_DATA_DIR)")
    parser.add_argument("--dataset", metavar="NAME", help="dataset plugin to read --data with (default: detected)")
    parser.add_argument("--download", action="store_true", help="when no data is found, the dataset (--dataset, "
                        "else the first that can) downloads itself into the data folder")
    parser.add_argument("--out", default="results", metavar="DIR", help="results folder (default: results)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set epochs=3 --set stages.train.lr=1e-4")
    parser.add_argument("--callback", action="append", default=[], metavar="NAME",
                        help="also run this callback plugin, e.g. tensorboard or mlflow (repeatable; see 'harness list')")
    parser.add_argument("--weights-dir", metavar="DIR", help="pretrained weights files named <timm arch>.*.safetensors"
                        "|.pth (default: $HARNESS_WEIGHTS_DIR)")
    parser.add_argument("--no-pretrained", action="store_true", help="train transfer models from scratch")


def add_eval_option(parser) -> None:
    parser.add_argument("--eval", action="append", metavar="NAME[,NAME...]",
                        help="evaluators to run besides classification: calibration, robustness, latency or a "
                        "plugin's (default: the profile's; 'none' for none)")


def add_accel_options(parser) -> None:
    group = parser.add_argument_group("speed (defaults: GPU if present, channels-last; bf16 autocast on a GPU, and "
                                      "on a CPU with native bf16 where the model gains from it)")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                       help="force bfloat16 autocast on (--amp) or off (--no-amp) for every model and phase "
                       "(default: auto)")
    group.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                       help="NHWC memory layout for the model and its inputs (default: on)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model (first epoch pays for it)")


def executor_options_given(args) -> dict:
    """The executor options the command line gave (``--job-cpus 2`` -> ``{"job_cpus": 2.0}``)."""
    return {k[len("executor_"):]: v for k, v in vars(args).items() if k.startswith("executor_") and v is not None}


def add_executor_options(run, registry) -> None:
    """``--executor NAME`` and every registered executor's options as flags (an option two executors
    share is one flag)."""
    group = run.add_argument_group("executors (each job, a model x variant x seed, carried out by a plugin; "
                                   "see 'harness list')")
    described = "; ".join(f"{name}: {r.spec.description}" for name, r in sorted(registry.executors.items()))
    group.add_argument("--executor", default="local", metavar="NAME", help=f"{described} (default: local)")
    seen = set()
    for name, registered in sorted(registry.executors.items()):
        for option, default in registered.spec.options.items():
            if option in seen:
                continue
            seen.add(option)
            group.add_argument("--" + option.replace("_", "-"), dest=f"executor_{option}", default=None,
                               type=type(default) if default is not None else str,
                               metavar=option.split("_")[-1].upper(),
                               help=registered.spec.help.get(option, f"with --executor {name}"))
