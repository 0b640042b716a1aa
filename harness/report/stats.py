"""Mean and 95% confidence interval (Student's t) of a metric over runs with different seeds."""
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
