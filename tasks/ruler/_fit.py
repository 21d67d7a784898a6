"""RULER's length control: size the haystack so that prompt tokens + tokens_to_generate <= max_seq_length.

The same two steps as every RULER generator (``generate_samples`` in niah.py / qa.py):

1. ``search_size``: one probe at ``incremental`` haystack units estimates tokens per unit, then a binary
   search over [incremental, max(3 x estimate, 2 x incremental)] finds the largest size whose probe
   sample fits. Every probe draws a full sample from the task's random generator, as upstream does, so
   the random stream (and hence every later sample) matches RULER's for the same seed and token counts.
2. ``fit_sample``: each sample starts at that size and steps down by ``incremental`` until it fits.

Upstream tokenizes every probe and every attempt in full. Here the decisions ("does size n fit?") are
the same, but a probe is only tokenized when the answer is not already implied by the sizes measured
so far (``TokenModel``): prompt tokens grow with the haystack size, so a size at or above a measured
size that did not fit (by more than ``slack`` tokens, the sample-to-sample variation of needles and
queries) does not fit either, and a size at or below a measured one that fitted with ``slack`` to spare
fits; far from every measurement, a linear estimate with a wide margin decides. Whatever is not
decided that way is tokenized, and the final prompt of every sample always is (its exact length is
recorded). The chosen sizes equal upstream's as long as the token count is monotone in the size up to
``slack``.

Upstream retries forever when even the smallest size does not fit; here that becomes a ``UserError``
after ``FLOOR_TRIES`` fresh draws at the smallest size.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from evalsuite.errors import UserError

D = TypeVar("D")
FLOOR_TRIES = 20
EXTRAPOLATION_MARGIN = 0.35
"""Relative margin for decisions from the linear estimate alone (no measured size on that side)."""
INTERPOLATION_MARGIN = 0.05
"""Relative margin between two measured sizes (token density varies along an essay)."""


def default_slack(max_seq_length: int) -> int:
    """Tokens two samples of the same haystack size may differ by (needles, keys, queries)."""
    return 32 + max_seq_length // 200


class TokenModel:
    """Measured (size, prompt tokens) points of one task and length; decides fits without tokenizing
    where the measurements imply the answer (see the module docstring)."""

    def __init__(self, budget: int, slack: int):
        self.budget = budget  # max prompt tokens: max_seq_length - tokens_to_generate
        self.base_slack = slack
        self.slack = slack
        """The slack in use: at least twice the largest spread measured between draws of one size."""
        self.points: list[tuple[int, int]] = []  # sorted by size
        self._range: dict[int, tuple[int, int]] = {}

    def add(self, n: int, t: int) -> None:
        bisect.insort(self.points, (n, t))
        lo, hi = self._range.get(n, (t, t))
        lo, hi = min(lo, t), max(hi, t)
        self._range[n] = (lo, hi)
        self.slack = max(self.slack, 2 * (hi - lo))

    def _estimate(self, n: int) -> tuple[float, float, str | None] | None:
        """(estimate, relative margin, bound) from the measured points, or None without any. ``bound`` is
        ``"upper"`` when the estimate can only err high (only a fit may be read from it), ``"lower"`` when it
        can only err low (only a miss), None for a two-sided one."""
        pts = self.points
        if not pts:
            return None
        i = bisect.bisect_left(pts, (n, -1))
        if 0 < i < len(pts):
            (n0, t0), (n1, t1) = pts[i - 1], pts[i]
            if n1 == n0:
                return float(t0), INTERPOLATION_MARGIN, None
            return t0 + (t1 - t0) * (n - n0) / (n1 - n0), INTERPOLATION_MARGIN, None
        if len(pts) == 1 or (pts[-1][0] == pts[0][0]):
            # Through the origin from one point. Prompts have a fixed part (the template, and a model
            # template with -T template=), so this overestimates above the point and underestimates below
            # it: a 5-line probe carrying 150 tokens of template once ruled out a size that fits.
            n0, t0 = pts[0]
            return t0 * n / n0, EXTRAPOLATION_MARGIN, "upper" if n >= n0 else "lower"
        (n0, t0), (n1, t1) = pts[0], pts[-1]
        slope = (t1 - t0) / (n1 - n0)
        ref_n, ref_t = pts[-1] if n > n1 else pts[0]
        return ref_t + slope * (n - ref_n), EXTRAPOLATION_MARGIN, None

    def decide(self, n: int) -> bool | None:
        """True: fits, False: does not, None: tokenize to know."""
        for pn, pt in self.points:
            if pn <= n and pt - self.slack > self.budget:
                return False
            if pn >= n and pt + self.slack <= self.budget:
                return True
        est = self._estimate(n)
        if est is None:
            return None
        t, margin, bound = est
        if bound != "lower" and t * (1 + margin) + self.slack <= self.budget:
            return True
        if bound != "upper" and t * (1 - margin) - self.slack > self.budget:
            return False
        return None


@dataclass
class SizeSearch:
    num_haystack: int
    """The size every sample starts from."""
    probes: list[tuple[int, int]] = field(default_factory=list)
    """(haystack size, prompt tokens) of each tokenized probe, in order."""
    decided: list[tuple[int, bool]] = field(default_factory=list)
    """(haystack size, fits) of the probes decided without tokenizing."""
    model: TokenModel | None = None


@dataclass
class Fitted(Generic[D]):
    draft: D
    num_haystack: int
    prompt_tokens: int
    attempts: int
    tokenized: int = 0


def search_size(generate: Callable[[int], D], prompt_tokens: Callable[[D], int], max_seq_length: int,
                tokens_to_generate: int, incremental: int, *, model: TokenModel | None = None,
                first_probe: int | None = None,
                upper: Callable[[int, float], int] | None = None,
                first_tokens: Callable[[D], int] | None = None) -> SizeSearch:
    """Upstream's binary search. With a ``model``, probes whose outcome it implies are drawn (the random
    stream stays upstream's) but not tokenized. ``first_probe`` (default ``incremental``) is the size of
    the probe that estimates tokens per unit; ``upper(max_seq_length, tokens_per_unit)`` the search's
    upper estimate (default upstream niah/vt/qa: ``int(max_seq_length / tokens_per_unit * 3)``);
    ``first_tokens`` counts that first probe when upstream counts it differently from the later ones
    (variable tracking leaves its in-context example out of it); it then informs no fit decision."""
    search = SizeSearch(incremental, model=model)
    budget = max_seq_length - tokens_to_generate

    def measure(draft: D, n: int) -> int:
        t = prompt_tokens(draft)
        search.probes.append((n, t))
        if model is not None:
            model.add(n, t)
        return t

    def fits(n: int) -> bool:
        draft = generate(n)
        known = model.decide(n) if model is not None else None
        if known is not None:
            search.decided.append((n, known))
            return known
        return measure(draft, n) <= budget

    first = first_probe or incremental
    if first_tokens is not None:
        t0 = first_tokens(generate(first))
        search.probes.append((first, t0))
        tokens_per_unit = t0 / first
    else:
        tokens_per_unit = measure(generate(first), first) / first
    # RULER: "3x to allow for some slack since we can get unlucky due to sampling"
    estimated_max = upper(max_seq_length, tokens_per_unit) if upper else int((max_seq_length / tokens_per_unit) * 3)
    lo, hi = incremental, max(estimated_max, incremental * 2)
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    search.num_haystack = best if best is not None else incremental
    return search


def fit_sample(generate: Callable[[int], D], prompt_tokens: Callable[[D], int], max_seq_length: int,
               tokens_to_generate: int, start: int, incremental: int, what: str = "", *,
               model: TokenModel | None = None, over_budget: Callable[[D], bool] | None = None) -> Fitted[D]:
    """Upstream's per-sample step-down. With a ``model``, attempts it knows do not fit are drawn but not
    tokenized; so are attempts that ``over_budget`` (an exact cheap count) shows are too long. The
    returned draft is always tokenized (its exact count is returned)."""
    used, attempts, floor_tries, tokenized = start, 0, 0, 0
    budget = max_seq_length - tokens_to_generate
    while True:
        draft = generate(used)
        attempts += 1
        known = model.decide(used) if model is not None else None
        if known is None and over_budget is not None and over_budget(draft):
            known = False
        if known is not False:
            n = prompt_tokens(draft)
            tokenized += 1
            if model is not None:
                model.add(used, n)
            if n <= budget:
                return Fitted(draft, used, n, attempts, tokenized)
        if used > incremental:
            used -= incremental
            continue
        floor_tries += 1
        if floor_tries >= FLOOR_TRIES:
            raise UserError(
                f"{what}: length={max_seq_length} is too small: even the smallest haystack ({used} units) "
                f"does not leave room for {tokens_to_generate} tokens to generate; raise -T length")


def describe_fit(search: SizeSearch | None) -> dict[str, Any] | None:
    if search is None:
        return None
    return {"num_haystack": search.num_haystack, "probes": [list(p) for p in search.probes],
            "decided_without_tokenizing": [list(p) for p in search.decided]}
