"""Frozen, serializable records that flow between tasks, backends, metrics and the store.

Data only: no I/O and no heavy imports. Every record converts to and from plain JSON via
`to_dict()` / `from_dict()` so the results store and plugins can exchange them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence

FinishReason = Literal["stop", "length", "error"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every hash in evalsuite is taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One part of a chat message: text, or an image (multimodal tasks)."""

    type: Literal["text", "image"]
    text: str | None = None
    """The text of a text part."""
    image: str | None = None
    """An image part: a local path, a URL or a ``data:`` URI. Hashed into request keys, never logged inline."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message. ``content`` is plain text or a tuple of parts (text and images)."""

    role: Literal["system", "user", "assistant"]
    content: str | tuple[ContentPart, ...]

    @property
    def text(self) -> str:
        """The message's text parts joined (images dropped)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.content, str):
            return {"role": self.role, "content": self.content}
        return {"role": self.role, "content": [p.to_dict() for p in self.content]}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Message":
        content = d["content"]
        if not isinstance(content, str):
            content = tuple(ContentPart(**p) for p in content)
        return Message(role=d["role"], content=content)


@dataclass(frozen=True, slots=True)
class Sample:
    """One benchmark item."""

    id: str
    """Stable across runs for a given task version (e.g. the official ``_id``, or ``<task>-<index>``)."""
    index: int
    """0-based position in the source data (or generation order for synthetic tasks)."""
    input: Any
    """Task-specific input fields (context, question, ...), as the task needs them to build a request."""
    target: Any
    """References: ``str``, ``list[str]`` or a task-specific rule spec."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Breakdown keys (length bucket, needle depth, language, ...) recorded per sample in the results."""


