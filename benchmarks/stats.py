"""Small statistics for benchmark samples: median, percentiles, spread, ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(xs: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), linear interpolation between closest ranks."""
    if not xs:
        raise ValueError("percentile of no samples")
    s = sorted(float(x) for x in xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(xs: Sequence[float]) -> float:
    return percentile(xs, 50)


def stdev(xs: Sequence[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def spread(xs: Sequence[float]) -> dict[str, float]:
    """p10/p90 of the samples ({} for fewer than two)."""
    if len(xs) < 2:
        return {}
    return {"p10": percentile(xs, 10), "p90": percentile(xs, 90)}


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return float(value) / float(baseline)
