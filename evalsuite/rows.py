"""The rows and documents of a run folder, typed, with the schema version every file carries.

One class per kind of line or file (``evalsuite.store`` reads and writes them all):

* ``manifest.json``: a dict (what moves a number; ``evalsuite.manifest``), top-level ``schema_version``;
* ``<task>/plan.json``: :class:`PlanDoc`, top-level ``schema_version``;
* ``<task>/samples.jsonl``: :class:`SampleRow`, ``schema_version`` on every line;
* ``<task>/prompts.jsonl``: :class:`PromptRow`, on every line;
* ``<task>/judge.jsonl``: :class:`JudgeRow`, on every line;
* ``<task>/per_sample.jsonl``: :class:`PerSampleRow`, on every line;
* ``<task>/scores.json``: :class:`TaskScores`, its metrics as ``MetricResult`` entries (:data:`ScoreEntry`),
  top-level ``schema_version``.

Version 1 is the format before versions were written (no ``schema_version`` anywhere): it reads as it is
(the fields are the same). A file or line from a newer evalsuite (a higher version) is refused with one line
rather than misread. Logs are append-only, so one log may hold lines of both versions (a run resumed by a
newer evalsuite); each line says which it is.

Every typed row is also a read-only mapping of its file form (``row["generation"]["text"]``: the line as read,
or for a log row, as it would be written), so code written against the plain dicts of version 1 keeps
working; the engine uses the attributes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from .errors import UserError
from .types import Generation, MetricResult

SCHEMA_VERSION = 2
"""The version this evalsuite writes (1: the files of evalsuite before issue 19, without the field)."""

ScoreEntry = MetricResult
"""A metric's entry in ``scores.json`` is a :class:`~evalsuite.types.MetricResult` without per-sample values
(``MetricResult.to_dict`` / ``from_dict``)."""

_FINISH = ("stop", "length", "error")
_GENERATION_FIELDS = frozenset(f.name for f in dataclasses.fields(Generation))
"""Every field a logged generation may carry: the record's own (a field added to ``Generation`` is accepted
here without a second edit)."""


class NewerSchema(UserError):
    """A results file written by a newer evalsuite (one line, exit 2)."""


def file_version(d: Mapping[str, Any], where: str) -> int:
    """The ``schema_version`` of a file or line (1 when absent); a newer one than this evalsuite writes, or a
    value that is not a positive integer, is a :class:`NewerSchema` error naming ``where``."""
    v = d.get("schema_version", 1)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise NewerSchema(f"{where}: schema_version {v!r} is not a version this evalsuite knows")
    if v > SCHEMA_VERSION:
        raise NewerSchema(f"{where}: written by a newer evalsuite (schema_version {v}; this one reads up to "
                          f"{SCHEMA_VERSION}): upgrade evalsuite to read it")
    return v


class _FileForm(Mapping[str, Any]):
    """A read-only mapping of a typed row's file form (``to_dict()``), made once on first use."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every row defines it
        raise NotImplementedError

    def _form(self) -> dict[str, Any]:
        cached = self._cache  # type: ignore[attr-defined]
        if cached is None:
            cached = self.to_dict()
            object.__setattr__(self, "_cache", cached)
        return cached

    def __getitem__(self, key: str) -> Any:
        return self._form()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._form())

    def __len__(self) -> int:
        return len(self._form())


def _opt(d: Mapping[str, Any], key: str, *types: type) -> bool:
    v = d.get(key)
    return v is None or (isinstance(v, types) and not isinstance(v, bool))


def _generation(g: Any) -> Generation | None:
    """A logged generation (text optional in a damaged row: ``""``), or None when it is not one."""
    if not isinstance(g, dict) or g.get("finish_reason") not in _FINISH:
        return None
    if not set(g) <= _GENERATION_FIELDS:
        return None
    if not isinstance(g.get("text", ""), str) or not _opt(g, "error", str):
        return None
    flags = g.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return None
    return Generation(text=g.get("text", ""), finish_reason=g["finish_reason"], prompt_tokens=g.get("prompt_tokens"),
                      completion_tokens=g.get("completion_tokens"), error=g.get("error"), latency_s=g.get("latency_s"),
                      flags=tuple(flags))


