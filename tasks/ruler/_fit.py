"""RULER's length control: size the haystack so that prompt tokens + tokens_to_generate <= max_seq_length.

The same two steps as every RULER generator (``generate_samples`` in niah.py / qa.py):

1. ``search_size``: one probe at ``incremental`` haystack units estimates tokens per unit, then a binary
   search over [incremental, max(3 x estimate, 2 x incremental)] finds the largest size whose probe
   sample fits. Every probe draws a full sample from the task's random generator, as upstream does, so
   the random stream (and hence every later sample) matches RULER's for the same seed and token counts.
2. ``fit_sample``: each sample starts at that size and steps down by ``incremental`` until it fits.

Upstream retries forever when even the smallest size does not fit; here that becomes a ``UserError``
after ``FLOOR_TRIES`` fresh draws at the smallest size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from evalsuite.errors import UserError

D = TypeVar("D")
FLOOR_TRIES = 20


@dataclass
class SizeSearch:
    num_haystack: int
    """The size every sample starts from."""
    probes: list[tuple[int, int]] = field(default_factory=list)
    """(haystack size, prompt tokens) of each probe, in order."""


@dataclass
class Fitted(Generic[D]):
    draft: D
    num_haystack: int
    prompt_tokens: int
    attempts: int


def search_size(generate: Callable[[int], D], prompt_tokens: Callable[[D], int], max_seq_length: int,
                tokens_to_generate: int, incremental: int) -> SizeSearch:
    probes: list[tuple[int, int]] = []

    def probe(n: int) -> int:
        t = prompt_tokens(generate(n))
        probes.append((n, t))
        return t

    tokens_per_unit = probe(incremental) / incremental
    # RULER: "3x to allow for some slack since we can get unlucky due to sampling"
    estimated_max = int((max_seq_length / tokens_per_unit) * 3)
    lo, hi = incremental, max(estimated_max, incremental * 2)
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if probe(mid) + tokens_to_generate <= max_seq_length:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return SizeSearch(best if best is not None else incremental, probes)


def fit_sample(generate: Callable[[int], D], prompt_tokens: Callable[[D], int], max_seq_length: int,
               tokens_to_generate: int, start: int, incremental: int, what: str = "") -> Fitted[D]:
    used, attempts, floor_tries = start, 0, 0
    while True:
        draft = generate(used)
        attempts += 1
        n = prompt_tokens(draft)
        if n + tokens_to_generate <= max_seq_length:
            return Fitted(draft, used, n, attempts)
        if used > incremental:
            used -= incremental
            continue
        floor_tries += 1
        if floor_tries >= FLOOR_TRIES:
            raise UserError(
                f"{what}: length={max_seq_length} is too small: even the smallest haystack ({used} units) "
                f"gives {n} prompt tokens + {tokens_to_generate} to generate; raise -T length")


def describe_fit(search: SizeSearch | None) -> dict[str, Any] | None:
    if search is None:
        return None
    return {"num_haystack": search.num_haystack, "probes": [list(p) for p in search.probes]}
