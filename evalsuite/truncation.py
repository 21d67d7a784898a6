"""Prompt truncation on token ids, a per-task policy applied by the runner.

The prompt is rendered and tokenized once with the backend's tokenizer, cut on token ids, and the
ids are handed to the backend as ``Request.prompt_ids``; text is never decoded and re-encoded (that
changes the token count and the content at the cut). Tasks whose generator sizes inputs itself
(RULER) declare no policy.

For chat prompts only the content between the chat template's prefix and suffix is cut: the template
is rendered with a sentinel in place of the last user message, split there, and the three parts are
tokenized separately. Tokenizing the parts separately can differ from tokenizing the whole string by a
token at each seam; the count is what the model sees, and it is recorded.

Two ways to count the budget (``Truncation.budget``):

* ``prompt`` (default): the whole prompt as the model receives it, chat template included, must fit.
* ``content``: only the task's own text counts, encoded on its own *with* the tokenizer's special tokens
  (a BOS counts), the way LongBench's ``pred.py`` counts ``len(tokenizer(prompt).input_ids)`` before it
  applies a chat template. The cut runs on those ids, BOS included in the head. A raw prompt is sent as
  the cut ids; a chat prompt gets the template's prefix and suffix ids around the cut ids with the
  tokenizer-added special tokens removed (the template spells its own), as LongBench's decode
  (``skip_special_tokens=True``) + chat template does, but without decoding and re-encoding.
  ``max_prompt_tokens`` adds a second bound (the model's window less the new tokens) on the whole prompt
  as sent; when it is the tighter one the content is cut in the middle to fit it (LongBench v2).

``low_memory`` (LongBench v2: documents of a million words, 503 prompts of 120K tokens planned at once):
a long content is tokenized in overlapping pieces (``encode_ends``: the same count and head/tail ids as one
encoding, without holding the whole), and a cut request keeps its ids, as shared int objects, and drops its
text (``Request.drop_text``: same key, same log rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from .tokenizer import Tokenizer, render_request, request_ids
from .types import Message, Request

_SENTINEL = "\uE000EVALSUITE_TRUNCATE\uE001"


def added_special_tokens(tok: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer itself adds around a text with ``add_special_tokens=True``: (leading,
    trailing), e.g. ``([bos], [])`` for Llama, ``([], [])`` for SmolLM2 or Qwen."""
    probe = "a"
    plain = tok.encode(probe, add_special_tokens=False)
    full = tok.encode(probe, add_special_tokens=True)
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


def template_parts(tok: Tokenizer, req: Request) -> tuple[list[int], list[int]]:
    """Token ids of the chat template around the last user message's content: (prefix, suffix).

    The request is rendered with a sentinel in place of that content and split there; each part is
    encoded without tokenizer-added special tokens (the template spells its own).
    """
    msgs = list(req.messages())
    idx = max(i for i, m in enumerate(msgs) if m.role == "user")
    msgs[idx] = Message("user", _SENTINEL)
    probe = replace(req, prompt=tuple(msgs), prompt_ids=None, use_chat_template=True)
    rendered = render_request(tok, probe)
    prefix, _, suffix = rendered.partition(_SENTINEL)
    return tok.encode(prefix), tok.encode(suffix)


def _content(req: Request) -> str:
    """The text a ``content`` budget counts: a raw prompt, or the last user message."""
    if isinstance(req.prompt, str):
        return req.prompt
    return [m for m in req.prompt if m.role == "user"][-1].text


