"""A comparison the test set can defend: predictions kept per stage, intervals on every row, exact
McNemar and paired-bootstrap tests between rows, ranks shared where the data cannot separate
models, the zoo apart from its variants, and the machine behind every time."""
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness import machine, plugin_registry
from harness.cli import main
from harness.compute import TrainingCost, time_to_accuracy
from harness.report import leaderboard
from harness.report.compare import compare
from harness.report.stats import holm, mcnemar_exact, paired_bootstrap95, wilson95

from conftest import write_canonical

# --- the statistics, each against an independent computation --------------------------------


@pytest.mark.parametrize("correct, total", [(0, 20), (7, 20), (9079, 10000), (500, 500)])
def test_wilson_matches_scipy(correct, total):
    expected = stats.binomtest(correct, total).proportion_ci(0.95, method="wilson")
    assert wilson95(correct, total) == pytest.approx((expected.low, expected.high), abs=1e-9)


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (3, 0), (12, 30), (200, 170), (41, 41)])
def test_mcnemar_is_the_exact_binomial_test_on_discordant_images(only_a, only_b):
    expected = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, abs=1e-12)


def test_paired_bootstrap_agrees_with_resampling_images():
    rng = np.random.default_rng(3)
    a = rng.random(2000) < 0.80
    b = np.where(rng.random(2000) < 0.9, a, ~a)  # mostly the same images right
    diff, low, high = paired_bootstrap95(a, b, reps=20000)
    index = np.random.default_rng(4).integers(0, len(a), size=(4000, len(a)))
    resampled = a[index].mean(1) - b[index].mean(1)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx(tuple(np.percentile(resampled, [2.5, 97.5])), abs=0.004)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.02), max(0.04, 0.04); None stays None
    assert holm([0.04, 0.01, None, 0.02]) == pytest.approx([0.04, 0.03, None, 0.04])


# --- ranks from hand-made results with predictions ------------------------------------------


def _result(folder: Path, model: str, right: np.ndarray, labels: np.ndarray, *, family="cnn", seed=0, **extra):
    """A finished run whose predictions get ``right`` images right (a wrong image is labelled +1)."""
    folder.mkdir(parents=True, exist_ok=True)
    pred = np.where(right, labels, (labels + 1) % 10)
    prob = np.eye(10, dtype=np.float16)[pred]
    np.savez(folder / "predictions-train.npz", label=labels, pred=pred, prob=prob)
    accuracy = float(right.mean())
    stage = {"name": "train", "accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy,
             "test_fingerprint": "sha256:same", "best_epoch": 1, "epochs": 1}
    metrics = {"model": model, "family": family, "status": "ok", "seed": seed, "profile": "quick", "stage": "train",
               "accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy,
               "data": {"train": 100, "val": 10, "test": len(labels)}, "stages": [stage], **extra}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_models_the_test_set_cannot_separate_share_a_rank(tmp_path):
    labels = np.arange(2000) % 10
    rng = np.random.default_rng(0)
    best = rng.random(2000) < 0.90
    close = best.copy()
    close[np.flatnonzero(best)[:4]] = False  # 4 images fewer: p = 2 / 2**4, not a difference
    worse = rng.random(2000) < 0.60
    _result(tmp_path / "best", "best", best, labels)
    _result(tmp_path / "close", "close", close, labels)
    _result(tmp_path / "worse", "worse", worse, labels)
    frame = leaderboard.table(leaderboard.read_results(tmp_path))
    zoo = frame[frame["section"] == "zoo"].set_index("model")
    assert list(zoo["rank_raw"]) == [1, 2, 3] and list(zoo["rank"]) == [1, 1, 3]
    # p_vs_above is McNemar on the two files, computed here from scratch
    only_close, only_worse = int((close & ~worse).sum()), int((~close & worse).sum())
    expected = stats.binomtest(only_close, only_close + only_worse, 0.5).pvalue
    assert zoo.loc["worse", "p_vs_above"] == pytest.approx(expected, abs=1e-6)
    assert zoo.loc["worse", "diff_vs_above"] == pytest.approx(close.mean() - worse.mean())
    assert zoo.loc["close", "test_vs_above"] == "mcnemar" and zoo.loc["close", "p_vs_above"] == pytest.approx(1 / 8)
    assert zoo.loc["worse", "above_model"] == "close" and zoo.loc["worse", "best_model"] == "best"


