"""The one redaction mechanism: what evalsuite writes to a file or prints never carries a credential.

Every place that records a command line, an option, a URL, an error message or a server's answer passes
it through :func:`redact_text` (a string) or :func:`redact_obj` (a JSON-like structure): the runner
(backend and judge options, ``manifest.invocations[].command``, the error of every stored row), the
results store (every manifest it writes, every log row's error), the openai and lmeval backends (their
errors and ``describe()``), the judge, the leaderboard (run pages, sample pages) and the CLI's one-line
errors.

What is replaced by ``***``:

* URL userinfo: ``http://user:pw@host`` -> ``http://***@host``;
* the value of a credential-named field wherever it appears: a query parameter (``?api_key=...``),
  a ``name=value`` pair (``-B``/``-J`` options, lm-eval ``model_args``), a JSON or Python-repr field
  (``"api_key": "..."``), a header line (``x-api-key: ...``), and in :func:`redact_obj` a mapping key
  (see :func:`is_secret_name` for what counts as credential-named);
* ``Bearer ...`` / ``Basic ...`` authorization values and common key shapes (OpenAI/Anthropic ``sk-...``,
  Hugging Face ``hf_...``, GitHub ``ghp_``/``github_pat_``, AWS ``AKIA...``, Slack ``xox?-``, Google
  ``AIza...``, GitLab ``glpat-``, JWTs);
* every secret value this process read (:func:`secret_from_env`, :func:`register_secret`) and the value of
  every environment variable whose name looks like a credential (``OPENAI_API_KEY``, ``HF_TOKEN``, ...),
  in any letter case, and any run of 8 or more of their characters (a server that echoes
  ``sk-abc123de...`` in a 400 body, or upper-cases the key, is scrubbed too).

What it does not do: a secret shorter than :data:`MIN_SECRET_CHARS` characters is only caught by its
name or shape (matching every 4-letter string would mangle the text); a secret the model itself writes
into its answer is model output and is stored as such (generation texts are not scanned); and a secret
transformed beyond case (base64, split with separators) is not recognised.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Iterable, Mapping

REDACTED = "***"
MIN_SECRET_CHARS = 6
"""Registered secrets shorter than this are not matched by value (only by name or shape)."""
MIN_ENV_SECRET_CHARS = 8
"""Environment variables found by their name count as secrets from this length on ("EMPTY" is not a key)."""
PARTIAL_CHARS = 8
"""Any run of this many characters of a known secret is scrubbed (partial echoes in server errors)."""

_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "secrets", "password", "passwd", "passphrase", "authorization",
    "auth", "credential", "credentials", "bearer", "cookie", "header", "headers",
})
# a name made of these words describes a credential (where it lives, how long it is), not the credential
_META_LAST = frozenset({
    "env", "set", "file", "path", "name", "names", "var", "id", "ids", "len", "length", "count", "counts",
    "limit", "budget", "size", "type", "kind", "url", "host", "port", "user", "username", "dir", "sock",
    "socket", "hint", "source", "field", "mode", "required", "present", "provided", "hash", "sha256",
})
# ordinary model/tokenizer arguments that merely contain "token" or "key"
_NOT_SECRET_WORDS = frozenset({
    "bos", "eos", "pad", "unk", "sep", "cls", "mask", "end", "start", "special", "stop", "prefix", "think",
    "max", "min", "num", "n", "sort", "cache", "resume", "primary", "foreign", "partition", "dict",
})
# run-together names: "authtoken", "accesstoken", "secretkey", "xapikey"
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "apikey", "accesskey", "secretkey", "privatekey")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a field, option, parameter or variable of this name holds a credential.

    ``api_key``, ``apiKey``, ``x-api-key``, ``auth_token``, ``OPENAI_API_KEY``, ``HF_TOKEN``, ``password``,
    ``Authorization``, ``client_secret``, ``headers`` are; ``api_key_env`` (names a variable),
    ``max_tokens``, ``tokenizer``, ``add_bos_token``, ``stop_token_ids``, ``keys`` are not."""
    words = [w.lower() for w in _WORD.findall(str(name))]
    if not words or not any(w in _SECRET_WORDS or w.endswith(_SECRET_SUFFIXES) for w in words):
        return False
    if words[-1] in _META_LAST or any(w in _NOT_SECRET_WORDS for w in words):
        return False
    return True


