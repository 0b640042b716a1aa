"""Paired comparisons between leaderboard rows, and ranks that the test set can defend.

Two rows are compared on the same test images whenever both kept their predictions and their
test-split fingerprints match: the exact McNemar test on the images only one of them got right,
and a paired bootstrap 95% interval of the accuracy difference. Rows run over two or more of the
same seeds are compared over those seeds instead (paired t). Rows whose predictions were not kept
fall back to an unpaired two-proportion test, and say so.

Rows with at least three paired repeats (the same seeds) also get P(A > B), the share of those
repeats in which A scores higher, with a bootstrap 95% interval (Bouthillier et al., "Accounting for
Variance in Machine Learning Benchmarks", MLSys 2021); for such a pair, A is better than B when
P(A > B) is at least 0.75 and its interval's low end is above 0.5, their rule.

A zoo row's rank is 1 + the number of zoo rows better than it: by that rule where it applies, else
significantly (p < 0.05 after Holm's correction over every pair of zoo rows compared), so rows the
data cannot separate share a rank.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.predictions import predictions_name, read_predictions
from harness.report import is_number
from harness.report.stats import beats95, holm, mcnemar_exact, paired_bootstrap95, paired_t95, two_proportion95

ALPHA = 0.05
BEATS_REPEATS = 3  # paired repeats from which P(A > B) is given
BEATS_AT_LEAST, BEATS_LOW_ABOVE = 0.75, 0.5  # Bouthillier's rule: A is better than B


@dataclass
class Comparison:
    """A minus B: the accuracy difference, its 95% interval, the p-value and the test that gave them."""

    diff: float
    low: float
    high: float
    p: float
    test: str  # mcnemar | paired-t | unpaired-z
    seed: int | None = None  # a row of several seeds compared through this seed's run
    # P(A > B) over paired repeats, its 95% interval, the repeats A wins and their number
    beats: tuple | None = None

    def words(self, a: str = "A", b: str = "B") -> str:
        """"+1.2 points, 95% interval 0.8 to 1.6, p < 0.001 (McNemar)" for the report's prose."""
        p = "p < 0.001" if self.p < 0.001 else f"p = {self.p:.3f}"
        on = f", through seed {self.seed}'s runs" if self.seed is not None else ""
        return (f"{100 * self.diff:+.1f} points, 95% interval {100 * self.low:+.1f} to {100 * self.high:+.1f}, "
                f"{p} ({TEST_NAMES[self.test]}{on})") + (f"; {self.beats_words(a, b)}" if self.beats else "")

    def beats_words(self, a: str = "A", b: str = "B") -> str:
        """"A beats B in 4 of 5 paired runs, P(A > B) = 0.80 [0.52, 1.00]"."""
        prob, low, high, wins, repeats = self.beats
        return (f"{a} beats {b} in {wins} of {repeats} paired runs, P({a} > {b}) = {prob:.2f} "
                f"[{low:.2f}, {high:.2f}]")

    @property
    def better(self) -> bool:
        """A is better than B: Bouthillier's rule over paired repeats, else significantly higher."""
        if self.beats:
            return self.beats[0] >= BEATS_AT_LEAST and self.beats[1] > BEATS_LOW_ABOVE
        return self.significant and self.diff > 0

    def cell(self) -> str:
        """"+0.35 [-0.41, +1.12] p=0.37" for a table."""
        p = "<0.001" if self.p < 0.001 else f"={self.p:.2g}"
        return f"{100 * self.diff:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}] p{p}"

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


TEST_NAMES = {"mcnemar": "exact McNemar, paired bootstrap interval", "paired-t": "paired t over seeds",
              "unpaired-z": "unpaired two-proportion test: predictions not kept"}


def _predictions(member: dict, stage: str):
    path = Path(member["path"]) / predictions_name(stage)
    try:
        return read_predictions(path)
    except (OSError, KeyError, ValueError):
        return None


def _pick(members: list, seed):
    return next((m for m in members if m["seed"] == seed), members[0])


