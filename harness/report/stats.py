"""Intervals and tests for comparing results: Student's t over seeds, Wilson over test images, exact
McNemar and a paired bootstrap between two models' predictions on the same images, Holm's correction."""
from __future__ import annotations

import math

from scipy import stats


def mean_ci95(values) -> tuple[float, float | None]:
    """(mean, half-width of the 95% CI); the half-width is None for a single run."""
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return math.nan, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)))


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson95(correct: int, total: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion (``correct`` of ``total`` test images)."""
    if not total:
        return math.nan, math.nan
    p = correct / total
    centre = (p + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = Z95 / (1 + Z95**2 / total) * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2))
    return centre - half, centre + half


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact McNemar test: the two-sided binomial test (p = 1/2) on the discordant images, those
    only model A got right (``only_a``) and those only model B got right (``only_b``)."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(only_a, only_b), discordant, 0.5)))


def paired_bootstrap95(correct_a, correct_b, reps: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B on the same images, with the 95% percentile interval of a
    bootstrap over test images. Resampling images only moves the counts of the three kinds of
    image (only A right, only B right, the same), so the counts are drawn from their multinomial:
    the same distribution as resampling indices, at no cost per image."""
    import numpy as np

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    n = len(a)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    diff = (only_a - only_b) / n
    draws = np.random.default_rng(seed).multinomial(n, [only_a / n, only_b / n, 1 - (only_a + only_b) / n], size=reps)
    sample = (draws[:, 0] - draws[:, 1]) / n
    return diff, float(np.percentile(sample, 2.5)), float(np.percentile(sample, 97.5))


def paired_t95(a, b) -> tuple[float, float, float, float]:
    """Mean of A minus B over paired runs (the same seeds), its 95% Student's t interval and the
    two-sided p of the paired t-test."""
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    mean, half = mean_ci95(diffs)
    if half is None:
        return mean, math.nan, math.nan, math.nan
    if half == 0:
        return mean, mean, mean, (1.0 if mean == 0 else 0.0)
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return mean, mean - half, mean + half, p


def two_proportion95(acc_a: float, acc_b: float, n_a: int, n_b: int) -> tuple[float, float, float, float]:
    """Unpaired: the difference of two accuracies on ``n_a`` and ``n_b`` images, its Wald 95%
    interval and the pooled z-test's two-sided p; for results whose predictions were not kept."""
    diff = acc_a - acc_b
    half = Z95 * math.sqrt(acc_a * (1 - acc_a) / n_a + acc_b * (1 - acc_b) / n_b)
    pooled = (acc_a * n_a + acc_b * n_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(diff) / se))
    return diff, diff - half, diff + half, p


def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of p-values for the number of comparisons made (None stays None)."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    adjusted = [None] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(known) - k) * p))
        adjusted[i] = running
    return adjusted


def beats95(a, b, reps: int = 10000, seed: int = 0) -> tuple[float, float, float, int]:
    """P(A > B) over paired repeats (Bouthillier et al., MLSys 2021): the share of pairs in which
    A scores higher (a tie counts half), its 95% percentile interval from a bootstrap over the
    pairs, and the number of pairs A wins."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    wins = (a > b) + 0.5 * (a == b)
    index = np.random.default_rng(seed).integers(0, len(wins), size=(reps, len(wins)))
    sample = wins[index].mean(axis=1)
    return float(wins.mean()), float(np.percentile(sample, 2.5)), float(np.percentile(sample, 97.5)), int((a > b).sum())
