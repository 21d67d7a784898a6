"""ROUGE-L (summary level) with the outcomes of pltrdy's ``rouge`` 1.0.1, computed without recursion.

What rouge 1.0.1 computes for ``Rouge().get_scores([hyp], [ref], avg=True)["rouge-l"]["f"]``:

* both texts are cut into sentences at every "." (empty pieces dropped, inner whitespace collapsed)
  and each sentence into words at " "; no sentence on either side raises ``ValueError``;
* for every pair (reference sentence ``x``, hypothesis sentence ``y``) it fills the LCS table of
  ``x`` and ``y`` and walks it back from the corner ``(len(x), len(y))``: on equal words it steps
  diagonally and keeps the word, otherwise it steps up (dropping a word of ``x``) when the cell above
  is strictly larger than the cell to the left, else left -- so among equally long common subsequences
  it picks one particular one, and the *set* of its words is what counts;
* ``llcs`` is the number of distinct words in the union of those sets over all pairs, ``m`` and ``n``
  the numbers of distinct words of the reference and of the hypothesis; ``r = llcs / m``,
  ``p = llcs / n``, ``f = 2 * (p * r / (p + r + 1e-8))``.

The walk is one recursive Python call per step, and the deepest call is one step past the last (the
corner case ``i == 0 or j == 0``): a walk of ``P`` steps needs ``P + 1`` nested frames on top of the
caller's stack. When that passes the interpreter's recursion limit, rouge raises ``RecursionError``,
which LongBench's ``rouge_score`` catches and scores 0. Which pairs fail is therefore a property of the
walk's *length*, not of the table, and is decided here by an explicit rule: a pair fails when its
walk is longer than ``max_steps`` -- the walks the official ``eval.py`` stack leaves room for (see
``official_max_steps``). Walk lengths differ between pairs of the same sizes: a diagonal costs one step
for two words, and a walk ends as soon as it reaches the first row or column.

How the walk is done fast: each row of the LCS table is one integer whose bit ``b`` is 1 where the row
does *not* grow between columns ``b`` and ``b + 1`` (the bit-parallel recurrence of Crochemore et al.
2001 / Hyyro 2004). All hypothesis sentences sit side by side in one integer (a zero guard bit after
each stops the carries), so a reference sentence costs one pass over its words for every hypothesis
sentence at once. Along rouge's walk the table value is known (it drops by one per diagonal), which
turns rouge's comparison of the cells above and left into one bit: at a non-matching cell ``(i, j)``
the walk goes left when row ``i`` does not grow at column ``j``, else up -- and once it goes up it keeps
going up until the nearest row above holding the same word as column ``j``. So the walk jumps: left
runs end at the highest set bit of (no-growth or match) below the current column, up runs end at the
previous occurrence of the column's word. A walk costs a few operations per kept word.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from typing import Sequence

RECURSION_LIMIT = 1000
"""CPython's default recursion limit, the one ``python eval.py`` runs under."""

OFFICIAL_FRAMES = {"rouge_score": 9, "rouge_zh_score": 10}
"""Frames on the official stack when rouge's first back-trace call starts, counted in LongBench's
``eval.py`` run as ``python eval.py``: the module, ``scorer``, ``rouge_score``, ``Rouge.get_scores``,
``Rouge._get_avg_scores``, the ``rouge-l`` lambda, ``rouge_l_summary_level``, ``_union_lcs``,
``_recon_lcs``; ``rouge_zh_score`` calls ``rouge_score``: one more."""


def official_max_steps(fn: str, version: tuple[int, int] | None = None) -> int:
    """The longest back-trace walk (steps) rouge completes inside the official ``eval.py`` before
    ``RecursionError``, for LongBench's ``rouge_score`` or ``rouge_zh_score``.

    A walk of ``P`` steps needs ``P + 1`` nested calls; with ``OFFICIAL_FRAMES[fn]`` frames below them
    the deepest frame is number ``OFFICIAL_FRAMES[fn] + P + 1``, which may be at most the limit (1000):
    ``P <= 990`` for ``rouge_score`` and ``989`` for ``rouge_zh_score``. CPython 3.10 counts one frame
    more for the same stack (it fails one step earlier); measured against the official ``eval.py`` on
    CPython 3.10-3.13 by ``benchmarks/rouge_recursion_boundary.py``.
    """
    major_minor = version or sys.version_info[:2]
    extra = 1 if tuple(major_minor) < (3, 11) else 0
    return RECURSION_LIMIT - OFFICIAL_FRAMES[fn] - 1 - extra


def sentences(text: str) -> list[str]:
    """rouge's sentence split (``Rouge._get_avg_scores``): pieces between ".", inner whitespace
    collapsed; a whitespace-only piece becomes the empty sentence, as there."""
    return [" ".join(s.split()) for s in text.split(".") if len(s) > 0]


class _Hypothesis:
    """The hypothesis side, shared by every reference it is scored against: its sentences laid side by
    side in one bit vector (``offsets``), a mask of each word's columns, and its distinct words."""

    __slots__ = ("words", "offsets", "segments", "full", "masks", "n_distinct")

    def __init__(self, sents: Sequence[str]):
        self.words = [s.split(" ") for s in sents]
        self.offsets: list[int] = []
        self.segments: list[int] = []  # each sentence's columns
        masks: dict[str, int] = {}
        full = 0
        off = 0
        for ws in self.words:
            self.offsets.append(off)
            for j, w in enumerate(ws):
                masks[w] = masks.get(w, 0) | (1 << (off + j))
            self.segments.append(((1 << len(ws)) - 1) << off)
            full |= self.segments[-1]
            off += len(ws) + 1  # a zero guard bit after each sentence stops the carries
        self.full = full
        self.masks = masks
        self.n_distinct = len({w for ws in self.words for w in ws})


