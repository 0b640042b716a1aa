"""The command line: ``harness list``, ``harness run``, ``harness leaderboard``.

Nothing heavy is imported at start-up: torch loads only inside the commands that train.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from harness.errors import HarnessError, unknown
from harness.cli_options import (add_accel_options, add_eval_option, add_executor_options, add_selection_options,
                                 executor_options_given)
from harness.run_options import accel_of
from harness.tuning.command import cmd_tune, tune_command

HEAVY_COMMANDS = {"run", "tune", "evaluate", "predict", "bench", "export"}  # commands that train, and so want the fast allocator


def build_parser(registry) -> argparse.ArgumentParser:
    """The command line; ``registry`` (the command's plugins) gives the executors and their options."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Train and compare image classifiers (CNNs and transfer learning) with one command.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _list_command(commands)
    _run_command(commands, registry)
    tune_command(commands, registry)
    _predict_command(commands)
    _export_command(commands)
    _evaluate_command(commands)
    _data_command(commands)
    _bench_command(commands)
    _leaderboard_command(commands)
    return parser


def _list_command(commands) -> None:
    from harness.catalogs import DETAILED_AT_MOST

    listing = commands.add_parser("list", help="list registered models and datasets with their plugins")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--catalog", metavar="NAME", help="list a catalog's architectures instead (timm, tv, ...)")
    listing.add_argument("--match", metavar="PATTERN", default="*", help="with --catalog: shell-style names, e.g. 'resnet*'")
    listing.add_argument("--weights-dir", metavar="DIR", help="with --catalog: where to look for weights files")
    listing.add_argument("--details", action="store_true", help="with --catalog: parameters, GMACs and weights "
                         f"however many names match (by default only when {DETAILED_AT_MOST} or fewer do)")


def _run_command(commands, registry) -> None:
    run = commands.add_parser("run", help="train and evaluate models, then write the leaderboard")
    add_selection_options(run)
    run.add_argument("--seed", type=int, action="append", metavar="N",
                     help="random seed (default: 0); give it several times to train once per seed")
    run.add_argument("--seeds", type=int, metavar="K", help="train each model with seeds 0..K-1, each with its own "
                     "train/validation split (mean and 95%% CI; --set data.split_seed=N pins the split)")
    run.add_argument("--ablate", metavar="WHAT", help="also train ablated variants: 'callbacks' (no early stopping; "
                     "no ReduceLROnPlateau)")
    run.add_argument("--variant", metavar="NAME", help="name this run's variant: results go to DIR/<model>@NAME "
                     "(e.g. one per --set data.train_size)")
    run.add_argument("--tuned", metavar="DIR", help="train with the best settings 'harness tune' found in DIR "
                     "(its <model>/tuning/best.json; your --set values still win)")
    add_eval_option(run)
    add_accel_options(run)
    run.add_argument("--nproc", type=int, metavar="N", help="train with N data-parallel processes on this machine "
                     "(torchrun; for several machines run torchrun yourself, see docs/scaling.md, 'One job over several "
                     "processes and machines')")
    run.add_argument("--sync-bn", action="store_true", help="with several GPU processes, batch-norm statistics "
                     "over the global batch (torch's SyncBatchNorm; GPU only)")
    add_executor_options(run, registry)
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="skip finished models and continue interrupted ones from their checkpoint")
    again.add_argument("--overwrite", action="store_true", help="replace results already in --out")


def _predict_command(commands) -> None:
    predict = commands.add_parser("predict", help="print the top classes of image files with a saved model")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-dir", metavar="DIR", help="a model folder, e.g. results/<model>")
    which.add_argument("--onnx", metavar="FILE", help="a file 'harness export' wrote, run by ONNX Runtime")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--top", type=int, default=3, help="how many classes to show (default: 3)")


def _export_command(commands) -> None:
    export = commands.add_parser("export", help="write a saved model as an ONNX file (float32, or int8 with --int8)")
    export.add_argument("--model-dir", required=True, metavar="DIR", help="a model folder, e.g. results/<model>")
    export.add_argument("--stage", help="which stage's model (default: the last)")
    export.add_argument("--int8", action="store_true", help="static int8 quantization (QDQ), calibrated on 256 of "
                        "the run's training images")
    export.add_argument("--out", metavar="FILE", help="where to write it (default: DIR/model-<stage>[.int8].onnx)")


