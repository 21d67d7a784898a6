"""The runner: plan every request of every selected task, skip what is done, generate in large batches
persisting each finished generation before going on, then score.

Scoring always reads back the samples log, so a resumed run, an uninterrupted run and
``evalsuite score`` take the same path to the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import __version__
from .errors import UserError
from .manifest import environment_info
from .reasoning import split_reasoning
from .registry import Registry, default_registry
from .stats import bootstrap_ci, stderr
from .store import ResultsStore, atomic_write_json
from .task import TaskContext
from .types import Generation, Record, Request, Sample, canonical_json, sha256_text


@dataclass
class RunConfig:
    """Everything a run is asked to do (the CLI fills it from flags and EVALSUITE_* variables)."""

    tasks: list[str]
    model: str | None = None
    backend: str | None = None
    """Backend name; default ``embedded`` without --model, ``hf`` with one."""
    task_options: dict[str, str] = field(default_factory=dict)
    backend_options: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    """First N samples of each task."""
    samples: list[str] | None = None
    """Only these samples: ``<sample id>`` or ``<task>:<index>``."""
    run_id: str | None = None
    output: str = "results"
    log_prompts: bool = False
    max_tokens: int | None = None
    """Explicit override of every task's max_tokens (recorded)."""
    progress: bool = True
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    judge_backend: str | None = None
    """Backend of the judge model for metrics that need one (``evalsuite.judge``); None: no judge."""
    judge_model: str | None = None
    judge_options: dict[str, str] = field(default_factory=dict)
    """``-J key=value``: judge generation parameters and judge backend options."""
    workers: int = 1
    """Data-parallel workers: N > 1 (or a ``ray_address``) runs N Ray actors, each holding a warm backend."""
    ray_address: str | None = None
    """Join this existing Ray cluster (``auto`` or ``ray://host:port``) instead of starting a local one."""
    shard: tuple[int, int] | None = None
    """``(i, n)``: plan everything, generate only the i-th of n interleaved slices of each task's samples
    (``evalsuite merge`` combines the n shard runs into one)."""

    def judge_config(self) -> Any:
        from .judge import JudgeConfig

        if not self.judge_backend:
            if self.judge_model or self.judge_options:
                raise UserError("--judge-model / -J need --judge-backend")
            return None
        return JudgeConfig(self.judge_backend, self.judge_model, dict(self.judge_options))


@dataclass
class PlannedItem:
    task: str
    sample: Sample
    request: Request
    key: str
    stage: int = 0
    """0 for a sample's first request; n for the n-th follow-up (``Task.next_request``)."""
    parent: str | None = None
    """Key of the request whose answer this one follows up."""
    history: tuple[tuple[Request, Generation], ...] = ()
    """Earlier passes of this sample, oldest first."""