@dataclass(frozen=True, slots=True)
class GenParams:
    """Generation parameters, always passed explicitly: no backend default is ever relied on."""

    max_tokens: int
    """Maximum new tokens. Required: vLLM defaults to 16 and other backends differ (vLLM #5395)."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    """Stop strings; the returned text excludes them."""
    seed: int = 0
    stop_token_ids: tuple[int, ...] = ()
    """Token ids that end the generation like EOS does (in addition to the model's EOS ids); the returned text
    excludes the stop token. LongBench's samsum stops on the "\\n" token this way."""
    min_tokens: int = 0
    """New tokens generated before EOS or a ``stop_token_ids`` token may be picked (transformers'
    ``min_new_tokens``, vLLM's ``min_tokens``). Stop strings are not affected."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        object.__setattr__(self, "stop", tuple(self.stop))
        ids = tuple(self.stop_token_ids)
        if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in ids):
            raise ValueError(f"stop_token_ids must be non-negative ints, got {list(ids)!r}")
        object.__setattr__(self, "stop_token_ids", ids)
        if isinstance(self.min_tokens, bool) or not isinstance(self.min_tokens, int) or \
                not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"min_tokens must be an int in [0, max_tokens], got {self.min_tokens!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        # Left out at their defaults, so that every request key and log row written before these fields
        # existed stays the same.
        if self.stop_token_ids:
            d["stop_token_ids"] = list(self.stop_token_ids)
        else:
            del d["stop_token_ids"]
        if not self.min_tokens:
            del d["min_tokens"]
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "GenParams":
        return GenParams(**{**d, "stop": tuple(d.get("stop", ())),
                            "stop_token_ids": tuple(d.get("stop_token_ids", ()))})


@dataclass(frozen=True, slots=True)
class Request:
    """What a backend is asked to generate for one sample.

    ``prompt`` is raw text (sent as-is, no chat template) or a tuple of chat messages. A final
    ``assistant`` message is a prefill: the model continues it (RULER's answer prefix).
    ``prompt_ids`` is set by the runner when it tokenized (and possibly truncated) the prompt itself;
    backends that accept token ids must then use them instead of re-tokenizing the text.
    """

    task: str
    sample_id: str
    index: int
    prompt: str | tuple[Message, ...]
    params: GenParams
    use_chat_template: bool = True
    """For a text prompt: whether the backend wraps it as one user message in the chat template."""
    prompt_ids: tuple[int, ...] | None = None
    truncated: bool = False
    """True when the runner cut the prompt to the task's token budget."""
    token_count: int | None = None
    """Tokens the model sees for this prompt (what ``tokenizer.request_ids`` gives), when planning has
    counted them already (RULER fits every prompt to a length with the backend's tokenizer): backends
    that only count use it instead of encoding the prompt again (``tokenizer.request_token_count``).
    Derived from the prompt, so not part of ``prompt_hash`` or ``key``; ``prompt_ids`` wins when set."""
    text_dropped: tuple[str, int] | None = None
    """``(prompt_hash, prompt_chars)`` of the full request when its text was dropped to save memory (see
    ``drop_text``): the request then carries its ``prompt_ids`` and a placeholder text, and keeps the hash
    and the size of the text it had, so keys and log rows are the same as if the text were there."""

    @classmethod
    def new(cls, prompt: str | tuple[Message, ...], params: GenParams, *, use_chat_template: bool = True,
            prompt_ids: tuple[int, ...] | None = None, truncated: bool = False,
            token_count: int | None = None) -> "Request":
        """A task's request: the prompt and its parameters. Its identity (task, sample id, index) is left
        blank for the runner to stamp (:meth:`stamped`): tasks never build it by hand."""
        return cls("", "", -1, prompt, params, use_chat_template, prompt_ids, truncated, token_count)

    def stamped(self, task: str, sample_id: str, index: int) -> "Request":
        """This request with its identity set (the runner does it for every pass of every sample)."""
        if (self.task, self.sample_id, self.index) == (task, sample_id, index):
            return self
        return replace(self, task=task, sample_id=sample_id, index=index)

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.prompt, str)

    def messages(self) -> tuple[Message, ...]:
        """The prompt as chat messages (a text prompt becomes one user message)."""
        if isinstance(self.prompt, str):
            return (Message("user", self.prompt),)
        return self.prompt

    def prompt_payload(self) -> Any:
        if isinstance(self.prompt, str):
            return self.prompt
        return [m.to_dict() for m in self.prompt]

    def prompt_hash(self) -> str:
        """sha256 of the prompt (text, messages with image references, or token ids)."""
        if self.text_dropped is not None:
            return self.text_dropped[0]
        payload = {"prompt": self.prompt_payload(), "chat": self.use_chat_template}
        if self.prompt_ids is not None:
            payload["ids"] = list(self.prompt_ids)
        images = self._local_image_hashes()
        if images:
            # The bytes, not just the path: an image replaced in place must not reuse old answers.
            payload["image_sha256"] = images
        return sha256_text(canonical_json(payload))

    def _local_image_hashes(self) -> list[str]:
        if isinstance(self.prompt, str):
            return []
        out = []
        for m in self.prompt:
            if isinstance(m.content, str):
                continue
            for part in m.content:
                ref = part.image if part.type == "image" else None
                if ref and not ref.startswith(("data:", "http://", "https://")):
                    out.append(_file_sha256(ref))
        return out

    def prompt_chars(self) -> int:
        if self.text_dropped is not None:
            return self.text_dropped[1]
        if isinstance(self.prompt, str):
            return len(self.prompt)
        return sum(len(m.text) for m in self.prompt)

    def drop_text(self) -> "Request":
        """This request without its text, for a long prompt that backends receive as ``prompt_ids`` (a
        LongBench v2 document of a million words, cut to 120K tokens, need not stay in memory). The prompt
        becomes the same shape with empty text (a chat keeps its roles); ``prompt_hash``, ``prompt_chars``
        and hence ``key`` are those of the full request."""
        if self.prompt_ids is None:
            raise ValueError("only a request with prompt_ids can drop its text")
        if self.text_dropped is not None:
            return self
        stub: str | tuple[Message, ...] = "" if isinstance(self.prompt, str) else tuple(
            Message(m.role, "") for m in self.prompt)
        return replace(self, prompt=stub, text_dropped=(self.prompt_hash(), self.prompt_chars()))

    def key(self, backend_id: str) -> str:
        """Resume key: backend identity + task + sample + prompt + generation parameters."""
        return sha256_text(canonical_json({
            "backend": backend_id, "task": self.task, "sample": self.sample_id,
            "prompt": self.prompt_hash(), "params": self.params.to_dict(),
        }))[:32]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "task": self.task, "sample_id": self.sample_id, "index": self.index,
            "prompt": self.prompt_payload(), "params": self.params.to_dict(),
            "use_chat_template": self.use_chat_template, "truncated": self.truncated,
        }
        if self.prompt_ids is not None:
            d["prompt_ids"] = list(self.prompt_ids)
        if self.token_count is not None:
            d["token_count"] = self.token_count
        if self.text_dropped is not None:
            d["text_dropped"] = {"prompt_sha256": self.text_dropped[0], "prompt_chars": self.text_dropped[1]}
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Request":
        prompt = d["prompt"]
        if not isinstance(prompt, str):
            prompt = tuple(Message.from_dict(m) for m in prompt)
        ids = d.get("prompt_ids")
        dropped = d.get("text_dropped")
        return Request(task=d["task"], sample_id=d["sample_id"], index=d["index"], prompt=prompt,
                       params=GenParams.from_dict(d["params"]),
                       use_chat_template=d.get("use_chat_template", True),
                       prompt_ids=tuple(ids) if ids is not None else None,
                       truncated=d.get("truncated", False), token_count=d.get("token_count"),
                       text_dropped=(dropped["prompt_sha256"], int(dropped["prompt_chars"])) if dropped else None)


@dataclass(frozen=True, slots=True)
class Generation:
    """A backend's answer to one request. Failures are values: ``finish_reason='error'`` + ``error``."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    latency_s: float | None = None
    flags: tuple[str, ...] = ()
    """What the backend noticed about this answer that can move a score, e.g. ``prompt_reencoded`` (the
    engine takes text only and re-encoding a runner-cut prompt gave other token ids). Each becomes a record
    flag and is counted in the task's scores."""

    @staticmethod
    def failed(error: str, latency_s: float | None = None) -> "Generation":
        return Generation(text="", finish_reason="error", error=error, latency_s=latency_s)

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.flags:  # left out when empty: log rows written before the field existed stay the same
            d["flags"] = list(self.flags)
        else:
            del d["flags"]
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Generation":
        return Generation(**{**d, "flags": tuple(d.get("flags", ()))})