def test_no_paired_test_across_different_test_sets(tmp_path):
    labels = np.arange(500) % 10
    _result(tmp_path / "a", "a", np.ones(500, bool), labels)
    _result(tmp_path / "b", "b", np.arange(500) % 2 == 0, labels)
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    metrics["stages"][0]["test_fingerprint"] = "sha256:other"
    (tmp_path / "b" / "metrics.json").write_text(json.dumps(metrics))
    rows = {r["model"]: r for r in leaderboard.ranked_rows(leaderboard.read_results(tmp_path))}
    assert compare(rows["a"], rows["b"]).test == "unpaired-z"


def test_every_row_has_an_interval_and_says_which(tmp_path):
    labels = np.arange(400) % 10
    _result(tmp_path / "one", "one", np.arange(400) % 4 != 0, labels)
    for seed, share in ((0, 3), (1, 5)):
        _result(tmp_path / "many" / f"seed-{seed}", "many", np.arange(400) % share != 0, labels, seed=seed)
    frame = leaderboard.table(leaderboard.read_results(tmp_path)).set_index("model")
    low, high = wilson95(300, 400)
    assert (frame.loc["one", "accuracy_low"], frame.loc["one", "accuracy_high"]) == pytest.approx((low, high))
    assert frame.loc["one", "interval"] == "Wilson, 400 images" and frame.loc["many", "interval"] == "t, 2 seeds"
    half, mean = frame.loc["many", "accuracy_ci95"], frame.loc["many", "accuracy"]
    assert (frame.loc["many", "accuracy_low"], frame.loc["many", "accuracy_high"]) == \
        pytest.approx((max(0, mean - half), min(1, mean + half)))


def test_times_from_several_machines_are_footnoted(tmp_path, capsys):
    labels = np.arange(100) % 10
    for name, cpu in (("a", "CPU one"), ("b", "CPU two")):
        _result(tmp_path / name, name, np.arange(100) % (3 if name == "a" else 4) != 0, labels,
                train_time_s=60.0, machine={"label": cpu})
    frame = leaderboard.table(leaderboard.read_results(tmp_path))
    text = leaderboard.to_markdown(frame, plugin_registry.installed())
    assert "60 s (a)" in text and "60 s (b)" in text and "(a) CPU two; (b) CPU one" in text  # b first: more accurate
    assert main(["leaderboard", str(tmp_path)]) == 0
    assert "merged results from 2 machines" in capsys.readouterr().err


# --- the machine block, compute, time to accuracy ---------------------------------------------


def test_machine_block_names_the_cpu_as_the_os_does():
    block = machine.describe()
    text = Path("/proc/cpuinfo").read_text()
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    if name is None:
        pytest.skip("no model name in /proc/cpuinfo on this machine")
    assert block["cpu"] == name.group(1).strip()
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
    for feature in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"):
        assert block["features"][feature] == (feature in flags), feature
    assert block["cores"] >= 1 and block["threads"] >= 1 and block["label"]