@dataclass
class RunOutcome:
    run_dir: str
    run_id: str
    scores: dict[str, dict[str, Any]]
    n_generated: int
    n_reused: int
    """Requests answered by an earlier invocation of this run (never regenerated)."""
    timings: dict[str, float]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_run_id() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _split_task_options(registry: Registry, names: Sequence[str],
                        options: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Give each task the ``-T`` options it declares; an option no selected task accepts is an error.

    ``-T key=value`` goes to every task that declares ``key``; ``-T <task>.key=value`` to one task.
    """
    per: dict[str, dict[str, str]] = {n: {} for n in names}
    used: set[str] = set()
    for raw_key, value in options.items():
        target, key = None, raw_key
        if "." in raw_key:
            maybe_task, maybe_key = raw_key.rsplit(".", 1)
            if maybe_task in per:
                target, key = maybe_task, maybe_key
        for name in ([target] if target else names):
            declared = getattr(registry.task(name).factory, "options", None)
            if declared is None or key in declared:
                per[name][key] = value
                used.add(raw_key)
    unused = sorted(set(options) - used)
    if unused:
        raise UserError(f"task option(s) {unused} are not accepted by any selected task "
                        f"({', '.join(names)})")
    return per


def _parse_sample_filter(entries: Sequence[str]) -> tuple[set[str], set[tuple[str, int]]]:
    ids: set[str] = set()
    positions: set[tuple[str, int]] = set()
    for e in entries:
        e = e.strip()
        if not e:
            continue
        if ":" in e:
            task, _, idx = e.rpartition(":")
            try:
                positions.add((task, int(idx)))
            except ValueError:
                raise UserError(f"--samples entry {e!r}: expected <task>:<index> with an integer index") from None
        else:
            ids.add(e)
    return ids, positions


def build_backend(registry: Registry, cfg: RunConfig) -> Any:
    name = cfg.backend or ("hf" if cfg.model else "embedded")
    if cfg.workers > 1 or cfg.ray_address:
        from .executors.ray_pool import RayPool

        registry.backend(name)  # an unknown backend fails here, before Ray starts
        return RayPool(name, cfg.model, dict(cfg.backend_options), workers=cfg.workers,
                       address=cfg.ray_address)
    from .backends import construct_backend

    return construct_backend(registry.backend(name), name, cfg.model, cfg.backend_options)


def _row_for(item: PlannedItem, gen: Generation, backend_id: str, next_key: str | None) -> dict[str, Any]:
    req = item.request
    s = item.sample
    return {
        "key": item.key, "task": item.task, "sample_id": s.id, "index": s.index,
        "stage": item.stage, "parent": item.parent, "next": next_key,
        "prompt_sha256": req.prompt_hash(), "prompt_chars": req.prompt_chars(),
        "prompt_tokens": gen.prompt_tokens, "truncated": req.truncated,
        "params": req.params.to_dict(), "backend": backend_id,
        "sample": {"target": s.target, "metadata": dict(s.metadata)},
        "generation": gen.to_dict(), "time": _now(),
    }


class _Progress:
    """A rich progress bar (counts, ETA, tokens/s) on a terminal; silent otherwise.

    The total grows as passes are planned (a multi-pass task adds its follow-ups as answers arrive).
    """

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.total = total
        self.tokens = 0
        self.errors = 0
        self.t0 = time.perf_counter()
        self.bar = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("errors {task.fields[errors]}"), TextColumn("{task.fields[tps]} tok/s"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.bar.start()
        self.tid = self.bar.add_task("gen", total=self.total, errors=0, tps="-")

    def grow(self, n: int) -> None:
        if not self.enabled or n <= 0:
            return
        self.total += n
        if self.bar is None:
            self._start()
        else:
            self.bar.update(self.tid, total=self.total)

    def advance(self, gen: Generation) -> None:
        if self.bar is None:
            return
        self.tokens += gen.completion_tokens or 0
        self.errors += 0 if gen.ok else 1
        dt = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.tid, advance=1, errors=self.errors, tps=f"{self.tokens / dt:.1f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _backend_model_name(backend: Any, given: str | None) -> str | None:
    """The model's name as the backend holds it (hf/vllm ``model_name``, lmeval ``pretrained``, openai
    ``model``), else ``--model`` as given."""
    for attr in ("model_name", "pretrained", "model"):
        v = getattr(backend, attr, None)
        if isinstance(v, str) and v:
            return v
    return given


def plan(registry: Registry, cfg: RunConfig, backend: Any) -> tuple[dict[str, Any], list[PlannedItem], dict[str, Any]]:
    """Instantiate tasks, build samples and requests. Returns (tasks, items, task manifest entries)."""
    names = registry.expand_tasks(cfg.tasks)
    if not names:
        raise UserError("no tasks selected (--tasks)")
    opts = _split_task_options(registry, names, cfg.task_options)
    ctx = TaskContext(tokenizer=getattr(backend, "tokenizer", None),
                      max_model_len=getattr(backend, "max_model_len", None),
                      model=_backend_model_name(backend, cfg.model))
    ids, positions = _parse_sample_filter(cfg.samples or [])
    known_tasks_in_filter = {t for t, _ in positions}
    for t in known_tasks_in_filter - set(names):
        raise UserError(f"--samples names task {t!r}, which is not among the selected tasks")
    tasks: dict[str, Any] = {}
    items: list[PlannedItem] = []
    entries: dict[str, Any] = {}
    truncation_counts: dict[str, int] = {}
    for name in names:
        task = registry.task(name).factory(**opts[name])
        task.prepare(ctx)
        tasks[name] = task
        stream: Iterable[Sample] = task.samples()
        if cfg.samples:
            stream = (s for s in stream if s.id in ids or (name, s.index) in positions)
        if cfg.limit is not None:
            stream = itertools.islice(stream, cfg.limit)
        seen: set[str] = set()
        policy = getattr(task, "truncation", None)
        policy = policy() if callable(policy) else policy
        prompt_hashes = []
        n_trunc = 0
        for s in stream:
            if s.id in seen:
                raise UserError(f"{name}: duplicate sample id {s.id!r} in the task's data")
            seen.add(s.id)
            req = task.request(s)
            if cfg.max_tokens is not None:
                req = replace(req, params=replace(req.params, max_tokens=cfg.max_tokens))
            if policy is not None and ctx.tokenizer is not None:
                req = policy.apply(req, ctx.tokenizer)
                n_trunc += req.truncated
            prompt_hashes.append(req.prompt_hash())
            items.append(PlannedItem(name, s, req, req.key(backend.id)))
        truncation_counts[name] = n_trunc
        params = {canonical_json(it.request.params.to_dict()) for it in items if it.task == name}
        entries[name] = {
            "version": getattr(task, "version", "0"),
            "options": dict(opts[name]),
            "describe": task.describe(),
            "n_planned": len(seen),
            "n_truncated": n_trunc,
            "prompts_sha256": sha256_text("\n".join(prompt_hashes)),
            "generation_params": [json.loads(p) for p in sorted(params)],
            "truncation": dataclasses.asdict(policy) if dataclasses.is_dataclass(policy) else None,
            "chat_template": getattr(task, "opts", {}).get("chat_template", None),
        }
    return tasks, items, entries


_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


def _redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """Backend options as recorded: credentials in URLs (``http://user:pw@host``) removed."""
    return {k: _USERINFO.sub(r"\1***@", v) if isinstance(v, str) else v for k, v in options.items()}


def _check_resumable(existing: Mapping[str, Any], backend_id: str, entries: Mapping[str, Any]) -> None:
    old_backend = existing.get("backend", {}).get("id")
    if old_backend and old_backend != backend_id:
        raise UserError(f"run {existing.get('run_id')!r} was made with backend {old_backend!r}, not "
                        f"{backend_id!r}; use a new --run-id")
    for name, e in entries.items():
        old = existing.get("tasks", {}).get(name)
        if old and str(old.get("version")) != str(e["version"]):
            raise UserError(f"run {existing.get('run_id')!r} has {name} version {old.get('version')}, "
                            f"this evalsuite has {e['version']}; use a new --run-id")


def run(cfg: RunConfig, registry: Registry | None = None, backend: Any = None,
        on_generation: Callable[[PlannedItem, Generation], None] | None = None) -> RunOutcome:
    """Run (or resume) an evaluation and score it."""
    registry = registry or default_registry()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    own_backend = backend is None
    judge_cfg = cfg.judge_config()
    judge = None
    if backend is None:
        backend = build_backend(registry, cfg)
    timings["backend_load_s"] = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        tasks, items, entries = plan(registry, cfg, backend)
        timings["plan_s"] = time.perf_counter() - t1

        all_keys = {name: [it.key for it in items if it.task == name] for name in tasks}
        if cfg.shard is not None:
            items = shard_items(items, *cfg.shard)

        run_id = cfg.run_id or default_run_id()
        store = ResultsStore(cfg.output, run_id)
        existing = store.read_manifest()
        _check_resumable(existing, backend.id, entries)
        shard = {"index": cfg.shard[0], "count": cfg.shard[1]} if cfg.shard is not None else None
        if existing and existing.get("shard") != shard:
            raise UserError(f"run {run_id!r} was made with shard {existing.get('shard')}, not {shard}; "
                            f"use a new --run-id")
        if judge_cfg is None and existing.get("judge"):
            from .judge import JudgeConfig

            judge_cfg = JudgeConfig.from_dict(existing["judge"])  # a resumed run keeps its judge
        manifest = dict(existing) if existing else {
            "run_id": run_id, "created": _now(), **environment_info()}
        manifest.update({
            "evalsuite_version": __version__,
            "backend": {"id": backend.id, "options": _redact_options(cfg.backend_options), "model": cfg.model,
                        "describe": backend.describe()},
            "tasks": {**manifest.get("tasks", {}), **entries},
            "updated": _now(),
        })
        if judge_cfg is not None:
            manifest["judge"] = {**judge_cfg.to_dict(), "options": _redact_options(judge_cfg.options)}
        if shard is not None:
            manifest["shard"] = shard
        invocation = {"started": _now(), "command": cfg.command, "status": "running",
                      "limit": cfg.limit, "samples": cfg.samples, "max_tokens_override": cfg.max_tokens}
        manifest.setdefault("invocations", []).append(invocation)
        store.write_manifest(manifest)
        for name in tasks:
            plan_doc: dict[str, Any] = {"task": name, "keys": [it.key for it in items if it.task == name]}
            if shard is not None:
                plan_doc.update({"shard": shard, "all_keys": all_keys[name]})
            atomic_write_json(store.task_dir(name) / "plan.json", plan_doc)

        bind = getattr(backend, "bind", None)
        if callable(bind):
            bind(tasks, {(it.task, it.sample.id): it.sample for it in items})

        t2 = time.perf_counter()
        n_generated, n_reused = _generate(store, backend, tasks, items, cfg, on_generation)
        timings["generate_s"] = time.perf_counter() - t2
        backend_timings = getattr(backend, "timings", None)
        if callable(backend_timings):
            # per-phase figures a backend measures itself (engine load, prefill/decode throughput,
            # prefix-cache hit rate), recorded with this invocation
            invocation["backend_timings"] = backend_timings()

        t3 = time.perf_counter()
        if judge_cfg is not None:
            from .judge import JudgeProvider

            judge = JudgeProvider(judge_cfg, registry)
        scores = {name: score_task(store, name, tasks[name], judge=judge) for name in tasks}
        timings["score_s"] = time.perf_counter() - t3
        timings["total_s"] = time.perf_counter() - t0

        invocation.update({"ended": _now(), "status": "complete", "n_generated": n_generated,
                           "n_reused": n_reused, "timings": timings})
        manifest["updated"] = _now()
        store.write_manifest(manifest)
        return RunOutcome(str(store.dir), run_id, scores, n_generated, n_reused, timings)
    finally:
        if own_backend:
            backend.close()
        if judge is not None:
            judge.close()


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n."""
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def shard_items(items: Sequence[PlannedItem], index: int, count: int) -> list[PlannedItem]:
    """The ``index``-th of ``count`` interleaved slices of every task's planned samples.

    Interleaving (positions p with p % count == index) spreads a task's long and short items over the
    shards; a sample's follow-up passes stay in the shard of its first pass."""
    pos: dict[str, int] = {}
    out = []
    for it in items:
        p = pos.get(it.task, 0)
        pos[it.task] = p + 1
        if p % count == index:
            out.append(it)
    return out


def _follow_up(task: Any, item: PlannedItem, gen: Generation, backend_id: str,
               max_tokens: int | None) -> PlannedItem | None:
    """The sample's next pass, when its task has one (multi-pass protocols such as CoT-then-answer).

    ``--max-tokens`` applies to every pass; a task's truncation policy applies to the first pass only
    (follow-ups are built from the task's own short templates).
    """
    nxt = getattr(task, "next_request", None)
    if nxt is None or not gen.ok:
        return None
    history = item.history + ((item.request, gen),)
    req = nxt(item.sample, list(history))
    if req is None:
        return None
    if max_tokens is not None:
        req = replace(req, params=replace(req.params, max_tokens=max_tokens))
    return PlannedItem(item.task, item.sample, req, req.key(backend_id), stage=item.stage + 1,
                       parent=item.key, history=history)


def _generate(store: ResultsStore, backend: Any, tasks: Mapping[str, Any], items: list[PlannedItem],
              cfg: RunConfig, on_generation: Callable[[PlannedItem, Generation], None] | None) -> tuple[int, int]:
    """Generate every request not yet answered, pass by pass. Returns (generated, reused)."""
    latest = {name: store.latest_rows(name) for name in tasks}
    progress = _Progress(0, cfg.progress)
    n_generated = n_reused = 0
    frontier = items
    try:
        while frontier:
            pending: list[PlannedItem] = []
            follow: list[PlannedItem] = []
            for it in frontier:
                row = latest[it.task].get(it.key)
                if row is not None and row["generation"]["finish_reason"] != "error":
                    n_reused += 1
                    nxt = _follow_up(tasks[it.task], it, Generation.from_dict(row["generation"]), backend.id,
                                     cfg.max_tokens)
                    if nxt is not None:
                        follow.append(nxt)
                else:
                    pending.append(it)
            if getattr(backend, "sort_by_length", False):
                pending.sort(key=lambda it: -(len(it.request.prompt_ids) if it.request.prompt_ids is not None
                                              else it.request.prompt_chars()))
            progress.grow(len(pending))
            for item, gen in _run_backend(backend, pending):
                nxt = _follow_up(tasks[item.task], item, gen, backend.id, cfg.max_tokens)
                row = _row_for(item, gen, backend.id, nxt.key if nxt is not None else None)
                prompts = []
                if cfg.log_prompts:
                    prompts.append({"key": item.key, "sample_id": item.sample.id, "stage": item.stage,
                                    "prompt_sha256": row["prompt_sha256"], "prompt": item.request.prompt_payload(),
                                    "prompt_ids": list(item.request.prompt_ids) if item.request.prompt_ids else None})
                store.append(item.task, [row], prompts)
                n_generated += 1
                progress.advance(gen)
                if nxt is not None:
                    follow.append(nxt)
                if on_generation is not None:
                    on_generation(item, gen)
            frontier = follow
    finally:
        progress.close()
    return n_generated, n_reused


def _run_backend(backend: Any, pending: list[PlannedItem]):
    """Yield ``(item, generation)`` as the backend finishes them."""
    if not pending:
        return
    reqs = [it.request for it in pending]
    gen_iter = getattr(backend, "generate_iter", None)
    if gen_iter is None:
        def gen_iter(rs: Sequence[Request]):
            bs = max(1, int(getattr(backend, "batch_size", 64)))
            for start in range(0, len(rs), bs):
                outs = backend.generate(rs[start:start + bs])
                if len(outs) != len(rs[start:start + bs]):
                    raise RuntimeError("backend returned a batch of the wrong length")
                for i, g in enumerate(outs):
                    yield start + i, g
    for pos, gen in gen_iter(reqs):
        yield pending[pos], gen


# -- scoring ---------------------------------------------------------------------------------------

def records_from_rows(task: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Build metric records from log rows (reasoning stripped, extraction applied)."""
    records: list[Record] = []
    extra: list[dict[str, Any]] = []
    for row in rows:
        gen = Generation.from_dict(row["generation"])
        s = Sample(id=row["sample_id"], index=row["index"], input=None, target=row["sample"]["target"],
                   metadata=row["sample"].get("metadata", {}))
        flags: list[str] = []
        answer, reasoning, unterminated = split_reasoning(gen.text)
        if not gen.ok:
            flags.append("error")
            prediction = ""
        elif unterminated:
            flags.append("unterminated_think")
            prediction = ""
        else:
            stripped = replace(gen, text=answer)
            prediction = task.extract(s, stripped)
        if reasoning is not None:
            flags.append("reasoning_removed" if not unterminated else "reasoning_unterminated")
        if row.get("truncated"):
            flags.append("truncated")
        flags.extend(f for f in gen.flags if f not in flags)
        records.append(Record(sample=s, prediction=prediction, generation=gen, flags=tuple(flags)))
        extra.append({"key": row["key"]})
    return records, extra


def _final_row(latest: Mapping[str, dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Follow a sample's passes from its first request to the last; None while a pass is missing."""
    row = latest.get(key)
    seen = set()
    while row is not None and row.get("next") and row["generation"]["finish_reason"] != "error":
        if row["key"] in seen:  # pragma: no cover - a cycle would be a bug in a task
            raise RuntimeError(f"request chain loops at {row['key']}")
        seen.add(row["key"])
        row = latest.get(row["next"])
    return row


def _rows_in_plan(store: ResultsStore, name: str) -> list[dict[str, Any]]:
    """The final-pass row of every planned sample that has one."""
    latest = store.latest_rows(name)
    plan_path = store.task_dir(name) / "plan.json"
    if plan_path.exists():
        keys = json.loads(plan_path.read_text())["keys"]
    else:
        keys = [k for k, r in latest.items() if not r.get("stage")]
    rows = [r for r in (_final_row(latest, k) for k in keys) if r is not None]
    rows.sort(key=lambda r: r["index"])
    return rows


def score_task(store: ResultsStore, name: str, task: Any, judge: Any = None) -> dict[str, Any]:
    """Score one task from its samples log and write scores.json + per_sample.jsonl.

    ``judge`` (a :class:`evalsuite.judge.JudgeProvider`) serves metrics with ``needs_judge``; without one
    they are skipped and listed under ``skipped_metrics``."""
    rows = _rows_in_plan(store, name)
    records, extra = records_from_rows(task, rows)
    plan_path = store.task_dir(name) / "plan.json"
    plan_doc = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    n_planned = len(plan_doc["keys"]) if plan_doc else len(rows)
    metrics_out = []
    per_sample_values: dict[str, tuple[float, ...] | None] = {}
    per_sample_stats: dict[str, tuple[Any, ...]] = {}
    skipped: list[dict[str, str]] = []
    judges: dict[str, Any] = {}
    for metric in task.metrics():
        if not records:
            continue
        if getattr(metric, "needs_judge", False):
            if judge is None:
                skipped.append({"name": metric.name, "reason": "needs a judge model: pass --judge-backend"})
                continue
            bound = judge.for_task(store.task_dir(name), name)
            res = metric.score(records, judge=bound)
            judges[bound.id] = bound
        else:
            res = metric.score(records)
        entry: dict[str, Any] = {"name": res.name, "value": res.value, "signature": res.signature,
                                 "higher_is_better": res.higher_is_better}
        if res.per_sample is not None:
            if len(res.per_sample) != len(records):
                raise RuntimeError(f"metric {res.name} returned {len(res.per_sample)} values for {len(records)} records")
            scale = float(res.details.get("scale", 1.0)) if isinstance(res.details, Mapping) else 1.0
            vals = [v * scale for v in res.per_sample]
            se = stderr(vals)
            ci = bootstrap_ci(vals, seed=0)
            entry["stderr"] = se
            entry["ci95"] = list(ci) if ci else None
            per_sample_values[res.name] = res.per_sample
        elif isinstance(res.details, Mapping) and isinstance(res.details.get("ci95"), (list, tuple)):
            # Corpus-level metrics (BLEU, chrF) have no per-sample values; their own bootstrap CI (over
            # per-segment statistics) is the run's CI.
            entry["ci95"] = list(res.details["ci95"])
        if res.per_sample_stats is not None and len(res.per_sample_stats) == len(records):
            per_sample_stats[res.name] = res.per_sample_stats
        if res.details:
            entry["details"] = dict(res.details)
        metrics_out.append(entry)
    n_errors = sum("error" in r.flags for r in records)
    scores = {
        "task": name, "version": getattr(task, "version", "0"),
        "metrics": metrics_out,
        "main": metrics_out[0]["name"] if metrics_out else None,
        "value": metrics_out[0]["value"] if metrics_out else None,
        "n": len(records), "n_planned": n_planned, "n_missing": n_planned - len(records),
        "n_errors": n_errors,
        "n_truncated": sum("truncated" in r.flags for r in records),
        "n_unterminated_think": sum("unterminated_think" in r.flags for r in records),
        "scored_at": _now(),
    }
    backend_flags: dict[str, int] = {}
    for r in records:
        for f in r.generation.flags:
            backend_flags[f] = backend_flags.get(f, 0) + 1
    if backend_flags:  # e.g. prompt_reencoded (lmeval): answers whose prompt differs from the planned ids
        scores["backend_flags"] = dict(sorted(backend_flags.items()))
    if plan_doc.get("shard"):
        scores["shard"] = plan_doc["shard"]
    if skipped:
        scores["skipped_metrics"] = skipped
    if judges:
        scores["judge"] = [j.describe() for j in judges.values()]
    per_sample = []
    for i, (rec, ex) in enumerate(zip(records, extra)):
        per_sample.append({
            "sample_id": rec.sample.id, "index": rec.sample.index, "key": ex["key"],
            "prediction": rec.prediction, "flags": list(rec.flags),
            "error": rec.generation.error,
            "metrics": {m: (v[i] if v is not None else None) for m, v in per_sample_values.items()},
            "metadata": dict(rec.sample.metadata),
            **({"stats": {m: list(v[i]) for m, v in per_sample_stats.items()}} if per_sample_stats else {}),
        })
    store.write_scores(name, scores, per_sample)
    return scores


def rescore(store: ResultsStore, registry: Registry | None = None,
            judge_config: Any = None) -> dict[str, dict[str, Any]]:
    """Re-score every task of a run from its logs, without generating. The judge is ``judge_config``
    when given, else the one the run recorded (its cached verdicts are reused)."""
    from .judge import JudgeConfig, JudgeProvider

    registry = registry or default_registry()
    manifest = store.read_manifest()
    judge_config = judge_config or JudgeConfig.from_dict(manifest.get("judge"))
    judge = JudgeProvider(judge_config, registry) if judge_config is not None else None
    out = {}
    try:
        for name in store.tasks():
            entry = manifest.get("tasks", {}).get(name, {})
            task = registry.task(name).factory(**entry.get("options", {}))
            out[name] = score_task(store, name, task, judge=judge)
    finally:
        if judge is not None:
            judge.close()
    return out

