"""LongBench v2 prompts and answer extraction, as the official ``pred.py`` does them.

Templates are the official files in ``prompts/`` (byte-exact; see SOURCE.md), read as text the way
upstream reads them. A template is filled by plain ``str.replace`` of its placeholders, **in this order**:
``$DOC$``, ``$Q$``, ``$C_A$``, ``$C_B$``, ``$C_C$``, ``$C_D$`` and last ``$COT$`` (the CoT answer pass),
each value ``.strip()``-ed first. The order matters only in one corner, kept for exact parity: a
placeholder that appears literally inside an earlier value (say ``$Q$`` inside the document) is replaced
too.

Extraction: every ``*`` is removed (markdown bold), then the first match of
``The correct answer is \\(([A-D])\\)`` is taken, else the first of ``The correct answer is ([A-D])``;
no match means no answer (scored wrong).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
PROMPT_FILES = ("0shot", "0shot_cot", "0shot_cot_ans", "0shot_no_context", "0shot_rag")

_PARENTHESIZED = re.compile(r"The correct answer is \(([A-D])\)")
_BARE = re.compile(r"The correct answer is ([A-D])")

LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Templates:
    text: Mapping[str, str]
    """File stem -> template text."""
    sha256: Mapping[str, str]
    """File stem -> sha256 of the file bytes (recorded in the run manifest)."""


@lru_cache(maxsize=1)
def templates() -> Templates:
    text, sha = {}, {}
    for stem in PROMPT_FILES:
        path = PROMPT_DIR / f"{stem}.txt"
        # text mode with universal newlines, as upstream's open(...).read(); the files have no CR
        with open(path, encoding="utf-8") as f:
            text[stem] = f.read()
        sha[stem] = hashlib.sha256(path.read_bytes()).hexdigest()
    return Templates(text=text, sha256=sha)


def fill(template: str, document: str, question: str, choices: Sequence[str], cot: str | None = None) -> str:
    """Fill a template as upstream does (sequential ``str.replace``; values stripped; ``cot`` as given)."""
    out = template.replace("$DOC$", document.strip()).replace("$Q$", question.strip())
    for letter, choice in zip(LETTERS, choices, strict=True):
        out = out.replace(f"$C_{letter}$", choice.strip())
    if cot is not None:
        out = out.replace("$COT$", cot)
    return out


def render_retrieved(chunks: Sequence[Mapping[str, object]], top_k: int | None) -> str:
    """The RAG document: the first ``top_k`` retrieved chunks (retrieval order), re-sorted by their position
    in the context (``c_idx``), each written ``Retrieved chunk {i}: {content}`` (i from 1), joined by a
    blank line."""
    chosen = list(chunks if top_k is None else chunks[:top_k])
    chosen.sort(key=lambda c: c["c_idx"])  # stable, like upstream's sorted()
    return "\n\n".join(f"Retrieved chunk {i}: {c['content']}" for i, c in enumerate(chosen, 1))


def extract_choice(response: str) -> str | None:
    """The answer letter in a response, or None."""
    text = response.replace("*", "")
    m = _PARENTHESIZED.search(text) or _BARE.search(text)
    return m.group(1) if m else None


def gold_response(letter: str) -> str:
    """What a perfect model answers, in the format every official prompt asks for."""
    return f"The correct answer is ({letter})"
