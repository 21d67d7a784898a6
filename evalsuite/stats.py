"""Uncertainty for mean-of-samples scores: standard error and a percentile bootstrap CI."""

from __future__ import annotations

import math
import random
from typing import Sequence


def stderr(values: Sequence[float]) -> float | None:
    """Standard error of the mean (sample standard deviation, n-1)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean, deterministic for a seed."""
    n = len(values)
    if n == 0:
        return None
    if n == 1:
        return (values[0], values[0])
    rng = random.Random(seed)
    vals = list(values)
    means = []
    for _ in range(n_resamples):
        s = 0.0
        for _ in range(n):
            s += vals[int(rng.random() * n)]
        means.append(s / n)
    means.sort()
    lo = means[int(math.floor((alpha / 2) * (n_resamples - 1)))]
    hi = means[int(math.ceil((1 - alpha / 2) * (n_resamples - 1)))]
    return (lo, hi)