@dataclass(frozen=True)
class Truncation:
    """Keep at most ``max_tokens`` prompt tokens.

    ``side``: ``middle`` keeps the first and last halves (LongBench), ``left`` keeps the end,
    ``right`` keeps the start.
    """

    max_tokens: int
    side: Literal["middle", "left", "right"] = "middle"
    budget: Literal["prompt", "content"] = "prompt"
    """What ``max_tokens`` counts: ``prompt`` = the whole prompt the model receives (chat template
    included, a tokenizer-added BOS kept out of the cut); ``content`` = the task's text alone, encoded
    with the tokenizer's special tokens (BOS counts and sits in the head), chat template on top
    (LongBench ``pred.py``)."""
    equal_halves: bool = False
    """``middle`` only. False: ``max_tokens // 2`` head tokens and the rest from the tail. True: keep
    ``int(max_tokens / 2)`` tokens at each end, so an odd budget keeps one token fewer (LongBench's
    ``half = int(max_length/2)``)."""
    max_prompt_tokens: int | None = None
    """``content`` only: a bound on the whole prompt as sent (chat template included), e.g. the context window
    less the new tokens; None when unknown."""
    low_memory: bool = False
    """``content`` only: encode a long content in pieces and drop the text of a cut request (module doc)."""

    def describe(self) -> dict[str, Any]:
        """The policy as recorded in the manifest (the ``content``-only fields when set)."""
        d = asdict(self)
        for key, default in (("max_prompt_tokens", None), ("low_memory", False)):
            if d[key] == default:
                del d[key]
        return d

    def cut(self, ids: list[int], budget: int) -> list[int]:
        if len(ids) <= budget:
            return ids
        if budget <= 0:
            return []
        if self.side == "right":
            return ids[:budget]
        if self.side == "left":
            return ids[len(ids) - budget:]
        head = budget // 2
        tail = head if self.equal_halves else budget - head
        return ids[:head] + ids[len(ids) - tail:]

    def apply(self, req: Request, tok: Tokenizer) -> Request:
        if self.budget == "content":
            return self._apply_content(req, tok)
        ids = request_ids(tok, req)
        if len(ids) <= self.max_tokens:
            return req
        raw = isinstance(req.prompt, str) and not req.use_chat_template
        if raw:
            # keep a leading BOS the tokenizer added out of the cut
            bos = tok.encode("", add_special_tokens=True)
            lead = ids[:len(bos)] if bos and ids[:len(bos)] == bos else []
            body = ids[len(lead):]
            new = lead + self.cut(body, self.max_tokens - len(lead))
        else:
            pre_ids, suf_ids = template_parts(tok, req)
            body = tok.encode(_content(req))
            new = pre_ids + self.cut(body, self.max_tokens - len(pre_ids) - len(suf_ids)) + suf_ids
        return replace(req, prompt_ids=tuple(new), truncated=True)

    def _apply_content(self, req: Request, tok: Tokenizer) -> Request:
        if req.prompt_ids is not None:
            return req  # cut already (a policy may meet the same request twice)
        lead, trail = added_special_tokens(tok)
        raw = isinstance(req.prompt, str) and not req.use_chat_template
        parts: tuple[list[int], list[int]] | None = (list(lead), list(trail)) if raw else None
        content_budget = self.max_tokens - len(lead) - len(trail)
        window = None
        if self.max_prompt_tokens is not None:
            parts = parts or template_parts(tok, req)
            window = self.max_prompt_tokens - len(parts[0]) - len(parts[1])
        if window is None or content_budget <= window:
            # the cut of the ids *with* the tokenizer's own special tokens: the head counts a BOS, the tail a
            # trailing special token
            half = self.max_tokens // 2
            head = max(half - len(lead), 0)
            tail = max((half if self.equal_halves else self.max_tokens - half) - len(trail), 0)
        else:
            budget = max(window, 0)
            head = budget // 2
            tail = head if self.equal_halves else budget - head
        text = _content(req)
        if self.low_memory:
            n, first, last = encode_ends(tok, text, head, tail)
        else:
            n, first, last = _ends(tok.encode(text), head, tail)
        if n <= content_budget and (window is None or n <= window):
            return req
        # a raw prompt is sent as the tokenizer encodes it (its own special tokens around the cut content); a
        # chat prompt gets the template's prefix and suffix ids around it
        pre, suf = parts or template_parts(tok, req)
        ids = pre + first[:head] + (last[len(last) - tail:] if tail else []) + suf
        if self.low_memory:
            return replace(req, prompt_ids=_shared(ids), truncated=True).drop_text()
        return replace(req, prompt_ids=tuple(ids), truncated=True)


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
