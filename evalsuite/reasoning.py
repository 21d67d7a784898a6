"""Reasoning output: text up to and including ``</think>`` is removed before scoring (and kept in the
samples log); an unterminated ``<think>`` scores as an empty answer and is flagged."""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


def split_reasoning(text: str) -> tuple[str, str | None, bool]:
    """Return ``(answer, reasoning, unterminated)``."""
    if CLOSE in text:
        cut = text.rindex(CLOSE) + len(CLOSE)
        return text[cut:].lstrip(), text[:cut], False
    if OPEN in text:
        return "", text, True
    return text, None, False
