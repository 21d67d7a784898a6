"""Tokenizers: token counting, token-id truncation and chat-template rendering.

A ``Tokenizer`` renders a ``Request`` to the exact string a backend feeds its model (chat template
applied, a final assistant message continued as a prefill) and turns it into token ids. Tasks use it
to fit prompts to a token length (RULER) and the runner to truncate on token ids.

``load_tokenizer(path)`` reads a local HF tokenizer folder (``tokenizer.json`` plus
``tokenizer_config.json`` / ``chat_template.jinja``) with the light ``tokenizers`` library and renders
chat templates with Jinja2 the way transformers does, so neither torch nor transformers is imported.
The ``hf`` backend wraps transformers' own tokenizer in the same protocol.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from .errors import UserError
from .types import Message, Request


@runtime_checkable
class Tokenizer(Protocol):
    name: str

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def render_messages(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                        continue_final_message: bool = False) -> str: ...

    def describe(self) -> dict[str, Any]: ...


def render_request(tok: Tokenizer, req: Request) -> str:
    """The prompt string exactly as it is sent to the model."""
    if isinstance(req.prompt, str) and not req.use_chat_template:
        return req.prompt
    msgs = req.messages()
    prefill = msgs[-1].role == "assistant"
    return tok.render_messages(msgs, add_generation_prompt=not prefill, continue_final_message=prefill)


def request_ids(tok: Tokenizer, req: Request) -> list[int]:
    """Token ids the model sees for a request (BOS added by the tokenizer only for raw text prompts,
    as ``tokenizer(prompt)`` does; chat templates spell their own special tokens)."""
    if req.prompt_ids is not None:
        return list(req.prompt_ids)
    raw = isinstance(req.prompt, str) and not req.use_chat_template
    return tok.encode(render_request(tok, req), add_special_tokens=raw)


def request_token_count(tok: Tokenizer, req: Request) -> int:
    """``len(request_ids(tok, req))`` without encoding when the request carries its ids or the count
    planning made with this tokenizer (``Request.token_count``)."""
    if req.prompt_ids is not None:
        return len(req.prompt_ids)
    if req.token_count is not None:
        return req.token_count
    return len(request_ids(tok, req))


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jinja_env():
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def continue_final(rendered: str, final_text: str) -> str:
    """Cut a rendered chat after the final message's content so the model continues it
    (transformers' ``continue_final_message`` semantics)."""
    for needle in (final_text, final_text.strip()):
        if needle and needle in rendered:
            return rendered[: rendered.rindex(needle) + len(needle)]
    raise UserError("chat template did not render the assistant prefill; cannot continue it")


def _token_str(v: Any) -> str | None:
    if isinstance(v, dict):
        return v.get("content")
    return v


class LocalTokenizer:
    """A local HF tokenizer folder read with the ``tokenizers`` library (no transformers, no torch)."""

    def __init__(self, path: str | os.PathLike[str]):
        from tokenizers import Tokenizer as _Tok

        p = Path(path)
        tj = p / "tokenizer.json"
        if not tj.is_file():
            raise UserError(f"no tokenizer.json in {p} (pass a local HF model or tokenizer folder)")
        self.path = p
        self.name = p.name
        self._tok = _Tok.from_file(str(tj))
        self.tokenizer_hash = file_sha256(tj)
        cfg: dict[str, Any] = {}
        if (p / "tokenizer_config.json").is_file():
            cfg = json.loads((p / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.config = cfg
        template = None
        if (p / "chat_template.jinja").is_file():
            template = (p / "chat_template.jinja").read_text(encoding="utf-8")
        elif isinstance(cfg.get("chat_template"), str):
            template = cfg["chat_template"]
        elif (p / "chat_template.json").is_file():
            template = json.loads((p / "chat_template.json").read_text())["chat_template"]
        self.chat_template = template
        self.bos_token = _token_str(cfg.get("bos_token"))
        self.eos_token = _token_str(cfg.get("eos_token"))
        self._compiled = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (no special tokens added) and each token's (start, end) character span in ``text``."""
        enc = self._tok.encode(text, add_special_tokens=False)
        return enc.ids, list(enc.offsets)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def render_messages(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                        continue_final_message: bool = False) -> str:
        if self.chat_template is None:
            raise UserError(f"tokenizer {self.path} has no chat template; run the task without one "
                            "(-T chat_template=false)")
        if self._compiled is None:
            self._compiled = _jinja_env().from_string(self.chat_template)
        msgs = [m.to_dict() for m in messages]
        out = self._compiled.render(messages=msgs, add_generation_prompt=add_generation_prompt,
                                    bos_token=self.bos_token or "", eos_token=self.eos_token or "")
        if continue_final_message:
            out = continue_final(out, messages[-1].text)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "tokenizer": str(self.path), "tokenizer_sha256": self.tokenizer_hash,
            "chat_template_sha256": hashlib.sha256(self.chat_template.encode()).hexdigest()
            if self.chat_template else None,
        }


def load_tokenizer(path: str | os.PathLike[str]) -> LocalTokenizer:
    p = Path(path)
    if not p.exists():
        raise UserError(f"tokenizer path {str(p)!r} does not exist (hub ids need a local folder offline)")
    return LocalTokenizer(p)
