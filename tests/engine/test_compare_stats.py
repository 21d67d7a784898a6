"""Paired statistics behind `evalsuite compare` / `gate`: coverage, McNemar vs scipy, corpus bootstrap."""

from __future__ import annotations

import math
import random

import pytest

from evalsuite.stats import mcnemar_exact, paired_bootstrap, paired_corpus_bootstrap


def test_paired_bootstrap_ci_covers_truth_at_nominal_rate():
    """Synthetic paired data with a known mean difference: over many seeds the 95% CI covers the truth
    about 95% of the time (within 3 binomial standard errors)."""
    truth, n, reps = 0.3, 60, 200
    covered = 0
    for rep in range(reps):
        rng = random.Random(10_000 + rep)
        base = [rng.gauss(0, 1) for _ in range(n)]
        # candidate = baseline + effect + noise: strongly paired, as two models on the same samples
        cand = [b + truth + rng.gauss(0, 0.8) for b in base]
        res = paired_bootstrap([c - b for b, c in zip(base, cand)], n_resamples=400, seed=rep)
        covered += res["ci_low"] <= truth <= res["ci_high"]
    rate = covered / reps
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(rate - 0.95) <= 3 * se, rate


def test_binary_paired_ci_coverage():
    """0/1 scores with a planted accuracy difference (paired through a shared difficulty)."""
    n, reps = 150, 150
    p_base, p_cand = 0.70, 0.62
    truth = 100 * (p_cand - p_base)
    covered = 0
    for rep in range(reps):
        rng = random.Random(77 + rep)
        us = [rng.random() for _ in range(n)]
        # a common uniform makes the two runs agree on most samples (a comonotone pair)
        base = [1.0 if u < p_base else 0.0 for u in us]
        cand = [1.0 if u < p_cand else 0.0 for u in us]
        flip = [rng.random() < 0.05 for _ in range(n)]
        cand = [1.0 - c if f else c for c, f in zip(cand, flip)]
        exp_truth = truth + 100 * 0.05 * (1 - 2 * p_cand)  # flipping moves the mean by 5% x (1 - 2p)
        res = paired_bootstrap([100 * (c - b) for b, c in zip(base, cand)], n_resamples=400, seed=rep)
        covered += res["ci_low"] <= exp_truth <= res["ci_high"]
    rate = covered / reps
    assert abs(rate - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps), rate


def test_paired_bootstrap_is_deterministic_and_detects_no_effect():
    diffs = [(-1) ** i * 0.5 for i in range(100)]
    a = paired_bootstrap(diffs, seed=3)
    assert a == paired_bootstrap(diffs, seed=3)
    assert a["mean"] == 0.0 and a["ci_low"] < 0 < a["ci_high"] and a["p_value"] > 0.5
    same = paired_bootstrap([0.0] * 50)
    assert same == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (1, 0), (3, 3), (5, 12), (12, 5), (0, 20), (20, 0), (7, 8),
                                 (40, 61), (150, 180), (1, 30), (500, 430)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    scipy_stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if b + c == 0 else scipy_stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def _ratio(stats):
    """A corpus-level metric: 100 * sum(hits) / sum(total), e.g. BLEU's clipped n-gram precision."""
    hits = sum(s[0] for s in stats)
    total = sum(s[1] for s in stats)
    return 100.0 * hits / total if total else 0.0


def test_corpus_bootstrap_on_segment_statistics():
    rng = random.Random(5)
    totals = [rng.randint(5, 40) for _ in range(300)]
    a = [(sum(rng.random() < 0.6 for _ in range(t)), t) for t in totals]
    b = [(min(t, h + (1 if rng.random() < 0.5 else 0)), t) for h, t in a]
    res = paired_corpus_bootstrap(a, b, _ratio, n_resamples=400, seed=1)
    observed = _ratio(b) - _ratio(a)
    assert res["mean"] == pytest.approx(observed)
    assert 0 < res["ci_low"] <= observed <= res["ci_high"]
    assert res["p_value"] < 0.01
    # the corpus value is not the mean of segment ratios, and the bootstrap uses the corpus function
    assert _ratio(a) != pytest.approx(sum(100 * h / t for h, t in a) / len(a))
    same = paired_corpus_bootstrap(a, a, _ratio, n_resamples=200)
    assert same["mean"] == 0 and same["ci_low"] == 0 == same["ci_high"] and same["p_value"] == 1.0