# -- secrets known by value -----------------------------------------------------------------------------

_REGISTERED: dict[str, str] = {}
"""secret value -> where it came from (a variable name); process-wide, never written anywhere."""
_ENV_REF = re.compile(r"(?<![A-Za-z0-9_])env:([A-Za-z_][A-Za-z0-9_]*)")


def register_secret(value: str | None, source: str = "") -> None:
    """Remember a secret this process holds so that every later redaction scrubs it."""
    if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_CHARS:
        _REGISTERED[value.strip()] = source


def secret_from_env(name: str) -> str:
    """The (stripped) value of the environment variable ``name``, registered as a secret; "" when unset."""
    value = os.environ.get(name, "").strip()
    register_secret(value, name)
    return value


def register_env_refs(options: Mapping[str, Any] | None) -> None:
    """Register the secrets options point at: the variable named by any ``*_env`` option
    (``api_key_env=MY_KEY``) and every ``env:NAME`` reference inside a value (lm-eval ``model_args``)."""
    for k, v in (options or {}).items():
        if not isinstance(v, str):
            continue
        if str(k).lower().endswith("_env") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v.strip()):
            secret_from_env(v.strip())
        for m in _ENV_REF.finditer(v):
            secret_from_env(m.group(1))


def known_secrets() -> list[str]:
    """Registered secrets plus the values of credential-named environment variables."""
    out = dict.fromkeys(_REGISTERED)
    for name, value in os.environ.items():
        value = value.strip()
        if len(value) >= MIN_ENV_SECRET_CHARS and is_secret_name(name):
            out.setdefault(value)
    return list(out)


class _ValueMatcher:
    """Finds every secret, in any case, and every run of PARTIAL_CHARS of its characters."""

    def __init__(self, secrets: Iterable[str]):
        self.short: list[str] = []
        self.grams: set[str] = set()
        for s in secrets:
            low = s.lower()
            if len(low) < PARTIAL_CHARS:
                self.short.append(low)
            else:
                self.grams.update(low[i:i + PARTIAL_CHARS] for i in range(len(low) - PARTIAL_CHARS + 1))

    def spans(self, text: str) -> list[tuple[int, int]]:
        low = text.lower()
        spans = []
        for s in self.short:
            start = low.find(s)
            while start >= 0:
                spans.append((start, start + len(s)))
                start = low.find(s, start + 1)
        if self.grams and len(low) >= PARTIAL_CHARS:
            grams = self.grams
            k = PARTIAL_CHARS
            for i in range(len(low) - k + 1):
                if low[i:i + k] in grams:
                    spans.append((i, i + k))
        return spans

    def sub(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        spans.sort()
        merged = [list(spans[0])]
        for a, b in spans[1:]:
            if a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out, pos = [], 0
        for a, b in merged:
            out.append(text[pos:a])
            out.append(REDACTED)
            pos = b
        out.append(text[pos:])
        return "".join(out)


@functools.lru_cache(maxsize=8)
def _matcher(secrets: tuple[str, ...]) -> _ValueMatcher:
    return _ValueMatcher(secrets)


# -- secrets known by name or shape ------------------------------------------------------------------

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#'\"]+@")
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
# name=value (query parameters, -B/-J options, model_args, key=value in messages); the value is only
# consumed when the name is a credential's, so "base_url=http://h/v1?api_key=K" still finds the inner pair
_PAIR = re.compile(rf"(?<![A-Za-z0-9_.-])({_NAME})=(?!env:)")
_PAIR_VALUE = re.compile(r"[^&\s,;'\"}\])]+")
# "name": "value" / 'name': 'value' / name: value (JSON bodies, Python reprs, header lines)
_QUOTED = re.compile(rf"""(\\?["'])({_NAME})\1(\s*:\s*)(\\?["'])(?!env:)(.*?)(?<!\\)\4""")
_QUOTED_NUM = re.compile(rf"""(\\?["'])({_NAME})\1(\s*:\s*)(-?\d[\d.]*)""")
_HEADER = re.compile(rf"(?<![A-Za-z0-9_.\"'-])({_NAME}):[ \t]*(?![{{\[/])")
_HEADER_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s,;]+")
_AUTH_SCHEME = re.compile(r"(?i)\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-[A-Za-z0-9_-]{16,}"                      # OpenAI, Anthropic (sk-ant-), DeepSeek, ...
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|hf_[A-Za-z0-9]{30,}"                        # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"  # GitHub
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"                  # AWS access key id
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"              # Slack
    r"|AIza[0-9A-Za-z_-]{35}"                      # Google
    r"|glpat-[A-Za-z0-9_-]{20,}"                   # GitLab
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWT
    r")")
