"""Small statistics helpers (nanosecond samples in, microseconds out)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass
class Summary:
    n: int
    median_us: float
    p99_us: float
    mean_us: float
    p90_us: float
    max_us: float

    @classmethod
    def of_ns(cls, samples_ns: Sequence[int]) -> Summary:
        values = sorted(samples_ns)
        return cls(
            n=len(values),
            median_us=statistics.median(values) / 1000 if values else math.nan,
            p99_us=percentile(values, 99) / 1000,
            mean_us=statistics.fmean(values) / 1000 if values else math.nan,
            p90_us=percentile(values, 90) / 1000,
            max_us=(values[-1] / 1000) if values else math.nan,
        )


def linear_fit(
    xs: Sequence[float], ys: Sequence[float], weights: Sequence[float] | None = None
) -> tuple[float, float]:
    """Weighted least-squares ``y = a + b*x``; returns (a, b)."""
    w = list(weights) if weights is not None else [1.0] * len(xs)
    total = sum(w)
    mean_x = sum(wi * x for wi, x in zip(w, xs, strict=False)) / total
    mean_y = sum(wi * y for wi, y in zip(w, ys, strict=False)) / total
    sxx = sum(wi * (x - mean_x) ** 2 for wi, x in zip(w, xs, strict=False))
    sxy = sum(wi * (x - mean_x) * (y - mean_y) for wi, x, y in zip(w, xs, ys, strict=False))
    b = sxy / sxx if sxx else 0.0
    return mean_y - b * mean_x, b
