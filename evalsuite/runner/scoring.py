"""Scoring: a task's final answers read back from its samples log (so a resumed run, an uninterrupted run
and ``evalsuite score`` take the same path to the same numbers), turned into records (reasoning removed,
the task's extraction applied, flags set), scored by every metric with its context, and written as
``scores.json`` and ``per_sample.jsonl`` (``evalsuite.rows``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from ..contracts import ScoreContext, Task
from ..metrics import needs_judge, score_metric
from ..reasoning import split_reasoning
from ..rows import PerSampleRow, PlanDoc, SampleRow, TaskScores
from ..store import SAMPLES, ResultsStore, skipped_lines
from ..types import MetricResult, Record, Sample
from .config import now


def records_from_rows(task: Task, rows: Sequence[SampleRow]) -> tuple[list[Record], list[str]]:
    """Metric records from log rows (reasoning stripped, extraction applied), and each row's key."""
    records: list[Record] = []
    keys: list[str] = []
    for row in rows:
        gen = row.generation
        assert row.sample_id is not None and row.index is not None  # scorable rows only
        s = Sample(id=row.sample_id, index=row.index, input=None, target=row.target, metadata=row.metadata)
        flags: list[str] = []
        answer, reasoning, unterminated = split_reasoning(gen.text)
        if not gen.ok:
            flags.append("error")
            prediction = ""
        elif unterminated:
            flags.append("unterminated_think")
            prediction = ""
        else:
            prediction = task.extract(s, replace(gen, text=answer))
        if reasoning is not None:
            flags.append("reasoning_removed" if not unterminated else "reasoning_unterminated")
        if row.truncated:
            flags.append("truncated")
        if row.repaired:
            flags.append("repaired")
        if gen.finish_reason == "length":
            flags.append("output_truncated")  # the answer was cut at max_tokens (or the context limit)
        flags.extend(f for f in gen.flags if f not in flags)
        records.append(Record(sample=s, prediction=prediction, generation=gen, flags=tuple(flags)))
        keys.append(row.key)
    return records, keys


def final_row(latest: Mapping[str, SampleRow], key: str) -> SampleRow | None:
    """Follow a sample's passes from its first request to the last; None while a pass is missing."""
    row = latest.get(key)
    seen = set()
    while row is not None and row.next and row.ok:
        if row.key in seen:  # pragma: no cover - a cycle would be a bug in a task
            raise RuntimeError(f"request chain loops at {row.key}")
        seen.add(row.key)
        row = latest.get(row.next)
    return row


def rows_in_plan(store: ResultsStore, name: str, plan: PlanDoc | None = None) -> list[SampleRow]:
    """The final-pass row of every planned sample that has one (``plan``: the task's plan when the caller
    has read it already)."""
    latest = store.latest_rows(name)
    plan = plan if plan is not None else store.read_plan(name)
    keys = plan.keys if plan is not None else [k for k, r in latest.items() if not r.stage]
    # a final row scoring cannot read (hand-edited, another version's) counts as missing
    rows = [r for r in (final_row(latest, k) for k in keys) if r is not None and r.scorable]
    rows.sort(key=lambda r: r.index or 0)
    return rows


def score_task(store: ResultsStore, name: str, task: Task, judge: Any = None) -> TaskScores:
    """Score one task from its samples log and write scores.json + per_sample.jsonl.

    ``judge`` (a :class:`evalsuite.judge.JudgeProvider`) serves metrics that declare ``NeedsJudge``; without
    one they are skipped and listed under ``skipped_metrics``."""
    from ..completeness import log_bytes, plan_sha256

    size = log_bytes(store, name)  # before reading: a later append makes these scores stale
    plan = store.read_plan(name)
    rows = rows_in_plan(store, name, plan)
    records, keys = records_from_rows(task, rows)
    n_planned = len(plan.keys) if plan is not None else len(rows)
    results: list[MetricResult] = []
    per_sample_values: dict[str, tuple[float, ...]] = {}
    per_sample_stats: dict[str, tuple[Any, ...]] = {}
    skipped: list[dict[str, str]] = []
    judges: dict[str, Any] = {}
    options = dict(task.opts)
    for metric in task.metrics():
        if not records:
            continue
        ctx = ScoreContext(task=name, options=options)
        if needs_judge(metric):
            if judge is None:
                skipped.append({"name": metric.name, "reason": "needs a judge model: pass --judge-backend"})
                continue
            bound = judge.for_task(store, name)
            ctx = ScoreContext(task=name, judge=bound, options=options)
            judges[bound.id] = bound
        res = score_metric(metric, records, ctx)
        if res.per_sample is not None:
            if len(res.per_sample) != len(records):
                raise RuntimeError(f"metric {res.name} returned {len(res.per_sample)} values for {len(records)} records")
            per_sample_values[res.name] = res.per_sample
        if res.per_sample_stats is not None and len(res.per_sample_stats) == len(records):
            per_sample_stats[res.name] = res.per_sample_stats
        # stderr and the bootstrap CI over the scaled per-sample values; a corpus metric (BLEU, chrF) brings
        # its own CI over per-segment statistics
        results.append(res.with_stats(seed=0))
    n_errors = sum("error" in r.flags for r in records)
    extra: dict[str, Any] = {}
    backend_flags: dict[str, int] = {}
    for r in records:
        for f in r.generation.flags:
            backend_flags[f] = backend_flags.get(f, 0) + 1
    if backend_flags:  # e.g. prompt_reencoded (lmeval): answers whose prompt differs from the planned ids
        extra["backend_flags"] = dict(sorted(backend_flags.items()))
    if plan is not None and plan.shard:
        extra["shard"] = dict(plan.shard)
    if skipped:
        extra["skipped_metrics"] = skipped
    if judges:
        extra["judge"] = [j.describe() for j in judges.values()]
    scores = TaskScores(
        task=name, version=task.version, metrics=tuple(results),
        main=results[0].name if results else None, value=results[0].value if results else None,
        n=len(records), n_planned=n_planned, n_missing=n_planned - len(records), n_errors=n_errors,
        n_truncated=sum("truncated" in r.flags for r in records),
        n_output_truncated=sum("output_truncated" in r.flags for r in records),
        n_unterminated_think=sum("unterminated_think" in r.flags for r in records),
        n_skipped_log_lines=skipped_lines(store.task_dir(name) / SAMPLES),
        complete=n_planned == len(records) and n_errors == 0,
        plan_sha256=plan_sha256(plan.keys) if plan is not None else None, log_bytes=size, scored_at=now(),
        extra=extra)
    per_sample = [
        PerSampleRow(sample_id=rec.sample.id, index=rec.sample.index, key=key, prediction=rec.prediction,
                     flags=rec.flags, error=rec.generation.error,
                     metrics={m: v[i] for m, v in per_sample_values.items()}, metadata=dict(rec.sample.metadata),
                     stats={m: list(v[i]) for m, v in per_sample_stats.items()} if per_sample_stats else None)
        for i, (rec, key) in enumerate(zip(records, keys))]
    store.write_scores(name, scores, per_sample)
    return scores


__all__ = ["final_row", "records_from_rows", "rows_in_plan", "score_task"]