# -- samples.jsonl ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SampleRow(_FileForm):
    """One finished request: which sample and pass, the prompt by hash and size, the parameters, the backend,
    what scoring needs of the sample (target, metadata) and the generation. Written as it finishes."""

    key: str
    generation: Generation
    task: str | None = None
    sample_id: str | None = None
    index: int | None = None
    stage: int | None = 0
    """0 for a sample's first request; n for the n-th follow-up (``MultiPass``)."""
    parent: str | None = None
    next: str | None = None
    """Key of the sample's next pass (None: the chain ends here)."""
    prompt_sha256: str | None = None
    prompt_chars: int | None = None
    prompt_tokens: int | None = None
    truncated: bool = False
    params: Mapping[str, Any] | None = None
    backend: str | None = None
    target: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    has_sample: bool = True
    """The row carries the sample's target (scoring needs it)."""
    has_text: bool = True
    """The generation carries its text (a damaged row without it is asked again)."""
    time: str | None = None
    repaired: tuple[str, ...] = ()
    """Fields whose text was not valid Unicode and was repaired before storing."""
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.generation.ok

    @property
    def reusable(self) -> bool:
        """An answer a resumed run keeps (finished without error, text present)."""
        return self.generation.ok and self.has_text

    @property
    def scorable(self) -> bool:
        """Everything scoring reads is there: sample id, index, target, the generation's text."""
        return self.index is not None and self.sample_id is not None and self.has_sample and self.has_text

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": self.key, "task": self.task, "sample_id": self.sample_id, "index": self.index,
            "stage": self.stage, "parent": self.parent, "next": self.next,
            "prompt_sha256": self.prompt_sha256, "prompt_chars": self.prompt_chars,
            "prompt_tokens": self.prompt_tokens, "truncated": self.truncated,
            "params": dict(self.params) if self.params is not None else None, "backend": self.backend,
            "sample": {"target": self.target, "metadata": dict(self.metadata)},
            "generation": self.generation.to_dict(), "time": self.time,
        }
        if not self.has_text:
            del d["generation"]["text"]
        if self.repaired:
            d["repaired"] = list(self.repaired)
        d["schema_version"] = SCHEMA_VERSION
        return d

    @staticmethod
    def from_dict(d: Any, where: str = "samples.jsonl") -> "SampleRow | None":
        """The row, or None when the line is not a log row (skipped and counted by the reader)."""
        if not isinstance(d, dict) or not isinstance(d.get("key"), str):
            return None
        gen = _generation(d.get("generation"))
        if gen is None:
            return None
        if not (_opt(d, "next", str) and _opt(d, "parent", str) and _opt(d, "stage", int) and _opt(d, "index", int)
                and _opt(d, "sample_id", str, int) and _opt(d, "sample", dict) and _opt(d, "task", str)):
            return None
        file_version(d, where)
        sample = d.get("sample") or {}
        meta = sample.get("metadata", {})
        has_sample = isinstance(d.get("sample"), dict) and "target" in sample and isinstance(meta, dict)
        if not isinstance(meta, dict):
            meta = {}
        sid = d.get("sample_id")
        repaired = d.get("repaired") or ()
        return SampleRow(
            key=d["key"], generation=gen, task=d.get("task"), sample_id=None if sid is None else str(sid),
            index=d.get("index"), stage=d.get("stage"), parent=d.get("parent"), next=d.get("next"),
            prompt_sha256=d.get("prompt_sha256"), prompt_chars=d.get("prompt_chars"),
            prompt_tokens=d.get("prompt_tokens"), truncated=bool(d.get("truncated")), params=d.get("params"),
            backend=d.get("backend"), target=sample.get("target"), metadata=meta,
            has_sample=has_sample,
            has_text="text" in d["generation"], time=d.get("time"),
            repaired=tuple(str(x) for x in repaired) if isinstance(repaired, list) else ())