KEY_PREFIX = re.compile(r"^(?:sk-|hf_|ghp_|gho_|ghs_|ghu_|ghr_|github_pat_|xox[abposr]-|AKIA|ASIA|AIza|glpat-|"
                        r"Bearer\s|Basic\s)", re.I)
"""A whole option value that starts like a credential is one, whatever its name."""


def looks_like_key(value: str) -> bool:
    """Whether a whole value (an option, an argument) looks like a credential by its shape."""
    v = value.strip()
    return bool(KEY_PREFIX.match(v) or _KEY_SHAPES.fullmatch(v))


def _sub_named(m: re.Match[str], name_group: int, value_group: int) -> str:
    if not is_secret_name(m.group(name_group)) or not m.group(value_group):
        return m.group(0)
    start, end = m.span(value_group)
    base = m.start(0)
    s = m.group(0)
    return s[:start - base] + REDACTED + s[end - base:]


def _sub_values(head: re.Pattern[str], value: re.Pattern[str], text: str) -> str:
    """Replace the value after every ``head`` match whose name (group 1) is a credential's."""
    out, pos = [], 0
    for m in head.finditer(text):
        if m.start() < pos or not is_secret_name(m.group(1)):
            continue
        v = value.match(text, m.end())
        if v is None:
            continue
        out.append(text[pos:m.end()])
        out.append(REDACTED)
        pos = v.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def redact_text(text: str) -> str:
    """``text`` with every credential replaced by ``***`` (see the module docstring)."""
    return _redact_text(text, None)


def _redact_text(text: str, secrets: tuple[str, ...] | None) -> str:
    if not isinstance(text, str) or not text:
        return text
    text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    text = _AUTH_SCHEME.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _KEY_SHAPES.sub(REDACTED, text)
    text = _QUOTED.sub(lambda m: _sub_named(m, 2, 5), text)
    text = _QUOTED_NUM.sub(lambda m: _sub_named(m, 2, 4), text)
    text = _sub_values(_PAIR, _PAIR_VALUE, text)
    text = _sub_values(_HEADER, _HEADER_VALUE, text)
    # known values last: the patterns above replace whole tokens, and any 8 characters of a secret they
    # left (a value cut at a comma, a key inside a longer word) are caught here
    if secrets is None:
        secrets = tuple(known_secrets())
    if secrets:
        text = _matcher(secrets).sub(text)
    return text


def redact_obj(obj: Any) -> Any:
    """A JSON-like structure with every credential removed: the string value of a credential-named key
    becomes ``***`` (an ``env:NAME`` reference stays: it names the variable, not the secret), and every
    other string goes through :func:`redact_text`. Tuples become lists; other values are kept."""
    return _redact_obj(obj, tuple(known_secrets()))  # the environment read once, not once per string


def _redact_obj(obj: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(v, str) and is_secret_name(str(k)) and v.strip() and not _ENV_REF.fullmatch(v.strip()):
                out[k] = REDACTED
            else:
                out[k] = _redact_obj(v, secrets)
        return out
    if isinstance(obj, (list, tuple)):
        return [_redact_obj(v, secrets) for v in obj]
    if isinstance(obj, str):
        return _redact_text(obj, secrets)
    return obj


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line as it may be recorded: every word through :func:`redact_text`, and the word after a
    credential-named flag (``--api-key VALUE``) replaced."""
    out: list[str] = []
    hide_next = False
    for word in argv:
        word = str(word)
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if word.startswith("-") and "=" not in word and is_secret_name(word.lstrip("-")):
            hide_next = True
        elif word.startswith("--") and "=" in word and is_secret_name(word[2:].split("=", 1)[0]):
            word = word.split("=", 1)[0] + "=" + REDACTED
        out.append(redact_text(word))
    return out


__all__ = ["REDACTED", "is_secret_name", "known_secrets", "looks_like_key", "redact_argv", "redact_obj",
           "redact_text", "register_env_refs", "register_secret", "secret_from_env"]
