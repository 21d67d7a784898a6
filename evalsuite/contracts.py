"""Declared contracts (filled in by the next commit)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class NLIPairs(Protocol):
    """A judge backend that answers (premise, hypothesis) message pairs with ``"1"`` / ``"0"``
    (``evalsuite.backends.nli``) instead of yes/no questions."""

    nli_pairs: bool = True
