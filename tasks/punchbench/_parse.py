"""Answer parsing per PunchBench format (the benchmark documents none; these rules are ours).

Each parser returns the canonical answer (``yes``/``no``, or an option letter) or ``""`` when the reply
cannot be parsed; an unparsed reply scores as wrong and counts in ``parse_failure_rate``.
"""

from __future__ import annotations

import re

# a chain-of-thought reply ends with "Answer: X"; only the text after the last marker is parsed then
_MARKER = re.compile(r"(?i)\b(?:final\s+)?answer\s*(?:is|:)\s*")
_YES_NO = re.compile(r"(?i)(?<![a-z])(yes|no)(?![a-z])")
_PAREN = re.compile(r"\(([A-Da-d])\)")
_LETTER_PUNCT = re.compile(r"(?<![A-Za-z])([A-D])(?:[.):]|$)")
_ALONE = re.compile(r"^\W*([A-Da-d])\W*$")
_ORDINAL = {"first": "A", "second": "B", "1": "A", "2": "B"}
_ORDINAL_RE = re.compile(r"(?i)(?<![a-z0-9])(first|second|1|2)(?![a-z0-9])")


_LEAD = re.compile(r"^\(?([A-Da-d])(?![A-Za-z])")


def _tail(text: str) -> tuple[str, bool]:
    """The text after the last answer marker (and whether there was one), else the whole text."""
    last = None
    for m in _MARKER.finditer(text):
        last = m
    return (text[last.end():], True) if last else (text, False)


def parse_yes_no(text: str) -> str:
    m = _YES_NO.search(_tail(text)[0])
    return m.group(1).lower() if m else ""


def parse_letter(text: str, n_options: int) -> str:
    """An option letter among the first ``n_options`` (2: A/B, also 1/2 and first/second; 4: A-D)."""
    allowed = "ABCD"[:n_options]
    t, marked = _tail(text)
    t = t.strip()
    # after "Answer:" a leading letter counts ("Answer: B because ..."); without a marker it would
    # also catch the article in "A dog ..."
    for pat in ((_ALONE, _LEAD, _PAREN, _LETTER_PUNCT) if marked else (_ALONE, _PAREN, _LETTER_PUNCT)):
        m = pat.search(t)
        if m and m.group(1).upper() in allowed:
            return m.group(1).upper()
    if n_options == 2:
        m = _ORDINAL_RE.search(t)
        if m:
            return _ORDINAL[m.group(1).lower()]
    return ""
