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
        body = tok.encode(content)
        official_budget = self.max_length - len(lead) - len(trail)
        window_budget = (self.max_prompt_tokens - len(pre) - len(suf)
                         if self.max_prompt_tokens is not None else None)
        if len(body) <= official_budget and (window_budget is None or len(body) <= window_budget):
            return req
        if window_budget is None or official_budget <= window_budget:
            # upstream's split of the ids with the tokenizer's own special tokens (a BOS) in them:
            # head = L//2 ids including the BOS, tail = L - L//2 ids including a trailing special token
            head = max(self.max_length // 2 - len(lead), 0)
            tail = max(self.max_length - self.max_length // 2 - len(trail), 0)
        else:
            budget = max(window_budget, 0)
            head = budget // 2
            tail = budget - head
        kept = body[:head] + (body[len(body) - tail:] if tail else [])
        del body
        return replace(req, prompt_ids=_shared(pre + kept + suf), truncated=True).drop_text()


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
