"""The command line end to end: a smoke run writes every promised file with real numbers."""
import csv
import json
import subprocess
import sys

import pytest

from harness.cli import main

from conftest import write_image_tree
from helpers.timings import without_timings


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``harness run --all --profile smoke`` with no data anywhere: it runs on the shipped sample."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("smoke") / "results"
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        code = main(["run", "--all", "--profile", "smoke", "--out", str(out), "--set", "epochs=2"])
    return code, out, said.getvalue()


def test_the_first_run_says_what_it_did_in_a_screen(smoke_run):
    """Models without weights in one short line, a line per epoch, then the ranks and what smoke
    numbers mean."""
    code, out, said = smoke_run
    lines = said.splitlines()
    assert code == 0 and len(lines) <= 45 and max(map(len, lines)) <= 200, said
    assert len([line for line in lines if "no ImageNet weights" in line]) == 1
    table = lines.index(next(line for line in lines if line.startswith("rank  model")))
    assert [line.split()[1] for line in lines[table + 1:table + 3]] == \
        [r["model"] for r in csv.DictReader((out / "leaderboard.csv").open()) if r["section"] == "zoo"][:2]
    assert "say nothing about the models" in lines[-1]


def test_smoke_run_all_writes_results(smoke_run):
    code, out, _ = smoke_run
    assert code == 0
    for model in ("baseline_cnn", "deep_cnn"):
        folder = out / model
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["profile"] == "smoke"
        for key in ("accuracy", "precision", "recall", "f1"):
            assert 0.0 <= metrics[key] <= 1.0
        assert metrics["best_epoch"] >= 1 and metrics["epochs"] == 2
        assert len(metrics["confusion"]) == 10 and sum(map(sum, metrics["confusion"])) == 500
        assert set(metrics["per_class"]) == set(metrics["classes"]) and "airplane" in metrics["classes"]
        rows = list(csv.DictReader((folder / "history.csv").open()))
        assert [r["epoch"] for r in rows] == ["1", "2"]
        assert set(rows[0]) >= {"stage", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"}
        for png in ("confusion.png", "curves.png"):
            assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (folder / "train.pt").is_file() and not (folder / "checkpoint.pt").exists()
        assert [s["name"] for s in metrics["stages"]] == ["train"]
        config = json.loads((folder / "config.json").read_text())
        assert config["command"].startswith("harness run --all")
    from harness import plugin_registry

    registry = plugin_registry.load(report=False)
    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {r["model"] for r in board} == set(registry.models)  # every model has a row
    for name, registered in registry.models.items():
        metrics = json.loads((out / name / "metrics.json").read_text())
        if registered.spec.weights is not None and metrics["status"] == "skipped":
            # no weights here for this transfer model: skipped, with the reason, not an error
            assert "no ImageNet weights" in metrics["reason"]
        else:
            assert metrics["status"] == "ok", (name, metrics.get("reason"))
    for section in ("zoo", "stage", "variant"):  # the zoo first, then earlier stages; by accuracy within each
        scored = [float(r["accuracy"]) for r in board if r["accuracy"] and r["section"] == section]
        assert scored == sorted(scored, reverse=True)
    assert [r["section"] for r in board] == sorted((r["section"] for r in board), key=["zoo", "stage", "variant"].index)
    assert "| model" in (out / "leaderboard.md").read_text()


def test_leaderboard_command_reprints(smoke_run, capsys):
    _, out, _ = smoke_run
    assert main(["leaderboard", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    zoo = [r for r in rows if r["section"] == "zoo" and r["status"] == "ok"]
    assert [r["rank_raw"] for r in zoo] == list(range(1, len(zoo) + 1))
    ranks = [r["rank"] for r in zoo]  # shared where the test set cannot separate two models
    assert ranks[0] == 1 and ranks == sorted(ranks) and all(r <= i + 1 for i, r in enumerate(ranks))
    assert {"baseline_cnn", "deep_cnn"} <= {r["model"] for r in rows}


def test_a_command_loads_the_plugins_once(tmp_path, monkeypatch, capsys):
    """Parser, checks, training, callbacks, evaluators and both reports use the registry the command
    loaded; no code below it loads the plugins again (the cached copy a Ray worker uses included)."""
    from harness import plugin_registry

    loads = []
    found = plugin_registry._entry_points
    monkeypatch.setattr(plugin_registry, "_entry_points", lambda: loads.append(1) or found())
    plugin_registry.installed.cache_clear()
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=1", "--out", str(out)]) == 0
    assert len(loads) == 1
    assert main(["leaderboard", str(out)]) == 0 and len(loads) == 2
    assert main(["evaluate", "--model-dir", str(out / "baseline_cnn"), "--json"]) == 0 and len(loads) == 3
    plugin_registry.installed.cache_clear()


def test_the_reports_read_and_rank_the_results_once_for_both_files(smoke_run, monkeypatch):
    from harness import plugin_registry
    from harness.report import leaderboard
    from harness.runner import write_reports

    _, out, _ = smoke_run
    calls = []
    for name in ("read_results", "ranked_rows"):
        original = getattr(leaderboard, name)
        monkeypatch.setattr(leaderboard, name, lambda *a, original=original, name=name: calls.append(name) or original(*a))
    before = (out / "report.md").read_text()
    write_reports(out, plugin_registry.installed())
    assert calls == ["read_results", "ranked_rows"]
    assert (out / "report.md").read_text() == before and "| rank" in (out / "leaderboard.md").read_text()


def test_run_on_an_image_folder_uses_its_class_names(tmp_path):
    data = write_image_tree(tmp_path / "zoo", classes=["ant", "bee", "wasp"])
    out = tmp_path / "out"
    code = main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(data), "--out", str(out),
                 "--set", "data.val_size=6", "--set", "epochs=1"])
    assert code == 0
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["classes"] == ["ant", "bee", "wasp"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--model", "basline_cnn"], "unknown model 'basline_cnn'; did you mean 'baseline_cnn'? see 'harness list'"),
        (["run", "--all", "--profile", "quik"], "unknown profile 'quik'; did you mean 'quick'?"),
        (["run", "--all", "--set", "epochz=1"], "did you mean 'epochs'"),
        (["run", "--model", "baseline_cnn", "--data", "/no/such/path"], "does not exist"),
        (["run", "--model", "deep_cnn", "--profile", "quick"], "no data found in"),
        (["leaderboard", "/no/such/dir"], "does not exist"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_list_does_not_import_torch():
    code = "import sys; from harness.cli import main; main(['list']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("False")


def test_rerun_into_same_folder_is_refused_then_resume_skips_and_overwrite_replaces(smoke_run, capsys):
    _, out, _ = smoke_run
    argv = ["run", "--model", "baseline_cnn", "--profile", "smoke", "--out", str(out), "--set", "epochs=2"]
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    before = (out / "baseline_cnn" / "metrics.json").read_text()
    assert main(argv + ["--resume"]) == 0
    assert "finished earlier, skipped" in capsys.readouterr().err
    assert (out / "baseline_cnn" / "metrics.json").read_text() == before
    (out / "baseline_cnn" / "stray.txt").write_text("left by the earlier run")
    assert main(argv + ["--overwrite"]) == 0  # trained again from nothing: the folder is replaced
    assert not (out / "baseline_cnn" / "stray.txt").exists()
    after = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert after["wall_time_s"] != json.loads(before)["wall_time_s"] and after["epochs"] == 2


def test_predict_and_evaluate_a_saved_model(smoke_run, tmp_path, capsys):
    from PIL import Image

    _, out, _ = smoke_run
    image = tmp_path / "plane.png"
    Image.new("RGB", (50, 40), (120, 160, 220)).save(image)
    assert main(["predict", "--model-dir", str(out / "deep_cnn"), str(image), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and line.count(",") == 1
    assert main(["evaluate", "--model-dir", str(out / "deep_cnn"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "deep_cnn" / "metrics.json").read_text())
    assert result["accuracy"] == pytest.approx(metrics["accuracy"])
    assert result["confusion"] == metrics["confusion"]


def test_sigkill_during_training_then_resume_matches_an_uninterrupted_run(tmp_path):
    """A real process killed with SIGKILL mid-run; --resume finishes it with the same numbers."""
    import os
    import signal
    import time

    # on the CPU: bit-for-bit equality is a CPU promise (cuDNN may pick nondeterministic kernels)
    argv = [sys.executable, "-m", "harness", "run", "--model", "baseline_cnn", "--profile", "smoke",
            "--set", "epochs=12", "--set", "early_stopping=none", "--device", "cpu"]
    env = {**os.environ, "HARNESS_ALLOCATOR": "system"}
    subprocess.run(argv + ["--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(argv + ["--out", str(killed)], env=env, stderr=subprocess.PIPE, text=True)
    checkpoint = killed / "baseline_cnn" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run finished before it could be killed"
    done = __import__("torch").load(checkpoint, weights_only=True)["epoch"]  # the last epoch that was saved
    resumed = subprocess.run(argv + ["--out", str(killed), "--resume"], check=True, env=env, capture_output=True,
                             text=True)
    # it went on from the checkpoint: only the epochs after it were trained again
    assert f"resuming from stage 'train' epoch {done}" in resumed.stderr
    trained = [int(line.split("epoch ")[1].split(":")[0]) for line in resumed.stderr.splitlines()
               if line.startswith("baseline_cnn train epoch ")]
    assert trained == list(range(done + 1, 13))

    def numbers(folder):
        metrics = json.loads((folder / "baseline_cnn" / "metrics.json").read_text())
        history = [without_timings(row) for row in csv.DictReader((folder / "baseline_cnn" / "history.csv").open())]
        return history, {k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "confusion", "best_epoch")}

    assert numbers(killed) == numbers(tmp_path / "whole")
    # the wall clock does not carry over a kill, so the results say the run was resumed
    resumed_from = {"stage": "train", "epoch": done}
    assert json.loads((killed / "baseline_cnn" / "metrics.json").read_text())["resumed_from"] == resumed_from
    assert json.loads((tmp_path / "whole" / "baseline_cnn" / "metrics.json").read_text())["resumed_from"] is None
    assert f"Resumed from its checkpoint after stage 'train' epoch {done}" in \
        (killed / "baseline_cnn" / "README.md").read_text()

    def board(folder):  # the leaderboard, less the columns that measure speed
        return [without_timings(row) for row in csv.DictReader((folder / "leaderboard.csv").open())]

    assert board(killed) == board(tmp_path / "whole")


@pytest.mark.parametrize("stop, launcher", [("SIGINT", {}), ("SIGTERM", {}),
                                            ("SIGTERM", {"TORCHELASTIC_RUN_ID": "r"})], ids=["ctrl-c", "kill", "torchrun"])
def test_ctrl_c_or_kill_stops_cleanly_and_says_how_to_resume(tmp_path, stop, launcher):
    """Under torchrun (its agent's variables set), a SIGTERM says that torchrun stopped the process,
    as its agent does when another node is lost."""
    import os
    import signal
    import time

    from harness.cli import STOPPED_BY_TORCHRUN

    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness", "run", "--model", "baseline_cnn", "--profile", "smoke",
            "--set", "epochs=50", "--set", "early_stopping=none", "--out", str(out)]
    env = {**os.environ, "HARNESS_ALLOCATOR": "system", **launcher}
    # a shell that starts jobs in the background ignores SIGINT in them, and Python then never turns
    # it into KeyboardInterrupt: give the child the default disposition, as a terminal would
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = out / "baseline_cnn" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Resume with: harness run --model baseline_cnn" in err and " --resume" in err
    assert "Traceback" not in err
    assert (f"harness: interrupted: {STOPPED_BY_TORCHRUN}" in err) == bool(launcher), err[-500:]
    assert checkpoint.exists()
    assert not list(out.rglob("*.tmp"))  # no half-written file


def test_report_renders_with_every_image_link_a_valid_png(smoke_run):
    import re

    _, out, _ = smoke_run
    text = (out / "report.md").read_text()
    pages = [(out, text)] + [(out / model, (out / model / "README.md").read_text()) for model in ("baseline_cnn", "deep_cnn")]
    links = [(where, link) for where, page in pages for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)]
    assert len(links) >= 7  # samples, pareto, heatmap + a confusion matrix and curves per model
    for where, link in links:
        assert (where / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    for heading in ("## Leaderboard", "## CNN against transfer learning", "## Per-class F1", "## The data",
                    "## Models"):
        assert heading in text
    assert "[baseline_cnn](baseline_cnn/README.md)" in text and "[deep_cnn](deep_cnn/README.md)" in text
    assert text.index("## CNN against transfer learning") < text.index("## Leaderboard")  # the answer first
    readme = pages[2][1]  # deep_cnn's: an earlier test ran baseline_cnn again with a command of its own
    assert "harness commit" in readme and "command: `harness run --all" in readme
    columns = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    for column in ("model", "stage", "family", "weights", "status", "accuracy", "precision", "recall", "f1", "params",
                   "macs", "train_img_s", "eval_img_s", "train_time_s", "best_epoch", "epochs", "input_size",
                   "profile", "seed", "runs", "accuracy_ci95"):
        assert column in columns


def test_seeds_and_callback_ablation(tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--seeds", "2", "--ablate", "callbacks",
                 "--set", "epochs=1", "--set", "data.train_size=200", "--out", str(out),
                 # the study's callbacks on (the smoke recipe's one-cycle schedule has no plateau to ablate)
                 "--set", "stages.train.schedule=none", "--set", "reduce_lr=default"]) == 0
    for run in ("baseline_cnn", "baseline_cnn@no-early-stopping", "baseline_cnn@no-reduce-lr"):
        for seed in (0, 1):
            metrics = json.loads((out / run / f"seed-{seed}" / "metrics.json").read_text())
            assert metrics["seed"] == seed and metrics["status"] == "ok"
    config = json.loads((out / "baseline_cnn@no-reduce-lr" / "seed-0" / "config.json").read_text())
    assert config["stages"][0]["reduce_lr"] is None and config["stages"][0]["early_stopping"] is not None
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(rows) == 3 and {r["runs"] for r in rows} == {"2"}
    assert all(r["accuracy_ci95"] for r in rows)
    assert "## Early stopping and learning-rate reduction" in (out / "report.md").read_text()


def test_a_named_variant_is_a_job_even_when_only_set_changes_it(tmp_path):
    """--variant NAME labels a --set change; it is not an ablation that can have nothing to do."""
    from harness import plugin_registry, runner

    request = runner.RunRequest(models=["baseline_cnn"], profile="smoke", out=tmp_path, variant="lr3",
                                overrides={"lr": 3e-3})
    (job,) = runner.jobs_for(plugin_registry.load(), request)
    assert job.name == "baseline_cnn@lr3" and job.config["stages"][0]["lr"] == 3e-3
    assert job.config["variant"] == "lr3" and "accel" not in job.config  # the CPU default is left out


def test_bench_reports_every_ratio_as_json(capsys):
    """The measurement runs end to end (its numbers are checked in benchmarks/, not here)."""
    assert main(["bench", "--model", "baseline_cnn", "--images", "128", "--repeats", "1", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = result["models"]["baseline_cnn"]
    for key in ("train_ratio_vs_bare", "eval_ratio_vs_bare", "data_speedup_vs_torchvision"):
        assert model[key] > 0
    assert model["train"]["batch_size"] == 128 and model["train"]["harness_img_s"] > 0  # the quick recipe's
    assert result["peak_rss_mb"] > 0 and result["accel"]["device"] == "cpu"


def test_bench_ratio_pairs_each_turn_so_a_slowdown_of_one_run_is_outvoted(monkeypatch):
    """A fake clock; every run 'processes' 100 images, in 1 s at full speed. The machine runs at
    half speed for the whole second turn and again for the harness's run in the third: the ratio
    of the two medians (50 / 100 img/s) would blame the harness, the median of each turn's ratio
    (1, 1, 0.5) does not."""
    from harness import bench

    durations = iter([1, 1,  1, 1,  2, 2,  2, 1])  # warm-ups, then 3 turns: harness, bare
    now = [0.0]

    def run():
        now[0] += next(durations)
        return 100

    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])
    ours, bare, ratio = bench.alternating_rates(run, run, repeats=3)
    assert (ours, bare, ratio) == (50.0, 100.0, 1.0)
    durations = iter([1, 1,  2, 1,  2, 1,  1, 1])  # slow in two turns of three: the median says so
    assert bench.alternating_rates(run, run, repeats=3)[2] == 0.5


def test_epoch_scaling_rows_leave_out_the_warm_up():
    from harness import plugin_registry
    from harness.bench import epoch_scaling

    rows = epoch_scaling(plugin_registry.load().models["baseline_cnn"].spec, sizes=(64, 128), batch_sizes=(32, 64))
    assert [(r["train_images"], r["batch_size"]) for r in rows] == [(64, 32), (128, 32), (64, 64), (128, 64)]
    assert all(r["epoch_s"] > 0 and r["us_per_image"] > 0 for r in rows)