@dataclass(frozen=True, eq=False)
class PromptRow(_FileForm):
    """A full prompt, logged only with ``--log-prompts``."""

    key: str
    sample_id: str
    stage: int
    prompt_sha256: str
    prompt: Any
    prompt_ids: Sequence[int] | None = None
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "sample_id": self.sample_id, "stage": self.stage,
                "prompt_sha256": self.prompt_sha256, "prompt": self.prompt,
                "prompt_ids": list(self.prompt_ids) if self.prompt_ids else None, "schema_version": SCHEMA_VERSION}

    @staticmethod
    def from_dict(d: Any, where: str = "prompts.jsonl") -> "PromptRow | None":
        """The row, or None when the line is not one (a key and a prompt hash at least)."""
        if not isinstance(d, dict) or not isinstance(d.get("key"), str) or not isinstance(d.get("prompt_sha256"), str):
            return None
        file_version(d, where)
        ids = d.get("prompt_ids")
        stage = d.get("stage")
        return PromptRow(key=d["key"], sample_id=str(d.get("sample_id", "")),
                         stage=stage if isinstance(stage, int) and not isinstance(stage, bool) else 0,
                         prompt_sha256=d["prompt_sha256"], prompt=d.get("prompt"),
                         prompt_ids=tuple(ids) if isinstance(ids, list) else None, _cache=d)


# -- judge.jsonl ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class JudgeRow(_FileForm):
    """One answer of the judge, keyed by judge identity + prompt + parameters."""

    key: str
    generation: Generation
    query_id: str | None = None
    judge: str | None = None
    prompt_sha256: str | None = None
    params: Mapping[str, Any] | None = None
    time: str | None = None
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "query_id": self.query_id, "judge": self.judge,
                "prompt_sha256": self.prompt_sha256, "params": dict(self.params) if self.params is not None else None,
                "generation": self.generation.to_dict(), "time": self.time, "schema_version": SCHEMA_VERSION}

    @staticmethod
    def from_dict(d: Any, where: str = "judge.jsonl") -> "JudgeRow | None":
        if not isinstance(d, dict) or not isinstance(d.get("key"), str):
            return None
        gen = _generation(d.get("generation"))
        if gen is None:
            return None
        file_version(d, where)
        return JudgeRow(key=d["key"], generation=gen, query_id=d.get("query_id"), judge=d.get("judge"),
                        prompt_sha256=d.get("prompt_sha256"), params=d.get("params"), time=d.get("time"))


# -- plan.json ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PlanDoc(_FileForm):
    """The request keys a task's run plans (the union of every invocation's selection); a shard's plan also
    names its place and the whole evaluation's keys."""

    task: str
    keys: tuple[str, ...]
    shard: Mapping[str, int] | None = None
    all_keys: tuple[str, ...] | None = None
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": self.task, "keys": list(self.keys)}
        if self.shard is not None:
            d.update({"shard": dict(self.shard), "all_keys": list(self.all_keys or ())})
        d["schema_version"] = SCHEMA_VERSION
        return d

    @staticmethod
    def from_dict(d: Any, where: str = "plan.json") -> "PlanDoc | None":
        """The plan, or None when the file is not one (treated as absent)."""
        if not isinstance(d, dict) or not isinstance(d.get("keys"), list):
            return None
        file_version(d, where)
        shard = d.get("shard")
        all_keys = d.get("all_keys")
        return PlanDoc(task=str(d.get("task", "")), keys=tuple(str(k) for k in d["keys"]),
                       shard=dict(shard) if isinstance(shard, dict) else None,
                       all_keys=tuple(str(k) for k in all_keys) if isinstance(all_keys, list) else None, _cache=d)