def _evaluate_command(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="re-evaluate a saved model on a test set, without training")
    evaluate.add_argument("--model-dir", required=True, metavar="DIR", help="a model folder, e.g. results/<model>")
    evaluate.add_argument("--data", metavar="PATH", help="test data (default: the data the model was trained on)")
    evaluate.add_argument("--stage", help="which stage's model (default: the last)")
    evaluate.add_argument("--dataset", metavar="NAME", help="dataset plugin to read the data with (default: the run's)")
    add_eval_option(evaluate)
    evaluate.add_argument("--set", action="append", default=[], metavar="eval.NAME.KEY=VALUE",
                          help="an evaluator option, e.g. --set eval.robustness.severities=3-5")
    evaluate.add_argument("--json", action="store_true", help="print every metric as JSON")
    add_accel_options(evaluate)


def _data_command(commands) -> None:
    data = commands.add_parser("data", help="inspect a dataset: class counts, image sizes, a sample grid")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = data_commands.add_parser("info", help="class counts per split and the image sizes found")
    show = data_commands.add_parser("show", help="write a grid of sample images, before and after augmentation")
    for sub in (info, show):
        sub.add_argument("--data", metavar="PATH", help="a dataset path (default: as 'harness run' finds it)")
        sub.add_argument("--dataset", metavar="NAME", help="dataset plugin to read it with (default: detected)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--out", default="samples.png", metavar="PNG", help="where to write the grid (default: samples.png)")
    show.add_argument("--model", metavar="NAME", help="use this model's augmentation and input size (default: the "
                      "first model registered)")
    show.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set augment.rotation=30")
    cache = data_commands.add_parser("cache", help="the decoded-image cache: its entries, their sizes; remove some")
    cache.add_argument("--json", action="store_true", help="machine-readable output")
    cache.add_argument("--prune", action="store_true", help="remove entries that cannot be used: an older format, "
                       "damaged, or left half-built by a killed decoder")
    cache.add_argument("--older-than", type=float, metavar="DAYS", help="remove entries last used more than DAYS ago")
    cache.add_argument("--clear", action="store_true", help="remove every entry (none that is being decoded)")


def _bench_command(commands) -> None:
    bench = commands.add_parser("bench", help="measure the trainer against a bare PyTorch loop, and the data pipeline")
    bench.add_argument("--model", nargs="+", metavar="NAME",
                       help="models to measure (default: every registered model of the cnn family)")
    bench.add_argument("--images", type=int, default=4096, help="images per timed training epoch, in whole "
                       "batches of the model's recipe (default: 4096)")
    bench.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default: 5)")
    bench.add_argument("--processes", type=int, metavar="N", help="also train with 1 and N data-parallel CPU "
                       "processes (gloo, one thread each) and report the ratio")
    bench.add_argument("--scaling", action="store_true", help="also time one training epoch for 5k/10k/25k/45k "
                       "images and batch sizes 64/128/256 (cost should grow linearly with the images)")
    bench.add_argument("--json", action="store_true", help="print every measurement as JSON")
    add_accel_options(bench)


def _leaderboard_command(commands) -> None:
    board = commands.add_parser("leaderboard", help="print the leaderboard of one or more results folders")
    board.add_argument("dirs", nargs="*", default=["results"], metavar="DIR",
                       help="results folders to merge (default: results)")
    board.add_argument("--format", choices=["md", "csv", "json"], default="md")
    board.add_argument("--all-rows", action="store_true", help="the flat table: every stage and variant ranked "
                       "by accuracy (default: the zoo, one row per model)")
    board.add_argument("--columns", metavar="A,B,...", help="the columns to show, from leaderboard.csv's "
                       "(e.g. model,stage,accuracy,ece); default: the readable table (md) or every column")

# torchrun's agent stops its processes with SIGTERM, among other times when it loses the
# rendezvous another node was hosting: say so, since the run's own processes cannot tell
STOPPED_BY_TORCHRUN = "torchrun stopped this process (SIGTERM), as it does when another node of the run is lost"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(STOPPED_BY_TORCHRUN if "TORCHELASTIC_RUN_ID" in os.environ else "")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from harness import plugin_registry

    registry = plugin_registry.load(report=False)  # once per command: every command is handed this one
    args = build_parser(registry).parse_args(argv)
    # a scheduler's stop or a plain `kill` ends a run as Ctrl-C does: the last finished epoch
    # stays checkpointed and no half-written file is left behind
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        registry.report()
        return COMMANDS[args.command](args, argv, registry)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        why = f": {exc}" if str(exc) else ""  # a lost peer says which; Ctrl-C needs no words
        print(f"harness: interrupted{why}", file=sys.stderr)  # the runner has said how to resume
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """Console-script entry point: set up the allocator for training commands, then run."""
    argv = sys.argv[1:]
    if any(arg in HEAVY_COMMANDS for arg in argv[:3]):
        from harness.allocator import reexec_with_fast_allocator

        reexec_with_fast_allocator(argv)
    sys.exit(main(argv))


