"""Plots written as PNG files (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.fileio import atomic_path
from harness.status import Status


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path, dpi: int, tight: bool = True) -> None:
    """Lay the figure out, write it as a PNG atomically, and free it."""
    if tight:
        figure.tight_layout()
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)


def confusion_png(path: Path, confusion, classes: list, title: str) -> None:
    """Counts and row-normalised rates side by side, class names on both axes."""
    plt = _pyplot()
    counts = np.asarray(confusion)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(6, 0.55 * len(classes) + 3)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, values, name, fmt in ((axes[0], counts, "counts", "d"), (axes[1], rates, "row-normalised", ".2f")):
        ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})")
        threshold = values.max() / 2 if values.size else 0
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7,
                    color="white" if v > threshold else "black")
    _save(plt, figure, path, dpi=90)


def curves_png(path: Path, history: list, title: str) -> None:
    """Loss, accuracy and learning rate against epoch, every stage in one run of epochs, with the
    stage boundaries marked."""
    plt = _pyplot()
    steps = list(range(1, len(history) + 1))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes[:2], ("loss", "acc")):
        ax.plot(steps, [row[f"train_{metric}"] for row in history], label=f"train_{metric}")
        ax.plot(steps, [row[f"val_{metric}"] for row in history], label=f"val_{metric}")
        ax.set_ylabel(metric)
    axes[2].plot(steps, [row["lr"] for row in history], color="tab:green", label="lr")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("learning rate")
    boundaries = [i for i in range(1, len(history)) if history[i]["stage"] != history[i - 1]["stage"]]
    for ax in axes:
        ax.set_xlabel("epoch (all stages)")
        for boundary in boundaries:
            ax.axvline(boundary + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.legend(loc="best", fontsize=8)
    starts = [0] + boundaries
    for start in starts:
        axes[1].annotate(history[start]["stage"], (start + 1, 0.02), xycoords=("data", "axes fraction"), fontsize=8)
    figure.suptitle(title)
    _save(plt, figure, path, dpi=80)


def samples_png(path: Path, images, augment, per_class: int = 6, max_classes: int = 12, seed: int = 0) -> None:
    """A grid of training images, one row per class (labelled), and the same images after the
    recipe's augmentation beside them."""
    import torch

    from harness.data.augment import augment_batch

    plt = _pyplot()
    rng = np.random.default_rng(seed)
    classes = list(images.classes)[:max_classes]
    chosen = []
    for label in range(len(classes)):
        members = np.flatnonzero(images.train_y == label)
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    index = np.concatenate(chosen)
    original = torch.from_numpy(images.train_x[index]).float() / 255
    augmented = augment_batch(original, augment, torch.Generator().manual_seed(seed))
    columns = per_class * 2 + 1
    figure, axes = plt.subplots(len(classes), columns, figsize=(columns * 1.1, len(classes) * 1.15), squeeze=False)
    position = 0
    for row, (label_name, members) in enumerate(zip(classes, chosen)):
        for column in range(columns):
            ax = axes[row][column]
            ax.axis("off")
            if column == per_class:
                continue  # a blank column between the two halves
            k = column if column < per_class else column - per_class - 1
            if k >= len(members):
                continue
            batch = original if column < per_class else augmented
            ax.imshow(batch[position + k].permute(1, 2, 0).clamp(0, 1).numpy())
            if k == 0 and column < per_class:
                ax.set_title(label_name, fontsize=8, loc="left")
        position += len(members)
    axes[0][0].annotate("original", (0, 1.6), xycoords="axes fraction", fontsize=9, weight="bold")
    axes[0][per_class + 1].annotate("augmented", (0, 1.6), xycoords="axes fraction", fontsize=9, weight="bold")
    _save(plt, figure, path, dpi=80)


def data_efficiency_png(path: Path, series: dict) -> None:
    """Test accuracy against training-set size, one line per (model, family)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.5))
    for (model, family), points in sorted(series.items(), key=lambda item: str(item[0])):
        sizes = sorted(points)
        ax.plot(sizes, [np.mean(points[n]) for n in sizes], marker="o",
                linestyle="-" if family == "transfer" else "--", label=f"{model} ({family})")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, figure, path, dpi=80)


def reliability_png(path: Path, bins: list, title: str, ece: float) -> None:
    """Accuracy against confidence per bin, over the diagonal of perfect calibration, with the
    share of images in each bin underneath."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    centres, width, accuracy = _reliability_bars(top, bins)
    confidence = [b["confidence"] if b["confidence"] is not None else c for b, c in zip(bins, centres)]
    top.bar(centres, [c - a for a, c in zip(accuracy, confidence)], bottom=accuracy, width=width, color="tab:red",
            alpha=0.3, label="gap to confidence")
    top.set_ylabel("accuracy")
    top.set_title(f"{title}: ECE {ece:.4f}")
    top.legend(loc="upper left")
    total = max(1, sum(b["count"] for b in bins))
    bottom.bar(centres, [b["count"] / total for b in bins], width=width, color="gray")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("share")
    _save(plt, figure, path, dpi=80)