def _rows(x: Sequence[str], hyp: _Hypothesis) -> list[int]:
    """Row ``i`` of every (x, hypothesis sentence) LCS table at once: bit ``off_k + b`` is 1 where
    ``LCS(x[:i], y_k[:b + 1]) == LCS(x[:i], y_k[:b])``."""
    full, masks = hyp.full, hyp.masks
    v = full
    rows = [v]
    for w in x:
        u = masks.get(w)
        if u is not None:
            u &= v
            v = ((v + u) | (v - u)) & full
        rows.append(v)
    return rows


def walk(x: Sequence[str], y: Sequence[str], rows: Sequence[int], masks: dict[str, int], off: int,
         positions: dict[str, list[int]] | None = None) -> tuple[list[str], int]:
    """rouge 1.0.1's back-trace through the LCS table of ``x`` (rows) and ``y`` (columns, at bit offset
    ``off`` of ``rows`` and ``masks``): the kept words (last first, as found) and the number of steps.

    Jumps over runs of equal moves; the steps are counted one by one as rouge makes them.
    ``positions``: a dict to fill with (or holding) the rows of each word of ``x``, shared by the walks
    of one ``x``.
    """
    i, j = len(x), len(y)
    kept: list[str] = []
    steps = 0
    while i > 0 and j > 0:
        mx = masks.get(x[i - 1], 0)
        # Columns j' <= j where the walk stops moving left in row i: a match, or the row grows there.
        stop = ((~rows[i] | mx) >> off) & ((1 << j) - 1)
        if not stop:
            steps += j  # left to column 0
            j = 0
            break
        jj = stop.bit_length()  # the column (1-based) of the highest stop
        steps += j - jj
        j = jj
        if not (mx >> (off + j - 1)) & 1:
            # The row grows at column j and x[i-1] != y[j-1]: the cell above is larger, and every cell
            # above stays so until the nearest earlier row holding y[j-1], where the walk matches.
            if not positions:
                if positions is None:
                    positions = {}
                for r, w in enumerate(x, 1):
                    positions.setdefault(w, []).append(r)
            rs = positions[y[j - 1]]
            i_match = rs[bisect_left(rs, i) - 1]
            steps += i - i_match
            i = i_match
        kept.append(x[i - 1])
        steps += 1
        i -= 1
        j -= 1
    return kept, steps


def rouge_l(hyp: str | _Hypothesis, ref: str, max_steps: int) -> tuple[float, str | None]:
    """ROUGE-L F of one (hypothesis, reference) text pair as rouge 1.0.1 gives it, or
    ``(0.0, "ValueError")`` where rouge raises for an empty side and ``(0.0, "RecursionError")`` where a
    back-trace walk is longer than ``max_steps``."""
    h = prepare(hyp) if isinstance(hyp, str) else hyp
    ref_sents = sentences(ref)
    if h is None or not ref_sents:
        return 0.0, "ValueError"
    refs = [sent.split(" ") for sent in ref_sents]
    # A walk ends on the first row or column, so it is at least as long as the shorter side: when both
    # a reference and a hypothesis sentence are longer than max_steps, the pair fails whatever the
    # words (decided here without building tables that size).
    if max(map(len, refs)) > max_steps and max(map(len, h.words)) > max_steps:
        return 0.0, "RecursionError"
    masks = h.masks
    union: set[str] = set()
    union_cols = 0  # the hypothesis columns holding a word already in the union
    ref_distinct: set[str] = set()
    failed = False
    for x in refs:
        ref_distinct.update(x)
        if failed:
            continue
        rows = _rows(x, h)
        last = rows[-1]
        n_x = len(x)
        x_cols = 0  # the hypothesis columns holding a word of x
        for w in set(x):
            x_cols |= masks.get(w, 0)
        positions: dict[str, list[int]] = {}
        for y, off, seg in zip(h.words, h.offsets, h.segments):
            m_y = len(y)
            # LCS length: the columns where the last row grows.
            lcs = m_y - ((last >> off) & ((1 << m_y) - 1)).bit_count()
            if lcs == 0:
                if m_y > max_steps:  # the walk goes left along the last row: m_y steps
                    failed = True
                    break
                continue
            if n_x + m_y - lcs <= max_steps and not x_cols & ~union_cols & seg:
                continue  # a walk (at most n + m - lcs steps) this short cannot fail, nor keep a new word
            kept, steps = walk(x, y, rows, masks, off, positions)
            if steps > max_steps:
                failed = True
                break
            for w in kept:
                if w not in union:
                    union.add(w)
                    union_cols |= masks[w]
    if failed:
        return 0.0, "RecursionError"
    llcs = len(union)
    r = llcs / len(ref_distinct)
    p = llcs / h.n_distinct
    return 2.0 * ((p * r) / (p + r + 1e-8)), None


def prepare(hyp: str) -> _Hypothesis | None:
    """The hypothesis side of ``rouge_l``, to score one hypothesis against several references; None
    when it has no sentence."""
    sents = sentences(hyp)
    return _Hypothesis(sents) if sents else None


def longest_walk(hyp: str, ref: str) -> int:
    """The longest back-trace (steps) rouge makes for this text pair: what decides RecursionError
    (``rouge_l`` fails the pair when it exceeds ``max_steps``). 0 when a side has no sentence."""
    h = prepare(hyp)
    worst = 0
    if h is None:
        return 0
    for sent in sentences(ref):
        x = sent.split(" ")
        rows = _rows(x, h)
        positions: dict[str, list[int]] = {}
        for y, off in zip(h.words, h.offsets):
            worst = max(worst, walk(x, y, rows, h.masks, off, positions)[1])
    return worst
