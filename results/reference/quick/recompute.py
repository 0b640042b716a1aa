"""Recomputes this folder's tests from its predictions files, apart from the harness's own statistics
code (scipy's exact binomial test and Wilson interval, Holm's correction written out here):

    python results/reference/quick/recompute.py [FOLDER]

For every zoo row of leaderboard.csv: accuracy and its Wilson interval; for every pair of zoo rows the
exact McNemar p, its Holm adjustment and the difference; each rank as 1 + the rows significantly
better; for every variant tested against its base by McNemar, the difference and p. Prints each figure
beside the csv's and ends with the number that differ (0 when the folder holds)."""
import csv
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
rows = list(csv.DictReader(open(folder / "leaderboard.csv")))
zoo = sorted((r for r in rows if r["section"] == "zoo" and r["status"] == "ok"), key=lambda r: float(r["rank_raw"]))
differ = 0


def check(what: str, mine: float, theirs: str, tolerance: float = 1e-9) -> None:
    global differ
    same = theirs != "" and abs(mine - float(theirs)) <= tolerance
    differ += not same
    print(f"  {what}: {mine:.6g} against {theirs or 'nothing'} {'' if same else '  DIFFERS'}")


def right(model: str, stage: str) -> np.ndarray:
    path = folder / model / f"predictions-{stage}.npz"
    path = path if path.exists() else folder / model / "seed-0" / path.name  # a seeds row: its seed 0
    with np.load(path) as kept:
        return kept["pred"] == kept["label"]


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return (only_a - only_b) / len(a), p


for row in zoo:
    correct = right(row["model"], row["stage"])
    interval = binomtest(int(correct.sum()), len(correct)).proportion_ci(method="wilson")
    print(row["model"], row["stage"])
    check("accuracy", correct.mean(), row["accuracy"])
    check("Wilson low", interval.low, row["accuracy_low"], 5e-7)
    check("Wilson high", interval.high, row["accuracy_high"], 5e-7)

pairs = {(a["model"], b["model"]): mcnemar(right(a["model"], a["stage"]), right(b["model"], b["stage"]))
         for a, b in combinations(zoo, 2)}
holm, running = {}, 0.0
for k, pair in enumerate(sorted(pairs, key=lambda pair: pairs[pair][1])):
    running = max(running, min(1.0, (len(pairs) - k) * pairs[pair][1]))
    holm[pair] = running
for i, row in enumerate(zoo):
    print(row["model"], "against the rows above")
    for name, other in (("above", zoo[i - 1]["model"] if i else None), ("best", zoo[0]["model"] if i else None)):
        if other is not None:
            check(f"difference vs {name}", pairs[(other, row["model"])][0], row[f"diff_vs_{name}"])
            check(f"McNemar p vs {name}", pairs[(other, row["model"])][1], row[f"p_vs_{name}"])
            check(f"Holm p vs {name}", holm[(other, row["model"])], row[f"p_vs_{name}_holm"])
    better = [u for u in zoo[:i] if holm[(u["model"], row["model"])] < 0.05 and pairs[(u["model"], row["model"])][0] > 0]
    check("rank", 1 + len(better), row["rank"], 0)

for row in rows:
    if row["base"] and row["test_vs_base"] == "mcnemar":
        print(row["model"], row["stage"], "against", row["base"])
        diff, p = mcnemar(right(row["model"], row["stage"]), right(row["base"], row["stage"]))
        check("difference", diff, row["diff_vs_base"])
        check("McNemar p", p, row["p_vs_base"])
print("figures that differ:", differ)