def test_cpu_info_from_an_arm_and_an_amx_machine():
    arm = machine.cpu_info("processor : 0\nFeatures : fp asimd sve\nCPU part : 0xd40\n")
    assert arm["features"]["asimd"] and arm["features"]["sve"] and not arm["features"]["avx2"]
    amx = machine.cpu_info("model name : Intel(R) Xeon(R) Platinum 8488C\nflags : avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert amx["cpu"] == "Intel(R) Xeon(R) Platinum 8488C" and amx["features"]["amx_bf16"]
    assert machine.label({**amx, "cores": 2}) == "Intel(R) Xeon(R) Platinum 8488C, 2 cores, amx_bf16"


def test_training_cost_counts_forward_and_backward_of_what_trains():
    cost = TrainingCost({"": 100, "base": 90, "base.0": 60, "base.1": 30, "head": 10}, head="head")
    assert cost.step(None) == 600  # 2 FLOPs per MAC x 3 passes
    assert cost.step(["head"]) == 2 * 100 + 4 * 10  # the whole forward, the head's backward
    assert cost.step(["head", "base.1"]) == 2 * 100 + 4 * 40
    assert cost.cached_base() == 2 * 90 and cost.head_step() == 6 * 10


def test_time_to_accuracy_reads_the_first_epoch_that_reached_it():
    history = [{"val_acc": 0.4, "train_time_s": 1, "train_images": 10, "train_flop": 100},
               {"val_acc": 0.75, "train_time_s": 2, "train_images": 20, "train_flop": 200},
               {"val_acc": 0.72, "train_time_s": 3, "train_images": 30, "train_flop": 300},
               {"val_acc": 0.81, "train_time_s": 4, "train_images": 40, "train_flop": 400}]
    reached = time_to_accuracy(history)
    assert (reached["to_val_50_s"], reached["to_val_70_images"], reached["to_val_80_flop"]) == (2, 20, 400)
    assert reached["to_val_90_s"] is None and reached["to_val_90_flop"] is None


# --- end to end: a results folder with zoo, variant and seeds ----------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    data = write_canonical(tmp_path_factory.mktemp("data") / "cifar-10-batches-py", per_class=(30, 10))
    out = tmp_path_factory.mktemp("results") / "out"
    common = ["--profile", "smoke", "--data", str(data), "--out", str(out), "--set", "data.val_size=20",
              "--set", "epochs=2"]
    assert main(["run", "--model", "baseline_cnn", "deep_cnn", *common]) == 0
    assert main(["run", "--model", "baseline_cnn", "--variant", "small", "--set", "data.train_size=100", *common]) == 0
    assert main(["run", "--model", "deep_cnn", "--seeds", "2", *common]) == 0
    return out


def _tables(markdown: str) -> list:
    """The header row of every table in a markdown text."""
    lines = markdown.splitlines()
    return [line for i, line in enumerate(lines) if line.startswith("|") and i + 1 < len(lines)
            and lines[i + 1].startswith("|:")]


def test_zoo_table_has_no_variants_and_every_row_an_interval(folder):
    text = (folder / "leaderboard.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert len(table) == 2 and not any("@" in line for line in table)
    assert all(re.search(r"\d\.\d{4} \(\d\.\d{4}-\d\.\d{4}\)", line) for line in table)
    assert all(header.count("|") - 1 <= 12 for header in _tables(text))
    board = {(r["model"], r["section"]): r for r in csv.DictReader((folder / "leaderboard.csv").open())}
    assert board[("deep_cnn", "zoo")]["interval"] == "t, 2 seeds"
    assert board[("baseline_cnn@small", "variant")]["base"] == "baseline_cnn"
    assert board[("baseline_cnn@small", "variant")]["test_vs_base"] == "mcnemar"
    for key in ("rank", "rank_raw", "p_vs_above", "diff_vs_above", "diff_vs_above_low", "diff_vs_above_high",
                "train_flop", "machine", "to_val_50_flop"):
        assert key in next(iter(board.values())), key


def test_report_has_variant_sections_heatmap_and_convergence(folder):
    report = (folder / "report.md").read_text()
    assert "## Other variants" in report and "baseline_cnn@small" in report
    assert "## Runs over several seeds" in report
    assert "![per-class F1 heatmap](per_class_f1.png)" in report
    assert "![validation accuracy against training compute](convergence.png)" in report
    for picture in ("per_class_f1.png", "convergence.png"):
        assert (folder / picture).read_bytes()[:4] == b"\x89PNG"
    assert all(header.count("|") - 1 <= 12 for header in _tables(report))


def test_predictions_match_metrics_and_the_test_set(folder):
    for metrics_path in folder.glob("**/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        for stage in metrics["stages"]:
            kept = np.load(metrics_path.parent / f"predictions-{stage['name']}.npz")
            assert kept["label"].dtype.kind == "i" and kept["pred"].dtype.kind == "i"
            classes = len(stage["per_class"])
            assert kept["prob"].dtype == np.float16 and kept["prob"].shape == (len(kept["label"]), classes)
            assert (kept["pred"] == kept["label"]).mean() == pytest.approx(stage["accuracy"], abs=1e-12)
            assert stage["test_fingerprint"].startswith("sha256:")
        assert metrics["machine"]["cpu"] and metrics["train_flop"] > 0
    assert not list(folder.glob("**/.*.tmp"))


def test_all_rows_prints_the_flat_table(folder, capsys):
    assert main(["leaderboard", str(folder), "--all-rows"]) == 0
    out = capsys.readouterr().out
    assert "baseline_cnn@small" in out and "| stage" in out
    assert main(["leaderboard", str(folder)]) == 0
    assert "baseline_cnn@small" not in capsys.readouterr().out


# --- robustness over every severity -----------------------------------------------------------


class Recorder(__import__("torch").nn.Module):
    """A model that keeps every batch it is shown and answers class 0."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        import torch

        self.seen.append(x.detach().clone())
        return torch.zeros(len(x), 10)


def test_each_severity_reaches_the_corrupted_images(tmp_path):
    import torch

    from harness import config as configuration
    from harness.evaluate import EvalContext
    from harness_evaluators.corruptions import CORRUPTIONS, corrupt
    from harness_evaluators.measures import robustness

    spec = plugin_registry.installed().models["baseline_cnn"].spec
    config = {**configuration.resolve(spec, "smoke", {}, 0), "tta_flip": True}  # the evaluator turns TTA off
    recipe = configuration.to_recipe(config)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (20, 3, 32, 32), dtype=np.uint8))
    y = np.arange(20) % 10
    model = Recorder()
    ctx = EvalContext(model=model, predict=None, test_x=x, test_y=y, classes=[str(i) for i in range(10)], input_size=32,
                      logits=torch.zeros(20, 10), folder=tmp_path, stage="train", config=config, recipe=recipe,
                      options={"severities": "1-5", "seed": 7}, main=True, accel=__import__("harness.accel").accel.CPU,
                      batch_size=500)
    out = robustness(ctx)
    expected = [corrupt(name, x, level, 7).float() / 255 for name in CORRUPTIONS for level in range(1, 6)]
    assert len(model.seen) == 6 * 5 + 1  # every corrupted set, then the clean one, one plain pass each
    for seen, wanted in zip(model.seen, expected):
        assert torch.allclose(seen, wanted, atol=1e-6)
    assert set(out["corruption_by_severity"]) == set(CORRUPTIONS)
    assert all(list(levels) == ["1", "2", "3", "4", "5"] for levels in out["corruption_by_severity"].values())
    rows = (tmp_path / "robustness-train.csv").read_text().splitlines()
    assert rows[0] == "corruption,severity_1,severity_2,severity_3,severity_4,severity_5,mean" and len(rows) == 7
    assert out["corruption_acc"] == pytest.approx(0.1)  # class 0 for all: a tenth right, whatever the images


def test_mce_against_the_reference_model():
    from harness_evaluators.sections import mean_corruption_error

    reference = {"noise": {"1": 0.8, "2": 0.6}, "blur": {"1": 0.9, "2": 0.7}}
    model = {"noise": {"1": 0.9, "2": 0.8}, "blur": {"1": 0.9, "2": 0.7}}
    # noise: (0.1 + 0.2) / (0.2 + 0.4) = 0.5; blur: 1.0
    assert mean_corruption_error(model, reference) == pytest.approx(0.75)
    assert mean_corruption_error(reference, reference) == pytest.approx(1.0)


# --- each statistic pinned so that a plausible mistake in it fails ---------------------------


def test_holm_keeps_its_running_maximum():
    # sorted 0.01, 0.014, 0.04 -> 0.03, max(0.03, 2 * 0.014 = 0.028), max(0.03, 0.04)
    assert holm([0.014, 0.04, 0.01]) == pytest.approx([0.03, 0.04, 0.03])


def test_the_unpaired_test_pools_the_proportions_under_its_null():
    from harness.report.stats import two_proportion95

    diff, low, high, p = two_proportion95(0.80, 0.75, 1000, 800)
    pooled = (800 + 600) / 1800  # by hand: z = 0.05 / sqrt(p (1 - p) (1/1000 + 1/800))
    z = 0.05 / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 800))
    assert p == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert (low, high) == pytest.approx((0.05 - 1.959964 * np.sqrt(0.8 * 0.2 / 1000 + 0.75 * 0.25 / 800),
                                         0.05 + 1.959964 * np.sqrt(0.8 * 0.2 / 1000 + 0.75 * 0.25 / 800)), rel=1e-6)


def _holm_by_hand(pvalues):
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - k) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def test_ranks_follow_holm_at_the_five_percent_level(tmp_path):
    """Three models whose raw McNemar p-values would rank them otherwise: a is better than b
    (p = 0.004, Holm 0.012: significant at 5%, not at 1%) and than c (p about 0.03, Holm about 0.06:
    not significant, though the raw p is), so the ranks are 1, 2, 1: with no correction c would be 2,
    at the 1% level b would be 1."""
    n = 1000
    labels = np.arange(n) % 10
    a = np.zeros(n, bool)
    a[:800] = True
    b = a.copy()
    b[:20] = False  # only a right: 20
    b[800:805] = True  # only b right: 5
    c = a.copy()
    c[20:60] = False  # only a right: 40
    c[805:827] = True  # only c right: 22
    for name, right in (("a", a), ("b", b), ("c", c)):
        _result(tmp_path / name, name, right, labels)
    zoo = leaderboard.table(leaderboard.read_results(tmp_path)).set_index("model")
    assert list(zoo.index[:3]) == ["a", "b", "c"]  # by accuracy: 0.800, 0.785, 0.782
    pairs = {(x, y): stats.binomtest(int((rx & ~ry).sum()), int((rx ^ ry).sum()), 0.5).pvalue
             for (x, rx), (y, ry) in [(("a", a), ("b", b)), (("a", a), ("c", c)), (("b", b), ("c", c))]}
    adjusted = dict(zip(pairs, _holm_by_hand(list(pairs.values()))))
    assert pairs[("a", "c")] < 0.05 < adjusted[("a", "c")] and 0.01 < adjusted[("a", "b")] < 0.05
    assert list(zoo["rank"][:3]) == [1, 2, 1]
    assert zoo.loc["b", "p_vs_above_holm"] == pytest.approx(adjusted[("a", "b")])
    assert zoo.loc["c", "p_vs_best_holm"] == pytest.approx(adjusted[("a", "c")])


def test_a_row_of_several_seeds_is_compared_through_the_seed_both_share(tmp_path):
    """Seeds 0 and 1 against a single run of seed 1: image by image through seed 1's runs (seed 0's
    run is far better and must not be the one used), and never a paired t over one shared seed."""
    labels = np.arange(500) % 10
    _result(tmp_path / "many" / "seed-0", "many", np.ones(500, bool), labels, seed=0)
    seed1 = np.arange(500) % 5 != 0  # 0.8
    _result(tmp_path / "many" / "seed-1", "many", seed1, labels, seed=1)
    single = np.arange(500) % 4 != 0  # 0.75
    _result(tmp_path / "one", "one", single, labels, seed=1)
    for seed in (1, 2):
        _result(tmp_path / "pair" / f"seed-{seed}", "pair", single, labels, seed=seed)
    rows = {r["model"]: r for r in leaderboard.ranked_rows(leaderboard.read_results(tmp_path))}
    result = compare(rows["many"], rows["one"])
    assert (result.test, result.seed) == ("mcnemar", 1)
    assert result.diff == pytest.approx(seed1.mean() - single.mean())
    only_many, only_one = int((seed1 & ~single).sum()), int((~seed1 & single).sum())
    assert result.p == pytest.approx(stats.binomtest(only_many, only_many + only_one, 0.5).pvalue)
    one_shared = compare(rows["many"], rows["pair"])  # seeds 0,1 against 1,2: one shared seed
    assert (one_shared.test, one_shared.seed) == ("mcnemar", 1)


def test_without_predictions_several_seeds_against_one_run_use_the_shared_seeds_runs(tmp_path):
    """Unpaired, but still one run against one run: seed 0's accuracy against the single run's,
    not the mean over seeds as if it were one proportion over the test images."""
    labels = np.arange(1000) % 10
    for seed, share in ((0, 4), (1, 10), (2, 10)):  # 0.75, 0.9, 0.9
        _result(tmp_path / "many" / f"seed-{seed}", "many", np.arange(1000) % share != 0, labels, seed=seed)
    _result(tmp_path / "one", "one", np.arange(1000) % 5 != 0, labels, seed=0)  # 0.8
    for path in tmp_path.glob("**/predictions-*.npz"):
        path.unlink()
    rows = {r["model"]: r for r in leaderboard.ranked_rows(leaderboard.read_results(tmp_path))}
    result = compare(rows["many"], rows["one"])
    assert (result.test, result.seed) == ("unpaired-z", 0)
    assert result.diff == pytest.approx(0.75 - 0.80)  # the mean, 0.85, would give +0.05


def _repeats(accuracies: dict, model: str) -> dict:
    """A zoo row of several seeds, as leaderboard.table makes it: its members in the order given."""
    return {"model": model, "stage": "train", "members": [{"seed": seed, "accuracy": value}
                                                          for seed, value in accuracies.items()]}


def test_p_a_beats_b_pairs_repeats_by_seed():
    """A wins every seed against B's run of the same seed; paired by position it would win 2 of 3."""
    a = _repeats({0: 0.50, 1: 0.60, 2: 0.70}, "a")
    b = _repeats({2: 0.65, 1: 0.55, 0: 0.44}, "b")
    result = compare(a, b)
    prob, low, high, wins, repeats = result.beats
    assert (prob, wins, repeats) == (1.0, 3, 3) and low == high == 1.0 and result.better
    assert "a beats b in 3 of 3 paired runs, P(a > b) = 1.00 [1.00, 1.00]" in result.words("a", "b")
    # runs of other seeds are not repeats of each other: no P(A > B) from them
    other = compare(a, _repeats({3: 0.4, 4: 0.4, 5: 0.4}, "c"))
    assert other is None or other.beats is None


def test_p_a_beats_b_and_the_rank_rule():
    from harness.report.compare import rank_zoo

    a = _repeats({0: 0.61, 1: 0.62, 2: 0.60, 3: 0.50, 4: 0.64}, "a")
    b = _repeats({0: 0.55, 1: 0.56, 2: 0.57, 3: 0.58, 4: 0.59}, "b")
    prob, low, high, wins, repeats = compare(a, b).beats
    assert (prob, wins, repeats) == (0.8, 4, 5)
    sample = np.random.default_rng(0).integers(0, 5, size=(10000, 5))  # the bootstrap over pairs, by hand
    shares = (np.array([1, 1, 1, 0, 1])[sample]).mean(axis=1)
    assert (low, high) == (np.percentile(shares, 2.5), np.percentile(shares, 97.5))
    for row in (a, b):
        row.update(section="zoo", status="ok")
    rank_zoo([a, b])  # P = 0.8 but the interval reaches below 0.5: not better by Bouthillier's rule
    assert b["rank"] == 1 and b["pab_vs_above"] == 0.8 and b["wins_vs_above"] == 4
    c = _repeats({seed: value - 0.1 for seed, value in ((0, 0.61), (1, 0.62), (2, 0.60), (3, 0.60), (4, 0.64))}, "c")
    c.update(section="zoo", status="ok")
    rank_zoo([a, c])
    assert c["rank"] == 2


def test_a_variant_over_paired_seeds_gets_p_of_beating_its_base():
    """What tuning bought: the hand-made recipe (a variant) against the tuned model, seed by seed."""
    from harness.report.compare import against_base

    tuned = {**_repeats({0: 0.70, 1: 0.72, 2: 0.71}, "baseline_cnn"), "profile": "quick"}
    recipe = {**_repeats({0: 0.66, 1: 0.73, 2: 0.65}, "baseline_cnn@recipe"), "profile": "quick"}
    against_base(recipe, tuned)
    assert recipe["wins_vs_base"] == 1 and recipe["repeats_vs_base"] == 3
    assert recipe["pab_vs_base"] == pytest.approx(1 / 3)


def test_seeds_run_before_splits_followed_the_seed_still_merge(tmp_path):
    """Runs of one model whose seeds drew their own splits and runs whose split was pinned are
    repeats of the same settings: the split is a draw of the randomness, like the seed."""
    from harness.report.leaderboard import settings_of

    configs = [{"model": "m", "seed": seed, "data": {"val_size": None, "split_seed": split}}
               for seed, split in ((0, 0), (1, 1), (2, 0))]
    found = set()
    for index, config in enumerate(configs):
        folder = tmp_path / str(index)
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        found.add(settings_of({"path": str(folder)}))
    assert len(found) == 1
