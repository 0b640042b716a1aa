"""Data-parallel training with 2 gloo processes on this CPU: identical weights on every rank,
metrics over the full validation set, files written by rank 0 alone."""
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import loopback
from helpers.models import default_callbacks, small_cnn, tiny_splits
from helpers.timings import without_timings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_on_rank(rank, world_size, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from harness import distributed
    from harness.evaluate import loss_and_accuracy, predict_logits
    from harness.specs import Augment, Recipe, Stage
    from harness.train import Setup, Trainer, Watch

    distributed.init("cpu")
    splits = tiny_splits(n=60)
    recipe = Recipe(stages=[Stage(epochs=2, batch_size=12, lr=3e-2, early_stopping=None)],
                    augment=Augment(flip=True, translate=1))
    model = small_cnn()
    fit = Trainer(model, splits, recipe, Setup(input_size=8, seed=0),
                  Watch(show_progress=False, callbacks=default_callbacks())).fit()
    full_val = loss_and_accuracy(predict_logits(model, torch.from_numpy(splits.val_x), input_size=8),
                                 torch.from_numpy(splits.val_y))
    torch.save({"state": model.state_dict(), "history": fit.history, "full_val": full_val}, f"{out}/rank{rank}.pt")
    distributed.shutdown()


def test_two_processes_end_with_identical_weights_and_full_validation_metrics(tmp_path):
    torch.multiprocessing.spawn(train_on_rank, args=(2, free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key  # BN buffers too (DDP broadcasts them)
    def decisions(history):  # everything but the wall time
        return [without_timings(row) for row in history]

    assert decisions(ranks[0]["history"]) == decisions(ranks[1]["history"])
    last = ranks[0]["history"][-1]
    assert last["val_loss"] == pytest.approx(ranks[0]["full_val"][0], rel=1e-5)
    assert last["val_acc"] == pytest.approx(ranks[0]["full_val"][1])


def equivalence_fit(world_size: int, out: str, rank: int = 0, port: int = 0):
    """The same seeded recipe, with a model without batch norm (whose statistics are per process by
    design), trained by one process or as one rank of ``world_size``."""
    if world_size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from harness import distributed
    from harness.specs import Augment, Recipe, Stage
    from harness.train import Setup, Trainer, Watch
    from test_training import tiny_model

    if world_size > 1:
        distributed.init("cpu")
    recipe = Recipe(stages=[Stage(epochs=3, batch_size=12, lr=3e-2, early_stopping=None, schedule="onecycle")],
                    augment=Augment(flip=True, translate=1))
    model = tiny_model()
    fit = Trainer(model, tiny_splits(n=60), recipe, Setup(input_size=8, seed=0),
                  Watch(show_progress=False, callbacks=default_callbacks())).fit()
    torch.save({"state": model.state_dict(), "history": fit.history}, f"{out}/world{world_size}-rank{rank}.pt")
    if world_size > 1:
        distributed.shutdown()


def equivalence_rank(rank, port, out):
    equivalence_fit(2, out, rank, port)


def test_two_processes_train_as_one_process_does(tmp_path):
    """The README's promise: the recipe's batch is the global batch, split between processes, with
    the learning rates and steps of one process -- so 2 processes end where 1 does."""
    equivalence_fit(1, str(tmp_path))
    torch.multiprocessing.spawn(equivalence_rank, args=(free_port(), str(tmp_path)), nprocs=2)
    one = torch.load(tmp_path / "world1-rank0.pt", weights_only=True)
    two = torch.load(tmp_path / "world2-rank0.pt", weights_only=True)
    assert [row["lr"] for row in two["history"]] == [row["lr"] for row in one["history"]]
    for mine, theirs in zip(two["history"], one["history"]):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
    for key, value in one["state"].items():
        assert torch.allclose(two["state"][key], value, atol=1e-5), key


@pytest.mark.slow
def test_nproc_2_run_writes_one_set_of_results(tmp_path):
    """`harness run --nproc 2` through torchrun: rank 0 alone writes; the test accuracy it reports
    is that of the saved model on the whole test set."""
    out = tmp_path / "out"
    env = {**os.environ, "HARNESS_ALLOCATOR": "system", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--nproc", "2", "--model", "baseline_cnn",
                           "--profile", "smoke", "--set", "epochs=1", "--device", "cpu", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("baseline_cnn: done") == 1  # rank 1 prints nothing
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and json.loads((out / "baseline_cnn" / "config.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in (out / "baseline_cnn").iterdir()) == [
        "README.md", "config.json", "confusion.png", "curves.png", "history.csv", "metrics.json", "predictions-train.npz",
        "train.pt"]
    evaluated = subprocess.run([sys.executable, "-m", "harness", "evaluate", "--model-dir", str(out / "baseline_cnn"),
                                "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["accuracy"])


def test_process_scaling_measures_one_and_two_processes():
    """The measurement behind `harness bench --processes 2` runs end to end (speed is benchmarked
    in benchmarks/, not asserted here)."""
    from harness.bench import process_scaling

    result = process_scaling("baseline_cnn", 2, images=256, repeats=1)
    assert result["img_s_1_process"] > 0 and result["img_s_2_processes"] > 0 and result["ratio"] > 0


def test_nproc_from_python_returns_to_the_caller(tmp_path):
    """`harness.run(..., nproc=2)` in a Python session (a notebook's kernel) starts the processes as
    children and returns the leaderboard; the caller's next line runs."""
    out = tmp_path / "out"
    code = (f"import harness; df = harness.run(models=['baseline_cnn'], profile='smoke', out={str(out)!r}, nproc=2, "
            "set={'epochs': 1}); print('rows', len(df)); print('after')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HARNESS_ALLOCATOR": "system"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rows 1\nafter" in done.stdout
    assert json.loads((out / "baseline_cnn" / "config.json").read_text())["world_size"] == 2


TWO_NODES = ["run", "--model", "baseline_cnn", "--profile", "smoke", "--device", "cpu"]


def on_two_nodes(*argv: str) -> dict:
    """``harness ARGV`` by two torchrun agents of one process each, in a loopback-only namespace."""
    done = loopback.run([sys.executable, str(Path(__file__).parent / "helpers" / "torchrun_nodes.py"), *argv],
                        env=dict(os.environ), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def history_rows(folder: Path) -> list:
    with (folder / "history.csv").open() as handle:
        return [without_timings(row) for row in csv.DictReader(handle)]


@pytest.mark.slow
@pytest.mark.skipif(loopback.unavailable() is not None, reason=str(loopback.unavailable()))
def test_torchrun_over_two_nodes_trains_as_one_node_of_two_processes(tmp_path):
    one_node = tmp_path / "one-node"
    env = {**os.environ, "HARNESS_ALLOCATOR": "system", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "harness", *TWO_NODES, "--set", "epochs=2", "--nproc", "2",
                           "--out", str(one_node)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = on_two_nodes(*TWO_NODES, "--set", "epochs=2", "--out", str(tmp_path / "two-nodes"))
    assert outcome["codes"] == [0, 0], outcome["logs"][0][-3000:]
    mine, theirs = one_node / "baseline_cnn", tmp_path / "two-nodes" / "baseline_cnn"
    assert history_rows(theirs) == history_rows(mine)
    a, b = (torch.load(folder / "train.pt", weights_only=True) for folder in (mine, theirs))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert json.loads((theirs / "config.json").read_text())["world_size"] == 2


@pytest.mark.slow
@pytest.mark.skipif(loopback.unavailable() is not None, reason=str(loopback.unavailable()))
def test_a_node_killed_mid_run_ends_the_run_and_resume_continues_from_its_checkpoint(tmp_path):
    out = tmp_path / "out"
    # eight epochs: the kill lands long before the end, however slow the machine is today
    killed = on_two_nodes("--kill-after", "train epoch 1:", *TWO_NODES, "--set", "epochs=8", "--out", str(out))
    assert killed["killed"] and killed["codes"][0] != 0
    said = [line for line in killed["logs"][0].splitlines() if line.startswith("baseline_cnn:")]
    assert said[-1].startswith("baseline_cnn: interrupted; its last finished epoch is checkpointed. Resume with: "
                               "harness run"), killed["logs"][0][-3000:]
    assert "harness: interrupted: a process of the run was lost" in killed["logs"][0]
    assert (out / "baseline_cnn" / "checkpoint.pt").is_file() and not (out / "baseline_cnn" / "metrics.json").exists()
    resumed = on_two_nodes(*TWO_NODES, "--set", "epochs=8", "--out", str(out), "--resume")
    assert resumed["codes"] == [0, 0], resumed["logs"][0][-3000:]
    assert "baseline_cnn: resuming from stage 'train' epoch" in resumed["logs"][0]
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 8