def cmd_list(args, argv, registry) -> int:
    if args.catalog:
        return _list_catalog(registry, args)
    models = [
        {
            "name": name,
            "family": r.spec.family,
            "input_size": r.spec.input_size,
            "stages": [stage.name for stage in r.spec.recipe.stages],
            "weights": r.spec.weights.arch if r.spec.weights else "scratch",
            "plugin": r.plugin,
            "package": r.package,
            "description": r.spec.description,
        }
        for name, r in sorted(registry.models.items())
    ]
    def described(table):
        return [{"name": name, "plugin": r.plugin, "package": r.package, "description": r.spec.description,
                 **({"default": r.spec.default} if hasattr(r.spec, "default") else {})}
                for name, r in sorted(table.items())]

    datasets, evaluators, callbacks = described(registry.datasets), described(registry.evaluators), \
        described(registry.callbacks)
    catalogs, executors = described(registry.catalogs), described(registry.executors)
    if args.json:
        print(json.dumps({"models": models, "datasets": datasets, "evaluators": evaluators, "callbacks": callbacks,
                          "catalogs": catalogs, "executors": executors, "problems": registry.problems}, indent=2))
        return 0
    from tabulate import tabulate

    def sizes(value):
        return " ".join(f"{k}:{v}" for k, v in value.items()) if isinstance(value, dict) else value

    print(tabulate([{**m, "input_size": sizes(m["input_size"]), "stages": ",".join(m["stages"])} for m in models],
                   headers="keys"))
    for table in (datasets, evaluators, callbacks, catalogs, executors):
        print()
        print(tabulate(table, headers="keys", maxcolwidths=[None, None, None, 70, None]))
    return 0


def _list_catalog(registry, args) -> int:
    from harness.catalogs import DETAILED_AT_MOST, entries

    found = entries(registry, args.catalog, args.match, args.weights_dir, details=args.details or None)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    from tabulate import tabulate

    print(tabulate(found, headers={"name": "name", "params_m": "params (M)", "input_size": "input px",
                                   "gmacs": "GMACs", "weights": "weights", "plugin": "plugin"}))
    if found and "params_m" not in found[0]:
        print(f"\n{len(found)} architecture(s); parameters, GMACs and weights are counted for {DETAILED_AT_MOST} or "
              "fewer: narrow --match, or pass --details (each is built on the meta device, under a second)")
    else:
        print(f"\n{len(found)} architecture(s); weights: file (--weights-dir), package, hub (its local cache) or not here")
    return 0


def cmd_run(args, argv, registry) -> int:
    from harness.run_options import start

    return start(options_of(args), registry, "harness " + shlex.join(argv))


def options_of(args):
    """``harness run``'s flags as the ``RunOptions`` that ``harness.run``'s keywords also make."""
    from harness.run_options import RunOptions
    from harness.settings import parse_overrides

    given = executor_options_given(args)
    return RunOptions(
        models=None if args.all else args.model, profile=args.profile, out=Path(args.out), data=args.data,
        dataset=args.dataset, download=args.download, seed=args.seed or [], seeds=args.seeds,
        set=parse_overrides(args.set), eval=args.eval, callback=args.callback, variant=args.variant,
        ablate=args.ablate, weights_dir=args.weights_dir, no_pretrained=args.no_pretrained, device=args.device,
        amp=args.amp, channels_last=args.channels_last, compile=args.compile, nproc=args.nproc,
        sync_bn=args.sync_bn, executor=args.executor, executor_options=given, resume=args.resume,
        overwrite=args.overwrite, tuned=args.tuned)


def cmd_bench(args, argv, registry) -> int:
    from harness import bench

    args.model = args.model or [name for name, r in registry.models.items() if r.spec.family == "cnn"]
    if not args.model:
        raise HarnessError("no model of the cnn family is registered: name the models with --model")
    for name in args.model:
        registry.model(name)
    if args.images < 2 or args.repeats < 1:
        raise HarnessError("--images must be at least 2 and --repeats at least 1")
    accel = accel_of(args)
    from harness.runner import warn_if_busy

    warn_if_busy()
    result = bench.bench([registry.model(name).spec for name in args.model], accel=accel,
                         images=args.images, repeats=args.repeats)
    if args.processes:
        if args.processes < 2:
            raise HarnessError("--processes must be at least 2")
        for name in args.model:
            result["models"][name]["process_scaling"] = bench.process_scaling(
                name, args.processes, images=args.images, repeats=args.repeats)
    if args.scaling:
        for name in args.model:
            result["models"][name]["epoch_scaling"] = bench.epoch_scaling(registry.model(name).spec, accel=accel)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print_bench(result, args.processes)
    return 0


