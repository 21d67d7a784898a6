"""The judge plugin: a metric asks a judge model for verdicts through any registered backend.

A run names its judge with ``--judge-backend`` (any backend: ``hf``, ``openai``, ``replay``, a plugin's),
``--judge-model`` and ``-J key=value`` (repeatable). ``-J`` keys ``max_tokens``, ``temperature``, ``top_p``,
``seed`` and ``chat_template`` are the judge's generation parameters; every other key goes to the judge
backend as its option (what ``-B`` is for the model under test, e.g. ``-J base_url=...`` or
``-J file=verdicts.jsonl``). Defaults: greedy, chat template on, and a one-token budget for yes/no verdicts.

A metric that needs a judge declares ``evalsuite.contracts.NeedsJudge`` and is scored as
``metric.score(records, ctx)`` with ``ctx.judge`` a :class:`Judge` bound to the task. Without a judge the
runner skips such metrics and says so in ``scores.json`` (``skipped_metrics``). The metric puts
``judge.id`` into its signature.

Every judge answer is appended (flush + fsync, torn tail repaired) to ``<run>/<task>/judge.jsonl`` at the
latest half a second after it arrives, keyed by judge identity + prompt + parameters; re-scoring or resuming
a killed run never asks a persisted question again, and a changed judge gets fresh keys. Failed calls are
logged and asked again next time.

API (small on purpose)::

    judge.generate(queries: Sequence[JudgeQuery]) -> list[Generation]   # batched, cached
    judge.yes_no(queries) -> list[bool | None]                         # exact-match verdicts
    parse_yes_no(text) -> bool | None
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .backends import iterate
from .options import Option, non_negative_float, parse_bool, parse_options, positive_int
from .reasoning import split_reasoning
from .redact import redact_obj
from .rows import JudgeRow
from .signature import Signature
from .store import JUDGE_LOG, ResultsStore, append_judge_rows, read_judge_rows
from .types import GenParams, Generation, Message, Request, canonical_json, sha256_text

if TYPE_CHECKING:  # pragma: no cover
    from .contracts import Backend

def _top_p(v: str) -> float:
    """A nucleus mass in (0, 1], as ``GenParams`` takes it."""
    x = float(v)
    if not 0 < x <= 1:
        raise ValueError("must be in (0, 1]")
    return x


GEN_KEYS: dict[str, Option] = {
    "max_tokens": Option(positive_int, None, "the judge's answer budget (default: what each metric asks for)"),
    "temperature": Option(non_negative_float, 0.0, "sampling temperature (0: greedy)"),
    "top_p": Option(_top_p, 1.0, "nucleus sampling mass, in (0, 1]"),
    "seed": Option(int, 0, "sampling seed"),
    "chat_template": Option(parse_bool, True, "send the judge's prompt through the model's chat template"),
}
"""The ``-J`` options that set how the judge generates; every other ``-J`` option goes to its backend."""
FLUSH_ROWS, FLUSH_SECONDS = 256, 0.5
"""Answers are made durable at least every 256 answers or half a second, whichever comes first."""
YES_NO_TOKENS = 1
"""The verdict budget: one token ("yes" / "no" / "Yes" / "No" are single tokens in common vocabularies)."""


@dataclass(frozen=True)
class JudgeConfig:
    """The judge a run asked for (CLI ``--judge-backend``, ``--judge-model``, ``-J``)."""

    backend: str
    model: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def gen_options(self) -> dict[str, Any]:
        given = {k: v for k, v in self.options.items() if k in GEN_KEYS}
        return parse_options(GEN_KEYS, given, "judge", defaults=False,
                             bad=lambda k, raw, exc: f"judge option {k}={raw!r}: {exc}")

    def backend_options(self) -> dict[str, str]:
        return {k: v for k, v in self.options.items() if k not in GEN_KEYS}

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "options": dict(self.options)}

    @staticmethod
    def from_dict(d: Mapping[str, Any] | None) -> "JudgeConfig | None":
        if not d or not d.get("backend"):
            return None
        return JudgeConfig(d["backend"], d.get("model"), dict(d.get("options") or {}))


@dataclass(frozen=True)
class JudgeQuery:
    """One question for the judge."""

    id: str
    """Stable and unique within the task (e.g. ``<sample id>/<check>``); the replay backend answers by it."""
    prompt: str | tuple[Message, ...]
    max_tokens: int = YES_NO_TOKENS
    """Budget for this query (``-J max_tokens`` overrides it for every query)."""
    stop: tuple[str, ...] = ()
    """Stop strings for this query (a judge protocol's own, e.g. LongBench-Cite's few-shot rating)."""


def parse_yes_no(text: str) -> bool | None:
    """``yes`` / ``no`` by exact match after trimming whitespace, case and one trailing ``.``/``!``;
    anything else (``Yes, but``, ``eyes``, ``no idea``) is ``None``."""
    t = text.strip().lower()
    if t[-1:] in {".", "!"}:
        t = t[:-1].rstrip()
    return True if t == "yes" else False if t == "no" else None


class Judge:
    """A judge backend bound to one task's cache file."""

    def __init__(self, backend: Backend, config: JudgeConfig, cache_path: Path, task: str):
        self.backend = backend
        self.config = config
        self.cache_path = Path(cache_path)
        self.task = task
        g = config.gen_options()
        self.chat_template = bool(g.get("chat_template", True))
        self.max_tokens_override = g.get("max_tokens")
        self.temperature = float(g.get("temperature", 0.0))
        self.top_p = float(g.get("top_p", 1.0))
        self.seed = int(g.get("seed", 0))
        sig = Signature(backend.id, chat=int(self.chat_template), t=self.temperature, p=self.top_p, seed=self.seed)
        if self.max_tokens_override:
            sig.add("max", self.max_tokens_override)
        self.id = str(sig)
        self._cache: dict[str, JudgeRow] = {}
        self._memo: dict[tuple[Any, ...], Generation] = {}
        for row in read_judge_rows(self.cache_path):
            if row.generation.ok:
                self._cache[row.key] = row
        self.n_calls = 0
        self.n_cached = 0
        self.n_errors = 0

    def _request(self, q: JudgeQuery, index: int) -> Request:
        params = GenParams(max_tokens=self.max_tokens_override or q.max_tokens, temperature=self.temperature,
                           top_p=self.top_p, seed=self.seed, stop=tuple(q.stop))
        return Request.new(q.prompt, params, use_chat_template=self.chat_template).stamped(self.task, q.id, index)

    def key(self, req: Request) -> str:
        return sha256_text(canonical_json({"judge": self.backend.id, "prompt": req.prompt_hash(),
                                           "params": req.params.to_dict()}))[:32]

    def generate(self, queries: Sequence[JudgeQuery]) -> list[Generation]:
        """Answers in query order: cached ones from the log, the rest asked in batches and logged as
        each arrives."""
        out: list[Generation | None] = [None] * len(queries)
        reqs: dict[int, Request] = {}
        keys: dict[int, str] = {}
        todo: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            memo = self._memo.get((q.id, q.max_tokens, q.stop, q.prompt))  # asked before by this object
            if memo is not None:
                out[i] = memo
                self.n_cached += 1
                continue
            reqs[i] = self._request(q, i)
            keys[i] = k = self.key(reqs[i])
            if k in self._cache:
                out[i] = self._cache[k].generation
                self.n_cached += 1
            else:
                todo.setdefault(k, []).append(i)
        first = [pos[0] for pos in todo.values()]
        pending = [reqs[i] for i in first]
        buffer: list[JudgeRow] = []
        last_flush = time.monotonic()
        try:
            for j, gen in (iterate(self.backend, pending) if pending else ()):
                i = first[j]
                k = keys[i]
                self.n_calls += 1
                row = JudgeRow(key=k, generation=gen, query_id=queries[i].id, judge=self.id,
                               prompt_sha256=reqs[i].prompt_hash(), params=reqs[i].params.to_dict(),
                               time=time.strftime("%Y-%m-%dT%H:%M:%S"))
                buffer.append(row)
                if len(buffer) >= FLUSH_ROWS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    append_judge_rows(self.cache_path, buffer)
                    buffer, last_flush = [], time.monotonic()
                if gen.ok:
                    self._cache[k] = row
                else:
                    self.n_errors += 1
                for pos in todo[k]:
                    out[pos] = gen
        finally:
            if buffer:
                append_judge_rows(self.cache_path, buffer)
        for i, g in enumerate(out):
            if g is not None and g.ok:
                q = queries[i]
                self._memo[(q.id, q.max_tokens, q.stop, q.prompt)] = g
        return [g if g is not None else Generation.failed("judge: no answer") for g in out]

    def yes_no(self, queries: Sequence[JudgeQuery]) -> list[bool | None]:
        """Verdicts by :func:`parse_yes_no` on the reply after any think block (``evalsuite.reasoning``); a
        failed call, an unterminated think block or an unparseable reply is ``None``."""
        out: list[bool | None] = []
        for g in self.generate(queries):
            answer, _, unterminated = split_reasoning(g.text)
            out.append(parse_yes_no(answer) if g.ok and not unterminated else None)
        return out

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, **redact_obj(self.config.to_dict()), "calls": self.n_calls,
                "cached": self.n_cached, "errors": self.n_errors, "log": JUDGE_LOG}


class JudgeProvider:
    """Builds the judge backend on first use (only when a metric needs it) and one :class:`Judge` per
    task folder. Close it when scoring is done."""

    def __init__(self, config: JudgeConfig, registry: Any):
        self.config = config
        self.registry = registry
        self._backend: Any = None
        self._judges: dict[str, Judge] = {}

    def backend(self) -> Any:
        if self._backend is None:
            from .backends import construct_backend

            self._backend = construct_backend(self.registry.backend(self.config.backend), self.config.backend,
                                              self.config.model, self.config.backend_options())
        return self._backend

    def for_task(self, where: ResultsStore | Path, task: str) -> Judge:
        """The judge of one task, its answers cached in the run's ``<task>/judge.jsonl`` (``where``: the run's
        store, or the task's folder)."""
        log = where.judge_log(task) if isinstance(where, ResultsStore) else Path(where) / JUDGE_LOG
        key = str(log)
        if key not in self._judges:
            self._judges[key] = Judge(self.backend(), self.config, log, task)
        return self._judges[key]

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


__all__ = ["JUDGE_LOG", "Judge", "JudgeConfig", "JudgeProvider", "JudgeQuery", "YES_NO_TOKENS", "parse_yes_no"]