def compare(a: dict, b: dict) -> Comparison | None:
    """Row ``a`` against row ``b`` (rows of ``leaderboard.table``, with their ``members``)."""
    members_a, members_b = a.get("members") or [], b.get("members") or []
    if not members_a or not members_b:
        return None
    seeds_a, seeds_b = [m["seed"] for m in members_a], [m["seed"] for m in members_b]
    common = [seed for seed in seeds_a if seed in seeds_b]
    if len(members_a) > 1 and len(members_b) > 1 and len(common) > 1:
        scores_a = [_pick(members_a, s)["accuracy"] for s in common]
        scores_b = [_pick(members_b, s)["accuracy"] for s in common]
        diff, low, high, p = paired_t95(scores_a, scores_b)
        beats = (*beats95(scores_a, scores_b), len(common)) if len(common) >= BEATS_REPEATS else None
        return None if math.isnan(p) else Comparison(diff, low, high, p, "paired-t", beats=beats)
    # one run of each: the seed both share (else each row's first), never a mean of several seeds
    # against one run, whose spread over seeds the tests below do not see
    one_a = _pick(members_a, common[0] if common else seeds_a[0])
    one_b = _pick(members_b, common[0] if common else seeds_b[0])
    through = one_a["seed"] if len(members_a) > 1 or len(members_b) > 1 else None
    if one_a.get("fingerprint") and one_a.get("fingerprint") == one_b.get("fingerprint"):
        pa, pb = _predictions(one_a, a["stage"]), _predictions(one_b, b["stage"])
        if pa is not None and pb is not None and len(pa["label"]) == len(pb["label"]):
            right_a, right_b = pa["pred"] == pa["label"], pb["pred"] == pb["label"]
            diff, low, high = paired_bootstrap95(right_a, right_b)
            p = mcnemar_exact(int((right_a & ~right_b).sum()), int((~right_a & right_b).sum()))
            return Comparison(diff, low, high, p, "mcnemar", through)
    n_a, n_b = one_a.get("test_images"), one_b.get("test_images")
    if n_a and n_b and is_number(one_a.get("accuracy")) and is_number(one_b.get("accuracy")):
        diff, low, high, p = two_proportion95(float(one_a["accuracy"]), float(one_b["accuracy"]), int(n_a), int(n_b))
        return Comparison(diff, low, high, p, "unpaired-z", through)
    return None


def rank_zoo(rows: list) -> None:
    """Fill each zoo row (sorted best first) with ``rank_raw`` (its place by accuracy), the
    comparison with the row above and with the best, and ``rank`` (1 + the rows significantly
    better, Holm-corrected over all the pairs compared)."""
    pairs = {}
    for i, upper in enumerate(rows):
        for lower in rows[i + 1 :]:
            pairs[(id(upper), id(lower))] = compare(upper, lower)
    keys = [key for key, result in pairs.items() if result is not None]
    adjusted = dict(zip(keys, holm([pairs[key].p for key in keys])))
    for i, row in enumerate(rows):
        row["rank_raw"] = i + 1
        better = [upper for upper in rows[:i] if _better(pairs[(id(upper), id(row))], adjusted.get((id(upper), id(row))))]
        row["rank"] = 1 + len(better)
        for name, other in (("above", rows[i - 1] if i else None), ("best", rows[0] if i else None)):
            result = pairs.get((id(other), id(row))) if other is not None else None
            _put(row, f"vs_{name}", result, adjusted.get((id(other), id(row))) if other is not None else None)
            row[f"{name}_model"] = other["model"] if other is not None else None


def _better(result: Comparison | None, adjusted) -> bool:
    """The upper row is better: by P(A > B) where paired repeats give it, else Holm-adjusted p."""
    if result is None:
        return False
    if result.beats:
        return result.better
    return adjusted is not None and adjusted < ALPHA and result.diff > 0


def _put(row: dict, name: str, result: Comparison | None, adjusted=None) -> None:
    """``p_<name>``, ``diff_<name>`` and its bounds, ``test_<name>`` (and ``p_<name>_holm``): the
    difference is the other row minus this one (how much better the row above is)."""
    row[f"p_{name}"] = result.p if result else None
    row[f"diff_{name}"] = result.diff if result else None
    row[f"diff_{name}_low"] = result.low if result else None
    row[f"diff_{name}_high"] = result.high if result else None
    row[f"test_{name}"] = result.test if result else None
    beats = result.beats if result else None
    for key, value in zip(("pab", "pab_low", "pab_high", "wins", "repeats"), beats or (None,) * 5):
        row[f"{key}_{name}"] = value
    if adjusted is not None or name != "vs_base":
        row[f"p_{name}_holm"] = adjusted


def against_base(row: dict, base: dict | None) -> None:
    """A variant's row against its base model's: ``diff_vs_base`` is the variant minus the base,
    tested only when the two differ in nothing but the variant's own settings; otherwise
    ``not_comparable`` says what else differs and no test is run."""
    row["base"] = base["model"] if base is not None else None
    differs = differences(row, base) if base is not None else []
    row["not_comparable"] = "; ".join(differs) or None
    _put(row, "vs_base", compare(row, base) if base is not None and not differs else None)


def differences(row: dict, base: dict) -> list:
    """What differs between a variant and its base besides what a variant sets: the profile (its
    epochs, input size and recipe), the dataset, the training precision (``--amp auto`` chooses it
    per machine), the test images."""
    data, base_data = row.get("data") or {}, base.get("data") or {}
    found = [f"{name} {a} against {b}" for name, a, b in (
        ("profile", row.get("profile"), base.get("profile")), ("dataset", data.get("dataset"), base_data.get("dataset")),
        ("training precision", _training_precision(row), _training_precision(base)))
        if a is not None and b is not None and a != b]  # unknown (an older result) is not a difference
    fingerprints = row.get("test_fingerprint"), base.get("test_fingerprint")
    if (all(fingerprints) and fingerprints[0] != fingerprints[1]) or data.get("test") != base_data.get("test"):
        found.append("other test images")
    return found


def _training_precision(row: dict) -> str | None:
    amp = (row.get("accel") or {}).get("amp")
    return None if amp is None else ("mixed" if amp else "float32")