def _print_bench(result: dict, processes: int | None) -> None:
    """``harness bench``'s tables: speed against the bare loop, scaling, the data pipeline."""
    from tabulate import tabulate

    rows = [{"model": name, "train img/s": round(m["train"]["harness_img_s"]),
             "bare train img/s": round(m["train"]["bare_img_s"]), "train ratio": round(m["train_ratio_vs_bare"], 3),
             "eval img/s": round(m["eval"]["harness_img_s"]), "bare eval img/s": round(m["eval"]["bare_img_s"]),
             "eval ratio": round(m["eval_ratio_vs_bare"], 3)} for name, m in result["models"].items()]
    print(f"machine: {result['machine']['label']}, {result['machine']['threads']} threads, torch "
          f"{result['environment']['torch']}, commit {result['environment']['harness_commit']}")
    print(tabulate(rows, headers="keys"))
    for name, m in result["models"].items():
        if "process_scaling" in m:
            scaling = m["process_scaling"]
            print(f"{name}: 1 process {scaling['img_s_1_process']:.0f} img/s, {processes} processes "
                  f"{scaling[f'img_s_{processes}_processes']:.0f} img/s: {scaling['ratio']:.2f}x (one thread each)")
    for name, m in result["models"].items():
        if "epoch_scaling" in m:
            print(f"\n{name}: seconds per training epoch")
            table = {}
            for row in m["epoch_scaling"]:
                table.setdefault(row["train_images"], {"train images": row["train_images"]})[
                    f"batch {row['batch_size']}"] = round(row["epoch_s"], 1)
            print(tabulate(list(table.values()), headers="keys"))
    data = result["data"]
    print(f"\ndata pipeline: {data['harness_img_s']:.0f} img/s vs torchvision DataLoader {data['torchvision_img_s']:.0f} "
          f"img/s: {data['speedup_vs_torchvision']:.1f}x; peak memory {result['peak_rss_mb']:.0f} MB "
          f"({result['environment']['threads']} threads, allocator {result['environment']['allocator']})")


def cmd_data(args, argv, registry) -> int:
    from harness.data.locate import find_data

    if args.data_command == "cache":
        return _data_cache(args)
    source, dataset = find_data(registry, args.data, args.dataset, profile="smoke")
    if args.data_command == "info":
        return _data_info(dataset, source, args.json)
    from harness import config
    from harness.report.plots import samples_png
    from harness.settings import parse_overrides

    spec = registry.model(args.model).spec if args.model else next(iter(registry.models.values())).spec
    resolved = config.resolve(spec, "quick", parse_overrides(args.set))
    images = dataset.load(source, resolved["input_size"])
    samples_png(Path(args.out), images, config.to_recipe(resolved).augment)
    print(f"wrote {args.out}: {min(len(images.classes), 12)} classes, originals and after {spec.name}'s augmentation")
    return 0