@dataclass(frozen=True, slots=True)
class Record:
    """What metrics see: the sample, the raw generation and the extracted prediction."""

    sample: Sample
    prediction: str
    generation: Generation
    flags: tuple[str, ...] = ()
    """Per-record flags, e.g. ``unterminated_think``, ``truncated``, ``error``."""


@dataclass(frozen=True, slots=True)
class MetricResult:
    """A corpus-level score with its reproducibility signature and per-sample values.

    ``details["scale"]`` is the factor between the per-sample values and ``value`` (x100 for RULER,
    LongBench); a corpus metric without per-sample values (BLEU, chrF) may bring its own bootstrap interval as
    ``details["ci95"]``. :meth:`with_stats` adds the standard error and the 95% bootstrap interval over the
    scaled per-sample values, and :meth:`to_dict` / :meth:`from_dict` are the metric's entry in
    ``scores.json`` (per-sample values live in ``per_sample.jsonl``, not there)."""

    name: str
    value: float
    signature: str
    per_sample: tuple[float, ...] | None = None
    higher_is_better: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)
    per_sample_stats: tuple[Any, ...] | None = None
    """Corpus metrics without per-sample values (BLEU, chrF): each sample's sufficient statistics, kept in
    per_sample.jsonl so ``compare`` can bootstrap the corpus score over paired samples."""
    stderr: float | None = None
    """Standard error of the mean of the scaled per-sample values (:meth:`with_stats`)."""
    ci95: tuple[float, float] | None = None
    """95% bootstrap interval (:meth:`with_stats`, or the metric's own for a corpus metric)."""

    @property
    def scale(self) -> float:
        """What each per-sample value is multiplied by to be on ``value``'s scale (1 unless the metric says)."""
        d = self.details
        return float(d.get("scale", 1.0) or 1.0) if isinstance(d, Mapping) else 1.0

    def scaled_per_sample(self) -> list[float] | None:
        return None if self.per_sample is None else [v * self.scale for v in self.per_sample]

    def with_stats(self, seed: int = 0) -> "MetricResult":
        """This result with ``stderr`` and ``ci95``: over the scaled per-sample values when there are any,
        else the metric's own ``details["ci95"]`` (corpus metrics), else none."""
        from .stats import bootstrap_ci, stderr

        vals = self.scaled_per_sample()
        if vals is not None:
            ci = bootstrap_ci(vals, seed=seed)
            return replace(self, stderr=stderr(vals), ci95=(ci[0], ci[1]) if ci else None)
        own = self.details.get("ci95") if isinstance(self.details, Mapping) else None
        if isinstance(own, (list, tuple)) and len(own) == 2:
            return replace(self, ci95=(own[0], own[1]))
        return self

    def to_dict(self) -> dict[str, Any]:
        """The entry in ``scores.json``: name, value, signature, direction, then ``stderr`` and ``ci95`` (both
        present, maybe null, for a metric with per-sample values; ``ci95`` alone for a corpus metric that
        has one) and ``details``."""
        d: dict[str, Any] = {"name": self.name, "value": self.value, "signature": self.signature,
                             "higher_is_better": self.higher_is_better}
        if self.per_sample is not None:
            d["stderr"] = self.stderr
            d["ci95"] = list(self.ci95) if self.ci95 else None
        elif self.ci95 is not None:
            d["ci95"] = list(self.ci95)
        if self.details:
            d["details"] = dict(self.details)
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "MetricResult":
        """A ``scores.json`` entry read back (no per-sample values: those are in ``per_sample.jsonl``)."""
        ci = d.get("ci95")
        ci95 = (ci[0], ci[1]) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
        details = d.get("details")
        return MetricResult(name=str(d.get("name", "")), value=d.get("value"),  # type: ignore[arg-type]
                            signature=str(d.get("signature") or ""), per_sample=None,
                            higher_is_better=bool(d.get("higher_is_better", True)),
                            details=dict(details) if isinstance(details, Mapping) else {},
                            stderr=d.get("stderr"), ci95=ci95)


__all__ = [
    "ContentPart", "FinishReason", "GenParams", "Generation", "Message", "MetricResult", "Record",
    "Request", "Sample", "canonical_json", "sha256_text",
]


def as_messages(items: Sequence[Mapping[str, Any]]) -> tuple[Message, ...]:
    """Build a message tuple from ``[{"role": ..., "content": ...}]`` dicts."""
    return tuple(Message.from_dict(m) for m in items)


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: str) -> str:
    """sha256 of a local file (cached by path, size and mtime); "missing" when it cannot be read (the
    backend then reports the request as failed)."""
    import hashlib
    import os

    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]
