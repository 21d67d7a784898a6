"""Uncertainty for mean-of-samples scores (standard error, percentile bootstrap CI) and paired tests for
comparing two runs on the same samples (paired bootstrap, corpus-level paired bootstrap, exact McNemar)."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any, Callable, Sequence


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


# -- paired comparisons (evalsuite compare / gate) --------------------------------------------------

def _percentiles(sorted_vals: Sequence[float], alpha: float) -> tuple[float, float]:
    m = len(sorted_vals)
    lo = sorted_vals[int(math.floor((alpha / 2) * (m - 1)))]
    hi = sorted_vals[int(math.ceil((1 - alpha / 2) * (m - 1)))]
    return lo, hi


def _bootstrap_p(sorted_vals: Sequence[float]) -> float:
    """Two-sided percentile-bootstrap p-value for "the statistic is 0": twice the smaller tail mass."""
    m = len(sorted_vals)
    below = sum(1 for v in sorted_vals if v <= 0.0)
    above = sum(1 for v in sorted_vals if v >= 0.0)
    return min(1.0, 2.0 * min(below, above) / m)


def paired_bootstrap(diffs: Sequence[float], n_resamples: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> dict[str, float] | None:
    """Paired bootstrap of the mean of per-sample differences (candidate - baseline).

    Resamples sample indices with replacement (the same index for both runs, so the pairing is kept);
    returns ``{"mean", "ci_low", "ci_high", "p_value"}`` with a percentile CI at level ``1 - alpha`` and a
    two-sided bootstrap p-value for a zero mean difference. Deterministic for a seed.
    """
    n = len(diffs)
    if n == 0:
        return None
    vals = [float(v) for v in diffs]
    mean = sum(vals) / n
    if n == 1 or all(v == vals[0] for v in vals):
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "p_value": 1.0 if mean == 0 else 0.0}
    rng = random.Random(seed)
    idx = range(n)
    get = vals.__getitem__
    means = sorted(sum(map(get, rng.choices(idx, k=n))) / n for _ in range(n_resamples))
    lo, hi = _percentiles(means, alpha)
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "p_value": _bootstrap_p(means)}


def paired_corpus_bootstrap(stats_a: Sequence[Any], stats_b: Sequence[Any],
                            corpus_fn: Callable[[Sequence[Any]], float], n_resamples: int = 1000,
                            alpha: float = 0.05, seed: int = 0) -> dict[str, float] | None:
    """Paired bootstrap for a corpus-level metric (BLEU, chrF: a function of summed per-segment
    statistics; COMET: a mean of segment scores). ``corpus_fn(per_segment_stats) -> value``; the same
    resampled segment indices score both runs. Returns the observed difference (b - a) and its CI/p."""
    n = len(stats_a)
    if n == 0 or n != len(stats_b):
        return None
    observed = corpus_fn(list(stats_b)) - corpus_fn(list(stats_a))
    rng = random.Random(seed)
    idx = range(n)
    deltas = []
    for _ in range(n_resamples):
        pick = rng.choices(idx, k=n)
        deltas.append(corpus_fn([stats_b[i] for i in pick]) - corpus_fn([stats_a[i] for i in pick]))
    deltas.sort()
    lo, hi = _percentiles(deltas, alpha)
    return {"mean": observed, "ci_low": lo, "ci_high": hi, "p_value": _bootstrap_p(deltas)}


def mcnemar_exact(b: int, c: int) -> float:
    """Exact (binomial) two-sided McNemar p-value for the discordant pair counts ``b`` and ``c``.

    Under the null each discordant pair goes either way with probability 1/2, so the p-value is
    ``min(1, 2 * P[X <= min(b, c)])`` for ``X ~ Binomial(b + c, 1/2)``, computed in exact integers.
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, float(Fraction(2 * tail, 2 ** n)))