def _data_cache(args) -> int:
    """List the cache's entries, after removing what ``--prune`` / ``--older-than`` / ``--clear`` ask."""
    import time

    from harness.data import cache

    def doomed(row) -> bool:
        stale = args.older_than is not None and time.time() - row["last_used"] > args.older_than * 86400
        return args.clear or stale or (args.prune and row["state"] in ("older format", "damaged", "unfinished"))

    removed, kept = [], []
    for row in cache.listing():
        (removed if doomed(row) and cache.remove(row["name"]) else kept).append(row)  # not one being decoded
    if args.json:
        print(json.dumps({"folder": str(cache.cache_dir() / "arrays"), "entries": kept, "removed": removed}, indent=2))
        return 0
    from tabulate import tabulate

    table = [{"entry": r["name"], "state": r["state"], "images": r.get("images", ""), "px": r.get("size", ""),
              "MB": round(r["bytes"] / 2**20, 1), "last used": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last_used"]))}
             for r in kept]
    if table:
        print(tabulate(table, headers="keys"))
    print(f"{len(kept)} entr{'y' if len(kept) == 1 else 'ies'}, {sum(r['bytes'] for r in kept) / 2**30:.2f} GB in "
          f"{cache.cache_dir() / 'arrays'}" + (f"; removed {len(removed)} ({sum(r['bytes'] for r in removed) / 2**30:.2f} "
                                               "GB)" if removed else ""))
    return 0


def _data_info(dataset, source, as_json: bool) -> int:
    from harness.data import folders

    info = (dataset.describe(source) if dataset.describe else None) or folders.describe(source)
    info["dataset"] = dataset.name
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    from tabulate import tabulate

    print(f"{info['source']} ({info['dataset']}, {info['layout']}): {len(info['classes'])} classes")
    splits = list(info["counts"])
    rows = [[cls, *(info["counts"][s].get(cls, 0) for s in splits)] for cls in info["classes"]]
    rows.append(["total", *(sum(info["counts"][s].values()) for s in splits)])
    print(tabulate(rows, headers=["class", *splits]))
    sizes = ", ".join(f"{size} ({n})" for size, n in list(info["sizes"].items())[:8])
    print(f"image sizes: {sizes}" + (", ..." if len(info["sizes"]) > 8 else ""))
    if info["unreadable"]:
        print(f"unreadable files: {info['unreadable']} (skipped when training)")
    return 0


def cmd_predict(args, argv, registry) -> int:
    from harness import saved_models

    found = saved_models.predict_onnx(Path(args.onnx), args.images, args.top) if args.onnx else \
        saved_models.predict(registry, Path(args.model_dir), args.images, args.top)
    for path, top in found:
        print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top))
    return 0


def cmd_export(args, argv, registry) -> int:
    from harness import saved_models

    path, check = saved_models.export(registry, Path(args.model_dir), args.stage, args.int8,
                                      Path(args.out) if args.out else None)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB): {check}")
    return 0


def cmd_evaluate(args, argv, registry) -> int:
    from harness import saved_models
    from harness.profiles import evaluator_names
    from harness.settings import parse_overrides, split_eval_options

    overrides, eval_options = split_eval_options(parse_overrides(args.set))
    if overrides:
        raise HarnessError(f"--set {next(iter(overrides))}: evaluate takes only eval.<evaluator>.<option> settings")
    request = saved_models.Evaluation(Path(args.model_dir), args.stage, args.data, args.dataset,
                                      tuple(evaluator_names(args.eval)), eval_options, accel_of(args))
    result = saved_models.evaluate(registry, request)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from tabulate import tabulate

    print(f"{result['model']} ({result['weights']}) on {result['data']}")
    numbers = ["accuracy", "precision", "recall", "f1"] + [
        key for name, entry in result["evaluators"].items() if name != "classification"
        for key in entry["fields"] if isinstance(result.get(key), (int, float)) and not isinstance(result[key], bool)]
    print(tabulate([[result[k] for k in numbers]], headers=numbers, floatfmt=".4f"))
    print()
    print("confusion (rows: true, columns: predicted)")
    print(tabulate(result["confusion"], headers=result["classes"], showindex=result["classes"]))
    return 0


def cmd_leaderboard(args, argv, registry) -> int:
    from harness.report import leaderboard

    folders = [Path(d) for d in args.dirs]
    for folder in folders:
        if not folder.is_dir():
            raise HarnessError(f"results folder '{folder}' does not exist; run 'harness run' first or pass a folder")
    frame = leaderboard.table(leaderboard.read_results(*folders))
    apart = sorted({m for m in frame.get("model", []) if leaderboard.KEPT_APART.search(str(m))})
    if apart:
        print(f"harness: runs of one name on other test images or with other settings are kept apart, not "
              f"merged as seeds: {', '.join(apart)}", file=sys.stderr)
    found = leaderboard.machines(frame)
    if len(found) > 1:
        print(f"harness: merged results from {len(found)} machines ({'; '.join(found)}): compare times only "
              "within one machine", file=sys.stderr)
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        for column in columns:
            if column not in frame.columns:
                raise unknown("column", column, list(frame.columns), "see leaderboard.csv's header")
        frame = frame[columns]
        if args.format == "md":
            print(frame.astype(object).where(frame.notna(), "").to_markdown(index=False), end="\n")
            return 0
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "json":
        print(frame.to_json(orient="records", indent=2))
    else:
        print(leaderboard.to_markdown(frame, registry, all_rows=args.all_rows), end="")
    return 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "tune": cmd_tune,
    "leaderboard": cmd_leaderboard,
    "predict": cmd_predict,
    "export": cmd_export,
    "data": cmd_data,
    "bench": cmd_bench,
    "evaluate": cmd_evaluate,
}