def _reliability_bars(ax, bins: list) -> tuple:
    """Accuracy per confidence bin as bars over the diagonal of perfect calibration; the bins'
    centres, width and accuracies."""
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    accuracy = [b["accuracy"] or 0 for b in bins]
    ax.bar(centres, accuracy, width=width, edgecolor="black", color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    return centres, width, accuracy


def pareto_front(points: list) -> list:
    """The points no other point beats on both axes (lower cost, higher accuracy), by cost."""
    front, best = [], -1.0
    for cost, accuracy, label in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append((cost, accuracy, label))
            best = accuracy
    return front


def pareto_png(path: Path, frame) -> None:
    """Test accuracy with its 95% interval against training compute and against MACs per image, one
    labelled point per row given (the zoo), log-scaled costs, the Pareto front drawn. Compute, not
    seconds: rows may come from different machines."""
    rows = frame[(frame["status"] == Status.OK) & frame["accuracy"].notna()]
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, column, label in ((axes[0], "train_flop", "training compute (FLOPs, log)"),
                              (axes[1], "macs", "MACs per image (log)")):
        points = [(float(c), float(a), f"{m} ({s})", _bounds(low, high, a)) for c, a, m, s, low, high in
                  zip(rows[column], rows["accuracy"], rows["model"], rows["stage"],
                      rows.get("accuracy_low", [None] * len(rows)), rows.get("accuracy_high", [None] * len(rows)))
                  if c is not None and not (isinstance(c, float) and np.isnan(c)) and float(c) > 0]
        if not points:
            ax.set_visible(False)
            continue
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=np.array([p[3] for p in points]).T,
                    fmt="o", color="tab:blue", alpha=0.7, capsize=3, label="test accuracy, 95% interval")
        front = pareto_front([p[:3] for p in points])
        ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:red", drawstyle="steps-post",
                label="Pareto front")
        for i, (cost, accuracy, name, _) in enumerate(sorted(points, key=lambda p: -p[1])):
            # alternately above and below the point, so that labels of close points do not overlap
            ax.annotate(name, (cost, accuracy), textcoords="offset points", xytext=(5, 4 if i % 2 == 0 else -11),
                        fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    figure.suptitle("accuracy against cost, every row labelled")
    _save(plt, figure, path, dpi=80)


def _bounds(low, high, accuracy) -> tuple:
    """The distances below and above ``accuracy`` of its interval (0, 0 where it has none)."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return 0.0, 0.0
    return max(0.0, float(accuracy) - float(low)), max(0.0, float(high) - float(accuracy))


def deployment_png(path: Path, rows: list, machine: str) -> None:
    """Test accuracy against batch-1 latency (log) per model: its float32 ONNX point, its int8
    point, and an arrow between them. ``rows``: (label, (ms, accuracy), (ms, accuracy) or None)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(10, 5))
    for i, (label, fp32, int8) in enumerate(rows):
        colour = f"C{i % 10}"
        ax.scatter([fp32[0]], [fp32[1]], color=colour, marker="o", label=f"{label} float32")
        ax.annotate(label, fp32, textcoords="offset points", xytext=(5, 4), fontsize=7)
        if int8 is not None:
            ax.scatter([int8[0]], [int8[1]], color=colour, marker="s", label=f"{label} int8")
            ax.annotate("", xy=int8, xytext=fp32, arrowprops={"arrowstyle": "->", "color": colour, "alpha": 0.6})
    ax.set_xscale("log")
    ax.set_xlabel(f"batch-1 latency in ONNX Runtime (ms, log), {machine}")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the points, not over them
    ax.set_title("float32 (circles) and int8 (squares) ONNX models")
    _save(plt, figure, path, dpi=80)


def reliability_grid_png(path: Path, panels: list, columns: int = 4) -> None:
    """Every stage's reliability diagram in one figure: ``panels`` of (title, bins, ece), each
    accuracy against confidence per bin over the diagonal of perfect calibration."""
    plt = _pyplot()
    rows = max(1, -(-len(panels) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False,
                                sharex=True, sharey=True)
    for ax, (title, bins, ece) in zip(axes.flat, panels):
        _reliability_bars(ax, bins)
        ax.set_title(f"{title}\nECE {ece:.4f}" if ece is not None else title, fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("confidence")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    _save(plt, figure, path, dpi=80)


def f1_heatmap_png(path: Path, rows: list, classes: list, values) -> None:
    """Per-class F1, rows (models) x classes, each cell's number written in it."""
    plt = _pyplot()
    values = np.asarray(values, dtype=float)
    figure, ax = plt.subplots(figsize=(max(6, 0.8 * len(classes) + 3), max(2.5, 0.45 * len(rows) + 1.5)))
    ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    ax.set_title("per-class F1 on the test set")
    _save(plt, figure, path, dpi=80)


def convergence_png(path: Path, series: dict) -> None:
    """Validation accuracy against training compute (log FLOPs), one line per row: (flops, accs)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, (flops, accuracies) in series.items():
        ax.plot(flops, accuracies, marker=".", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs, log)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(plt, figure, path, dpi=80)


def best_so_far(rows: list) -> list:
    """(trial number, cumulative training FLOPs, best validation accuracy so far) after each
    finished trial (a pruned trial's compute counts, its accuracy does not)."""
    points, best, compute = [], None, 0.0
    for row in sorted(rows, key=lambda r: int(r["number"])):
        if row.get("state") not in ("complete", "pruned"):
            continue
        compute += float(row.get("train_flop") or 0)
        if row["state"] == "complete" and row.get("val_acc") not in (None, ""):
            best = max(best or 0.0, float(row["val_acc"]))
        if best is not None:
            points.append((int(row["number"]) + 1, compute, best))
    return points


def tuning_png(path: Path, curves: dict) -> None:
    """Best validation accuracy so far against trials and against training compute, a line per model."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for model, rows in sorted(curves.items()):
        points = best_so_far(rows)
        if points:
            number, compute, best = zip(*points)
            axes[0].step(number, best, where="post", marker="o", label=model)
            axes[1].step(compute, best, where="post", marker="o", label=model)
    axes[0].set_xlabel("trials")
    axes[1].set_xlabel("training compute, all trials so far (FLOPs)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("best validation accuracy so far")
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(loc="lower right")
    _save(plt, figure, path, dpi=110)
