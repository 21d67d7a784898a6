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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Sequence

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


def strip_added(ids: Sequence[int], lead: Sequence[int], trail: Sequence[int]) -> list[int]:
    """``ids`` without a leading ``lead`` / trailing ``trail`` (each removed only where present)."""
    out = list(ids)
    if lead and out[:len(lead)] == list(lead):
        out = out[len(lead):]
    if trail and len(out) >= len(trail) and out[len(out) - len(trail):] == list(trail):
        out = out[:len(out) - len(trail)]
    return out


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
        ids = tok.encode(_content(req), add_special_tokens=True)
        if len(ids) <= self.max_tokens:
            return req
        kept = self.cut(ids, self.max_tokens)
        if isinstance(req.prompt, str) and not req.use_chat_template:
            return replace(req, prompt_ids=tuple(kept), truncated=True)
        lead, trail = added_special_tokens(tok)
        pre_ids, suf_ids = template_parts(tok, req)
        new = pre_ids + strip_added(kept, lead, trail) + suf_ids
        return replace(req, prompt_ids=tuple(new), truncated=True)