# -- per_sample.jsonl -----------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PerSampleRow(_FileForm):
    """One scored sample: prediction, flags, error, each metric's value (None when the metric has none for it),
    breakdown metadata and, for corpus metrics, the sample's sufficient statistics."""

    sample_id: str
    index: int
    key: str | None = None
    prediction: str | None = None
    flags: tuple[str, ...] = ()
    error: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Sequence[Any]] | None = None
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sample_id": self.sample_id, "index": self.index, "key": self.key,
                             "prediction": self.prediction, "flags": list(self.flags), "error": self.error,
                             "metrics": dict(self.metrics), "metadata": dict(self.metadata)}
        if self.stats is not None:
            d["stats"] = {k: list(v) for k, v in self.stats.items()}
        d["schema_version"] = SCHEMA_VERSION
        return d

    @staticmethod
    def from_dict(d: Any, where: str = "per_sample.jsonl") -> "PerSampleRow | None":
        """The row, or None when it is not one show/compare/leaderboard can use."""
        if not (isinstance(d, dict) and isinstance(d.get("sample_id"), (str, int))
                and isinstance(d.get("index"), int) and not isinstance(d.get("index"), bool)
                and isinstance(d.get("metrics", {}), dict) and isinstance(d.get("flags", []), list)
                and all(v is None or isinstance(v, (int, float)) for v in d.get("metrics", {}).values())):
            return None
        file_version(d, where)
        stats = d.get("stats")
        sid = d["sample_id"]
        return PerSampleRow(sample_id=sid if isinstance(sid, str) else str(sid), index=d["index"], key=d.get("key"),
                            prediction=d.get("prediction"), flags=tuple(d.get("flags") or ()), error=d.get("error"),
                            metrics=dict(d.get("metrics") or {}),
                            metadata=dict(d.get("metadata") or {}) if isinstance(d.get("metadata"), dict) else {},
                            stats=dict(stats) if isinstance(stats, dict) else None, _cache=d)


# -- scores.json ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TaskScores(_FileForm):
    """A task's corpus scores and counts, written last (a task is complete when its scores cover the current plan
    and log: ``evalsuite.completeness``)."""

    task: str
    version: Any
    metrics: tuple[MetricResult, ...]
    main: str | None
    value: float | None
    n: int = 0
    n_planned: int = 0
    n_missing: int = 0
    n_errors: int = 0
    n_truncated: int = 0
    n_output_truncated: int = 0
    n_unterminated_think: int = 0
    n_skipped_log_lines: int = 0
    complete: bool = False
    plan_sha256: str | None = None
    log_bytes: int | None = None
    scored_at: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Optional parts, in the order written: ``backend_flags``, ``shard``, ``skipped_metrics``, ``judge``
    (and any field of a later minor addition, kept as read)."""
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    COUNTS: ClassVar[tuple[str, ...]] = ("n", "n_planned", "n_missing", "n_errors", "n_truncated",
                                         "n_output_truncated", "n_unterminated_think", "n_skipped_log_lines")

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": self.task, "version": self.version,
                             "metrics": [m.to_dict() for m in self.metrics], "main": self.main, "value": self.value}
        d.update({"n": self.n, "n_planned": self.n_planned, "n_missing": self.n_missing, "n_errors": self.n_errors,
                  "n_truncated": self.n_truncated, "n_output_truncated": self.n_output_truncated,
                  "n_unterminated_think": self.n_unterminated_think, "n_skipped_log_lines": self.n_skipped_log_lines})
        d.update({"complete": self.complete, "plan_sha256": self.plan_sha256, "log_bytes": self.log_bytes,
                  "scored_at": self.scored_at})
        d.update(self.extra)
        d["schema_version"] = SCHEMA_VERSION
        return d

    @staticmethod
    def from_dict(d: Any, where: str = "scores.json") -> "TaskScores | None":
        if not isinstance(d, dict):
            return None
        file_version(d, where)
        known = {"task", "version", "metrics", "main", "value", "complete", "plan_sha256", "log_bytes", "scored_at",
                 "schema_version", *TaskScores.COUNTS}
        metrics = tuple(MetricResult.from_dict(m) for m in d.get("metrics") or [] if isinstance(m, dict))
        counts = {k: d[k] for k in TaskScores.COUNTS if isinstance(d.get(k), int) and not isinstance(d.get(k), bool)}
        return TaskScores(task=str(d.get("task", "")), version=d.get("version"), metrics=metrics, main=d.get("main"),
                          value=d.get("value"), complete=bool(d.get("complete")), plan_sha256=d.get("plan_sha256"),
                          log_bytes=d.get("log_bytes"), scored_at=d.get("scored_at"),
                          extra={k: v for k, v in d.items() if k not in known}, _cache=d, **counts)


__all__ = ["JudgeRow", "NewerSchema", "PerSampleRow", "PlanDoc", "PromptRow", "SCHEMA_VERSION", "SampleRow",
           "ScoreEntry", "TaskScores", "file_version"]
