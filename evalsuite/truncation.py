"""Prompt truncation on token ids, a per-task policy applied by the runner.

The prompt is rendered and tokenized once with the backend's tokenizer, cut on token ids, and the
ids are handed to the backend as ``Request.prompt_ids``; text is never decoded and re-encoded (that
changes the token count and the content at the cut). Tasks whose generator sizes inputs itself
(RULER) declare no policy.

For chat prompts only the content between the chat template's prefix and suffix is cut: the template
is rendered with a sentinel in place of the last user message, split there, and the three parts are
tokenized separately. Tokenizing the parts separately can differ from tokenizing the whole string by a
token at each seam; the count is what the model sees, and it is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .tokenizer import Tokenizer, render_request, request_ids
from .types import Message, Request

_SENTINEL = "\uE000EVALSUITE_TRUNCATE\uE001"


@dataclass(frozen=True)
class Truncation:
    """Keep at most ``max_tokens`` prompt tokens.

    ``side``: ``middle`` keeps the first and last halves (LongBench), ``left`` keeps the end,
    ``right`` keeps the start.
    """

    max_tokens: int
    side: Literal["middle", "left", "right"] = "middle"

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
        tail = budget - head
        return ids[:head] + ids[len(ids) - tail:]

    def apply(self, req: Request, tok: Tokenizer) -> Request:
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
            msgs = list(req.messages())
            idx = max(i for i, m in enumerate(msgs) if m.role == "user")
            content = msgs[idx].text
            msgs[idx] = Message("user", _SENTINEL)
            probe = replace(req, prompt=tuple(msgs), prompt_ids=None)
            rendered = render_request(tok, probe)
            prefix, _, suffix = rendered.partition(_SENTINEL)
            pre_ids = tok.encode(prefix)
            suf_ids = tok.encode(suffix)
            body = tok.encode(content)
            new = pre_ids + self.cut(body, self.max_tokens - len(pre_ids) - len(suf_ids)) + suf_ids
        return replace(req, prompt_ids=tuple(new), truncated=True)
