"""RULER's needle-key vocabulary: every "adjective-noun" pair from wonderwords, as a sorted set.

RULER builds ``sorted(set(f"{adj}-{noun}" for adj in adjectives for noun in nouns))`` (6,171,620
strings with wonderwords 3.0.1: about 13 s and several hundred MB) and draws keys with
``random.choice``. ``AdjNounWords`` is the same sequence, indexable in O(log n) without
materialising it, so ``rng.choice(AdjNounWords(...))`` returns exactly what RULER's list would.

Why this is exact: for one adjective the strings ``adj + "-" + noun`` sort like the nouns do. Two
adjectives' strings interleave (or collide, which the set removes) only when one ``adj + "-"`` is a
prefix of another (``blue-`` / ``blue-eyed-``). Adjectives are grouped by such prefixes; a group
with one adjective is a block of ``len(nouns)`` strings computed on demand, and the few multi-adjective
groups are materialised (sorted and de-duplicated). Blocks follow each other in the order of their
root ``adj + "-"``, because every string of a group starts with its root and no root is a prefix of
another group's root.
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import Sequence, overload


class AdjNounWords(Sequence[str]):
    """``sorted(set(f"{a}-{n}" for a in adjectives for n in nouns))`` without building it."""

    def __init__(self, adjectives: Sequence[str], nouns: Sequence[str]):
        self._nouns = sorted(set(nouns))
        adjs = sorted(set(adjectives), key=lambda a: a + "-")
        # Group adjectives whose "adj-" starts with the group's root "root-".
        groups: list[list[str]] = []
        for adj in adjs:
            if groups and (adj + "-").startswith(groups[-1][0] + "-"):
                groups[-1].append(adj)
            else:
                groups.append([adj])
        self._blocks: list[tuple[str, list[str] | None]] = []
        self._starts: list[int] = []
        total = 0
        for g in groups:
            self._starts.append(total)
            if len(g) == 1:
                self._blocks.append((g[0], None))
                total += len(self._nouns)
            else:
                merged = sorted({f"{a}-{n}" for a in g for n in self._nouns})
                self._blocks.append((g[0], merged))
                total += len(merged)
        self._len = total

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("AdjNounWords index out of range")
        b = bisect.bisect_right(self._starts, i) - 1
        adj, merged = self._blocks[b]
        off = i - self._starts[b]
        return merged[off] if merged is not None else f"{adj}-{self._nouns[off]}"


@lru_cache(maxsize=1)
def wonderwords_keys() -> AdjNounWords:
    """RULER's key words from the installed wonderwords word lists (``nounlist.txt``, ``adjectivelist.txt``)."""
    from wonderwords import random_word

    nouns = random_word._get_words_from_text_file("nounlist.txt")
    adjs = random_word._get_words_from_text_file("adjectivelist.txt")
    return AdjNounWords(adjs, nouns)


def wonderwords_version() -> str:
    from importlib.metadata import version

    return version("wonderwords")
