"""The leaderboard from hand-made metrics files: ranking, stage rows, seeds with a Student's t
confidence interval, merging folders, and old or partial folders read without crashing."""
import json
import math

import pandas as pd
import pytest

from harness import plugin_registry
from harness.cli import main
from harness.report import leaderboard, markdown
from harness.report.stats import mean_ci95


def write_metrics(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(fields))


def result(model, accuracy, family="cnn", seed=0, stages=None, **extra):
    return dict(model=model, family=family, status="ok", accuracy=accuracy, precision=accuracy, recall=accuracy,
                f1=accuracy, seed=seed, profile="quick", train_time_s=10.0, params=1000, macs=2000,
                stages=stages or [{"name": "train", "accuracy": accuracy, "precision": accuracy, "recall": accuracy,
                                   "f1": accuracy, "best_epoch": 3, "epochs": 5}], **extra)


def test_ranking_and_one_row_per_stage(tmp_path):
    write_metrics(tmp_path / "a", **result("a", 0.7))
    write_metrics(tmp_path / "b", **result("b", 0.9, family="transfer", stages=[
        {"name": "frozen", "accuracy": 0.6, "precision": 0.6, "recall": 0.6, "f1": 0.6, "best_epoch": 2, "epochs": 4},
        {"name": "finetune", "accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9, "best_epoch": 5, "epochs": 9},
    ]))
    write_metrics(tmp_path / "c", model="c", status="failed", reason="RuntimeError: boom")
    frame = leaderboard.table(leaderboard.read_results(tmp_path))
    stages = [stage if isinstance(stage, str) else None for stage in frame["stage"]]
    # the zoo (each model's final stage, the failed one last), then earlier stages
    assert list(zip(frame["model"], stages)) == [("b", "finetune"), ("a", "train"), ("c", None), ("b", "frozen")]
    assert list(frame["section"]) == ["zoo", "zoo", "zoo", "stage"]
    assert list(frame["rank_raw"][:2]) == [1, 2] and frame["rank_raw"][2:].isna().all()
    assert frame.iloc[2]["status"] == "failed" and frame.iloc[2]["reason"] == "RuntimeError: boom"
    assert set(leaderboard.COLUMNS) <= set(frame.columns)


def test_seeds_give_mean_and_students_t_interval(tmp_path):
    accuracies = [0.80, 0.82, 0.84]
    for seed, accuracy in enumerate(accuracies):
        write_metrics(tmp_path / "m" / f"seed-{seed}", **result("m", accuracy, seed=seed))
    row = leaderboard.table(leaderboard.read_results(tmp_path)).iloc[0]
    # by hand: mean 0.82, sd 0.02, t(0.975, 2) = 4.302653, half-width = 4.302653 * 0.02 / sqrt(3)
    assert row["accuracy"] == pytest.approx(0.82)
    assert row["accuracy_ci95"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    assert row["runs"] == 3 and row["seed"] == "0,1,2"
    frame = leaderboard.table(leaderboard.read_results(tmp_path))
    assert "0.8200 ± 0.0497" in leaderboard.to_markdown(frame, plugin_registry.installed())


def test_every_metric_gets_its_own_interval(tmp_path):
    """precision, recall and F1 are averaged and given intervals from their own values, not accuracy's."""
    by_seed = [dict(accuracy=0.80, precision=0.60, recall=0.90, f1=0.70), dict(accuracy=0.82, precision=0.70,
               recall=0.90, f1=0.75), dict(accuracy=0.84, precision=0.80, recall=0.90, f1=0.80)]
    for seed, values in enumerate(by_seed):
        stage = {"name": "train", "best_epoch": 3, "epochs": 5, **values}
        write_metrics(tmp_path / "m" / f"seed-{seed}", **{**result("m", values["accuracy"], seed=seed, stages=[stage]),
                                                          **values})
    row = leaderboard.table(leaderboard.read_results(tmp_path)).iloc[0]
    t = 4.302653  # t(0.975, 2)
    assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((0.70, 0.90, 0.75))
    assert row["precision_ci95"] == pytest.approx(t * 0.10 / math.sqrt(3), rel=1e-5)
    assert row["f1_ci95"] == pytest.approx(t * 0.05 / math.sqrt(3), rel=1e-5)
    assert row["recall_ci95"] == pytest.approx(0.0, abs=1e-12)  # the same value three times


def test_single_run_has_no_interval():
    assert mean_ci95([0.5]) == (0.5, None)


def test_merge_of_two_folders(tmp_path, capsys):
    write_metrics(tmp_path / "cpu" / "a", **result("a", 0.7))
    write_metrics(tmp_path / "gpu" / "b", **result("b", 0.8))
    assert main(["leaderboard", str(tmp_path / "cpu"), str(tmp_path / "gpu"), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rank,rank_raw,section,model,stage") and "accuracy_ci95" in lines[0]
    assert [line.split(",")[3] for line in lines[1:]] == ["b", "a"]


def test_old_and_partial_folders_never_crash(tmp_path):
    write_metrics(tmp_path / "old", model="old", accuracy=0.5)  # an old format: no stages, no status
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{ not json")
    (tmp_path / "empty").mkdir()
    frame = leaderboard.table(leaderboard.read_results(tmp_path))
    assert set(frame["model"]) == {"old", "broken"}
    assert frame.set_index("model").loc["broken", "status"] == "unreadable"
    markdown.write_report(tmp_path, plugin_registry.installed())  # and the report renders from it
    assert "old" in (tmp_path / "report.md").read_text()


def test_comparison_in_words(tmp_path):
    write_metrics(tmp_path / "cnn", **result("cnn", 0.70))
    write_metrics(tmp_path / "tl", **{**result("tl", 0.91, family="transfer"), "train_time_s": 30.0, "macs": 8000})
    text = markdown.comparison(leaderboard.ranked_rows(leaderboard.read_results(tmp_path)))
    assert "best transfer model, tl (train), reached 0.9100 test accuracy against 0.7000 for the best CNN, cnn" in text
    # no test-set size, no predictions: nothing to test; machines not recorded: no time ratio
    assert "no paired comparison could be made" in text and "4.0x the MACs" in text and "the time" not in text
    for name in ("cnn", "tl"):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        metrics.update(machine={"label": "one CPU"}, data={"test": 10000})
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    text = markdown.comparison(leaderboard.ranked_rows(leaderboard.read_results(tmp_path)))
    assert "+21.0 points, 95% interval" in text and "unpaired two-proportion test" in text
    assert "30 s of training against 10 s on the same machine (3.0x the time)" in text


def test_a_transfer_architecture_from_scratch_is_named_as_one(tmp_path):
    """deep_cnn against timm:resnet10t --no-pretrained is a CNN against another network from scratch,
    not against a "scratch model"."""
    write_metrics(tmp_path / "deep", **result("deep", 0.90))
    write_metrics(tmp_path / "resnet", **result("resnet", 0.85, family="scratch"))
    text = markdown.comparison(leaderboard.ranked_rows(leaderboard.read_results(tmp_path)))
    assert text.startswith("The best CNN, deep (train), reached 0.9000 test accuracy against 0.8500 for the best "
                           "transfer architecture trained from scratch, resnet (train)")
    write_metrics(tmp_path / "resnet", **result("resnet", 0.85, family="mine"))  # a plugin's own family
    text = markdown.comparison(leaderboard.ranked_rows(leaderboard.read_results(tmp_path)))
    assert "for the best mine model, resnet (train)" in text
    write_metrics(tmp_path / "alone" / "tl", **result("tl", 0.9, family="transfer"))
    text = markdown.comparison(leaderboard.ranked_rows(leaderboard.read_results(tmp_path / "alone")))
    assert "Only the transfer family ran here" in text and "Run a CNN as well to compare the two" in text


def test_data_efficiency_plot_from_runs_with_several_train_sizes(tmp_path):
    for size, accuracy in ((1000, 0.5), (5000, 0.7), (20000, 0.8)):
        write_metrics(tmp_path / f"cnn@n{size}", **result("cnn", accuracy, data={"train": size}))
    write_metrics(tmp_path / "cnn@no-reduce-lr", **result("cnn", 0.1, data={"train": 20000},
                                                          variant="no-reduce-lr"))
    report = markdown.write_report(tmp_path, plugin_registry.installed()).read_text()
    assert "## Accuracy against training-set size" in report
    assert (tmp_path / "data_efficiency.png").read_bytes()[:4] == b"\x89PNG"
    # the ablated run is left out of the curve and answers the second question instead
    assert "| cnn (cnn, quick) | 0.5000 | 0.7000 | 0.8000 |" in " ".join(report.split())
    assert "Without ReduceLROnPlateau, cnn" in report and "reached 0.1000 test accuracy against 0.8000" in report


def test_the_size_section_names_the_family_a_transfer_model_is_set_against(tmp_path):
    """At each training-set size a transfer model is set against the best of the other families: a
    network from scratch is named as one, not as "the best CNN"."""
    for size, accuracy in ((1000, 0.5), (5000, 0.7)):
        write_metrics(tmp_path / f"tl@n{size}", **result("tl", accuracy + 0.2, family="transfer", data={"train": size}))
        write_metrics(tmp_path / f"resnet@n{size}", **result("resnet", accuracy, family="scratch", data={"train": size}))
    report = " ".join(markdown.write_report(tmp_path, plugin_registry.installed()).read_text().split())
    assert ("With 1,000 training images the best transfer model, tl@n1000, reached 0.7000 against 0.5000 for "
            "the best transfer architecture trained from scratch, resnet@n1000") in report
    assert "for the best CNN" not in report


def test_report_names_the_weights_file_and_its_full_sha256(tmp_path):
    sha = "ab" * 32
    write_metrics(tmp_path / "tl", **result("tl", 0.9, family="transfer", weights="file:w.safetensors sha256:abab",
                                            weights_source={"kind": "file", "path": "/w/w.safetensors",
                                                            "sha256": sha, "tag": None}))
    report = markdown.write_report(tmp_path, plugin_registry.installed()).read_text()
    assert "[tl](tl/README.md)" in report  # the provenance beside the results, linked
    assert f"file `/w/w.safetensors`, sha256 `{sha}`" in (tmp_path / "tl" / "README.md").read_text()


def test_an_earlier_stage_shows_its_own_times_and_not_the_runs(tmp_path):
    """A frozen stage that never reached 0.8 validation accuracy has no time to 0.8, though the
    run's fine-tuning reached it; its time and compute are those at its end."""
    stages = [{"name": "frozen", "accuracy": 0.6, "precision": 0.6, "recall": 0.6, "f1": 0.6, "best_epoch": 2,
               "epochs": 2, "train_time_s": 4.0, "train_flop": 1e9, "train_images": 200},
              {"name": "finetune", "accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9, "best_epoch": 2,
               "epochs": 2}]
    write_metrics(tmp_path / "t", **result("t", 0.9, family="transfer", stages=stages, to_val_80_s=30.0,
                                           to_val_50_s=2.0, train_img_s=50.0))
    (tmp_path / "t" / "history.csv").write_text(
        "stage,epoch,val_acc,train_time_s,train_images,train_flop\n"
        "frozen,1,0.55,2.0,100,5e8\nfrozen,2,0.70,4.0,200,1e9\nfinetune,1,0.78,20.0,300,5e9\nfinetune,2,0.85,30.0,400,9e9\n")
    frame = leaderboard.table(leaderboard.read_results(tmp_path)).set_index("stage")
    assert frame.loc["finetune", "to_val_80_s"] == 30.0
    frozen = frame.loc["frozen"]
    assert pd.isna(frozen["to_val_80_s"]) and pd.isna(frozen["to_val_80_flop"])
    assert frozen["to_val_50_s"] == 2.0 and frozen["to_val_70_images"] == 200
    assert (frozen["train_time_s"], frozen["train_flop"], frozen["train_img_s"]) == (4.0, 1e9, 50.0)


def _run(folder, model, accuracy, fingerprint, seed=0, epochs=5):
    stage = {"name": "train", "accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy,
             "best_epoch": 3, "epochs": epochs, "test_fingerprint": fingerprint}
    write_metrics(folder, **result(model, accuracy, seed=seed, stages=[stage], test_fingerprint=fingerprint,
                                   data={"train": 100, "val": 10, "test": 500}))
    (folder / "config.json").write_text(json.dumps({"command": f"harness run --out {folder.parent}", "seed": seed,
                                                    "model": model, "profile": "quick", "epochs": epochs,
                                                    "data_source": str(folder)}))


def test_runs_that_differ_are_never_merged_as_seeds(tmp_path, capsys):
    """Two folders' baseline_cnn seed 0, on different test images: two rows, named by folder, and a
    line saying why; the same seed with the same settings in two folders counts once; other
    settings on the same images are kept apart too."""
    _run(tmp_path / "A" / "baseline_cnn", "baseline_cnn", 0.40, "sha256:sample")
    _run(tmp_path / "B" / "baseline_cnn", "baseline_cnn", 0.26, "sha256:zip500")
    frame = leaderboard.table(leaderboard.read_results(tmp_path / "A", tmp_path / "B"))
    assert sorted(frame["model"]) == ["baseline_cnn [A]", "baseline_cnn [B]"] and set(frame["runs"]) == {1}
    assert main(["leaderboard", str(tmp_path / "A"), str(tmp_path / "B")]) == 0
    out, err = capsys.readouterr()
    assert "| baseline_cnn [A] " in out and "| baseline_cnn [B] " in out and "kept apart" in err

    _run(tmp_path / "C" / "baseline_cnn", "baseline_cnn", 0.40, "sha256:sample")  # A's run again
    row = leaderboard.table(leaderboard.read_results(tmp_path / "A", tmp_path / "C")).iloc[0]
    assert (row["model"], row["runs"], str(row["seed"])) == ("baseline_cnn", 1, "0")

    _run(tmp_path / "D" / "baseline_cnn" / "seed-1", "baseline_cnn", 0.42, "sha256:sample", seed=1, epochs=9)
    frame = leaderboard.table(leaderboard.read_results(tmp_path / "A", tmp_path / "D"))
    assert sorted(frame["model"]) == ["baseline_cnn [A]", "baseline_cnn [D]"]

    _run(tmp_path / "E" / "baseline_cnn" / "seed-1", "baseline_cnn", 0.42, "sha256:sample", seed=1)
    row = leaderboard.table(leaderboard.read_results(tmp_path / "A", tmp_path / "E")).iloc[0]
    assert (row["model"], row["runs"], row["seed"]) == ("baseline_cnn", 2, "0,1")  # seeds of one setting merge


def test_a_variant_is_tested_against_its_base_only_when_nothing_else_differs(tmp_path):
    """A variant run with another profile is 'not comparable', with no test; one that changes only
    its own setting (the training-set size) is tested."""
    data = {"train": 45000, "val": 5000, "test": 10000, "dataset": "cifar10"}
    write_metrics(tmp_path / "m", **result("m", 0.82, data=data, test_fingerprint="sha256:t"))
    write_metrics(tmp_path / "m@study", **{**result("m", 0.70, data={**data, "train": 10000},
                                                    test_fingerprint="sha256:t"), "profile": "full", "variant": "study"})
    write_metrics(tmp_path / "m@n5000", **result("m", 0.61, data={**data, "train": 5000}, test_fingerprint="sha256:t",
                                                 variant="n5000"))
    frame = leaderboard.table(leaderboard.read_results(tmp_path)).set_index("model")
    assert frame.loc["m@study", "not_comparable"] == "profile full against quick"
    assert pd.isna(frame.loc["m@study", "p_vs_base"]) and pd.isna(frame.loc["m@study", "diff_vs_base"])
    assert pd.isna(frame.loc["m@n5000", "not_comparable"]) and frame.loc["m@n5000", "p_vs_base"] < 0.001
    report = markdown.write_report(tmp_path, plugin_registry.installed()).read_text()
    assert "not comparable: profile full against quick" in report and "-12.00" not in report

    # the same variant trained in float32 against a base in bf16 (another machine's --amp auto)
    cpu = {"device": "cpu", "channels_last": True, "compile": False}
    write_metrics(tmp_path / "m", **result("m", 0.82, data=data, test_fingerprint="sha256:t"), accel={**cpu, "amp": True})
    write_metrics(tmp_path / "m@n5000", **result("m", 0.61, data={**data, "train": 5000}, test_fingerprint="sha256:t",
                                                 variant="n5000"), accel={**cpu, "amp": False})
    frame = leaderboard.table(leaderboard.read_results(tmp_path)).set_index("model")
    assert frame.loc["m@n5000", "not_comparable"] == "training precision float32 against mixed"
    assert pd.isna(frame.loc["m@n5000", "p_vs_base"])


def test_a_seed_counts_once_in_the_accuracy_against_size_table(tmp_path):
    data = {"train": 45000, "val": 5000, "test": 10000}
    write_metrics(tmp_path / "m", **result("m", 0.80, data=data))
    write_metrics(tmp_path / "m@seeds" / "seed-0", **result("m", 0.80, data=data, variant="seeds"))
    write_metrics(tmp_path / "m@seeds" / "seed-1", **result("m", 0.90, seed=1, data=data, variant="seeds"))
    write_metrics(tmp_path / "m@n1000", **result("m", 0.50, data={**data, "train": 1000}, variant="n1000"))
    report = markdown.write_report(tmp_path, plugin_registry.installed()).read_text()
    assert "| 0.8500 (2 runs) |" in report, report
