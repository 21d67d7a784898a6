"""LongBench v2's prompt truncation, as a runner truncation policy.

Upstream (``pred.py``, ``query_llm``) encodes the filled prompt -- the user message, before any chat
template -- with the model's tokenizer (``tokenizer.encode(prompt)``: a BOS the tokenizer adds counts),
and when it has more than ``max_len`` tokens keeps ``ids[:max_len//2] + ids[-max_len//2:]`` (the tail
is the larger half when ``max_len`` is odd), decodes that to text and sends it as one chat message.

Here the budget counts the same tokens, the cut keeps the same head and tail ids, and the kept ids are
handed to the backend as ``prompt_ids`` between the chat template's own prefix and suffix tokens
(the text is never decoded and re-encoded: that moves the count and the seam). A second bound, when the
model's context window is known, keeps the *whole* prompt (template included) plus the new tokens
inside the window; when that one is tighter the content is cut in the middle to fit it.

Memory: a cut request keeps its ids and drops its text (``Request.drop_text``: same key, same log rows), and
its ids are shared int objects (``_shared``), so a planned 120K-token prompt costs about 1 MB instead of the
document's megabytes plus 4 MB of separate ints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evalsuite.tokenizer import Tokenizer, render_request
from evalsuite.types import Message, Request

_SENTINEL = "\uE000LONGBENCH_V2_DOCUMENT\uE001"


@dataclass(frozen=True)
class ContentTruncation:
    """Middle truncation of the user message to LongBench v2's token budget."""

    max_length: int
    """Upstream's ``max_len`` (``config/model2maxlen.json``: 120000; 200000 for Claude): tokens of the
    filled prompt as the tokenizer encodes it, tokenizer-added special tokens included, chat template
    excluded."""
    max_prompt_tokens: int | None = None
    """Bound on the whole prompt as sent (template included): context window - max new tokens. None when
    the window is unknown."""

    def apply(self, req: Request, tok: Tokenizer) -> Request:
        if req.prompt_ids is not None:
            return req  # already cut (idempotent if a runner applies policies to every pass)
        raw = isinstance(req.prompt, str) and not req.use_chat_template
        lead, trail = _added_tokens(tok)
        if raw:
            content = req.prompt
            pre, suf = list(lead), list(trail)
        else:
            msgs = list(req.messages())
            idx = max(i for i, m in enumerate(msgs) if m.role == "user")
            content = msgs[idx].text
            msgs[idx] = Message("user", _SENTINEL)
            rendered = render_request(tok, replace(req, prompt=tuple(msgs)))
            prefix, _, suffix = rendered.partition(_SENTINEL)
            pre, suf = tok.encode(prefix), tok.encode(suffix)
        assert isinstance(content, str)
        official_budget = self.max_length - len(lead) - len(trail)
        window_budget = (self.max_prompt_tokens - len(pre) - len(suf)
                         if self.max_prompt_tokens is not None else None)
        if window_budget is None or official_budget <= window_budget:
            # upstream's split of the ids with the tokenizer's own special tokens (a BOS) in them:
            # head = L//2 ids including the BOS, tail = L - L//2 ids including a trailing special token
            head = max(self.max_length // 2 - len(lead), 0)
            tail = max(self.max_length - self.max_length // 2 - len(trail), 0)
        else:
            budget = max(window_budget, 0)
            head = budget // 2
            tail = budget - head
        n, first, last = encode_ends(tok, content, head, tail)
        if n <= official_budget and (window_budget is None or n <= window_budget):
            return req
        kept = first[:head] + (last[len(last) - tail:] if tail else [])
        return replace(req, prompt_ids=_shared(pre + kept + suf), truncated=True).drop_text()


PIECE_CHARS = 1 << 18
"""Texts longer than two pieces are encoded piece by piece (a whole million-word document costs the
tokenizer about 1.5 GB at once; a piece of 256K characters about 30 MB)."""
OVERLAP_CHARS = 4096
AGREE = 16
"""Tokens both encodings must share from a seam on, for the seam to be taken."""


def encode_ends(tok: Tokenizer, text: str, head: int, tail: int) -> tuple[int, list[int], list[int]]:
    """``(n, first head ids, last tail ids)`` of ``tok.encode(text)``, without holding the whole encoding.

    A long text is encoded in overlapping pieces. Two consecutive pieces are joined at a character position
    inside their overlap where a token starts in both encodings, the token before ends there in both, and the
    next ``AGREE`` tokens (ids and positions) are the same: the ids before it come from the first piece, the
    rest from the second. Where no such seam exists (or the tokenizer gives no offsets) the whole text is
    encoded at once. The test compares the result with the whole encoding on varied texts and tokenizers."""
    if len(text) <= 2 * PIECE_CHARS:
        return _ends(tok.encode(text), head, tail)
    try:
        return _encode_pieces(tok, text, head, tail)
    except _NoSeam:
        return _ends(tok.encode(text), head, tail)


class _NoSeam(Exception):
    pass


def _ends(ids: list[int], head: int, tail: int) -> tuple[int, list[int], list[int]]:
    return len(ids), ids[:head], ids[len(ids) - tail:] if tail else []


def _encode_pieces(tok: Tokenizer, text: str, head: int, tail: int) -> tuple[int, list[int], list[int]]:
    from collections import deque

    try:
        cur = _piece(tok, text, 0, PIECE_CHARS)
    except NotImplementedError:
        raise _NoSeam from None
    n, first, last = 0, [], deque(maxlen=max(tail, 1))
    emit_from = 0

    def emit(ids: list[int], starts: list[int], upto: int | None) -> None:
        nonlocal n
        for t, st in zip(ids, starts):
            if st < emit_from or (upto is not None and st >= upto):
                continue
            n += 1
            if len(first) < head:
                first.append(t)
            last.append(t)

    pos = PIECE_CHARS
    while True:
        if pos >= len(text):
            emit(cur[0], cur[1], None)
            break
        start = pos - OVERLAP_CHARS
        nxt = _piece(tok, text, start, start + PIECE_CHARS)
        seam = _seam(cur, nxt, start, pos)
        emit(cur[0], cur[1], seam)
        emit_from = seam
        cur = nxt
        pos = start + PIECE_CHARS
    return n, first, (list(last) if tail else [])


def _piece(tok: Tokenizer, text: str, start: int, end: int) -> tuple[list[int], list[int], list[int]]:
    """ids, absolute start and end character positions of the tokens of ``text[start:end]``."""
    ids, offsets = tok.encode_offsets(text[start:end])  # type: ignore[attr-defined]
    return list(ids), [a + start for a, _ in offsets], [b + start for _, b in offsets]


def _seam(a: tuple[list[int], list[int], list[int]], b: tuple[list[int], list[int], list[int]],
          lo: int, hi: int) -> int:
    """A character position in the overlap [lo, hi) where both encodings agree from there on (see
    ``encode_ends``); the first one past a quarter of the overlap, away from both pieces' edges."""
    a_at = {st: i for i, st in enumerate(a[1]) if lo + OVERLAP_CHARS // 4 <= st < hi - OVERLAP_CHARS // 4}
    for j, st in enumerate(b[1]):
        i = a_at.get(st)
        if i is None or i == 0 or j == 0 or a[2][i - 1] > st or b[2][j - 1] > st:
            continue
        if i + AGREE > len(a[0]) or j + AGREE > len(b[0]):
            continue
        if a[0][i:i + AGREE] == b[0][j:j + AGREE] and a[1][i:i + AGREE] == b[1][j:j + AGREE]:
            return st
    raise _NoSeam


_INTS: list[int] = []


def _shared(ids: list[int]) -> tuple[int, ...]:
    """``tuple(ids)`` built from one shared int object per id value: tokenizers hand back a new int object
    for every token (28 bytes each above 256), which 503 prompts of 120K tokens turn into 1.7 GB."""
    top = max(ids, default=-1)
    if top >= len(_INTS):
        _INTS.extend(range(len(_INTS), top + 1))
    return tuple(_INTS[i] for i in ids)


def _added_tokens(tok: Tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer itself puts before and after a text (``tokenizer.encode(text)``): a BOS for Llama,
    nothing for Qwen."""
    plain = tok.encode("a", add_special_tokens=False)
    full = tok.encode("a", add_special_tokens=True)
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []
