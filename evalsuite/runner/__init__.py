"""The runner: a thin orchestrator over the phases of a run, each its own module.

::

    validate  (evalsuite.validate)      every mistake in the command, before anything loads
    identity  (evalsuite.identity)      the run id; may an existing run resume with these settings?
    record    (runner.record)           the manifest: the run and each invocation, how it ended
    lock      (evalsuite.lock)          one writer per run folder
    plan      (runner.planning)         tasks prepared, samples selected, requests stamped and cut
    generate  (runner.generation)       every unanswered request, each answer logged as it arrives
    score     (runner.scoring)          the logs read back, scored, scores.json + per_sample.jsonl
    progress  (evalsuite.progress)      the bar or the periodic line while generating
    complete? (evalsuite.completeness)  the one definition of a partial run

Every file of the run folder is written through ``evalsuite.store`` (typed by ``evalsuite.rows``). Scoring
always reads back the samples log, so a resumed run, an uninterrupted run and ``evalsuite score`` take the
same path to the same numbers.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..contracts import Backend, PlanBound, PlanView, Timed, check_instance
from ..errors import UserError
from ..lock import RunLock
from ..redact import register_env_refs
from ..registry import Registry, default_registry
from ..rows import PlanDoc, TaskScores
from ..store import ResultsStore, check_output_root
from ..types import Generation
from .config import RunConfig, RunInterrupted, RunOutcome, now, parse_shard
from .generation import generate
from .planning import PlannedItem, apply_overrides, plan, shard_items, stamp, task_context
from .record import (announce, check_identity, check_resumable, end_invocation, invocation_manifest, is_scripted,
                     redact_options)
from .scoring import final_row, records_from_rows, score_task

_redact_options = redact_options  # the name tests and older code import


def build_backend(registry: Registry, cfg: RunConfig) -> Backend:
    """The run's backend: one instance, or a pool of Ray workers each holding one (``--workers``)."""
    from ..identity import backend_name

    name = backend_name(cfg.backend, cfg.model)
    if cfg.workers > 1 or cfg.ray_address:
        from ..executors.ray_pool import RayPool

        registry.backend(name)  # an unknown backend fails here, before Ray starts
        return RayPool(name, cfg.model, dict(cfg.backend_options), workers=cfg.workers,
                       address=cfg.ray_address)
    from ..backends import construct_backend

    return construct_backend(registry.backend(name), name, cfg.model, cfg.backend_options)


def _sweep_sandbox_scratch() -> None:
    """Remove code-sandbox scratch folders left by killed evalsuite processes (evalsuite.sandbox)."""
    from ..sandbox import sweep_stale

    sweep_stale()


def run(cfg: RunConfig, registry: Registry | None = None, backend: Backend | None = None,
        on_generation: Callable[[PlannedItem, Generation], None] | None = None) -> RunOutcome:
    """Run (or resume) an evaluation and score it.

    Order: validate everything that needs no model (``evalsuite.validate``), fix the run id (derived from
    the command unless ``cfg.run_id``) and check that an existing run may resume with these settings,
    build the backend and plan (data problems found while reading surface here), announce the run id and
    folder (stderr, terminal or not), then write, generate and score. A Ctrl-C at any point after the
    run id is fixed raises ``RunInterrupted`` carrying it."""
    from ..identity import derive_run_id, identity, selections as merged_selections
    from ..progress import Progress
    from ..validate import validate

    _sweep_sandbox_scratch()
    registry = registry or default_registry()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # secrets the options point at (api_key_env=NAME, env:NAME) are scrubbed from everything recorded
    register_env_refs(cfg.backend_options)
    register_env_refs(cfg.judge_options)
    validated = validate(cfg, registry, check_backend=backend is None)  # the output folder included
    timings["validate_s"] = time.perf_counter() - t0
    ident = identity(cfg, {name: str(task.version) for name, task in validated.tasks.items()})
    if backend is not None:
        check_instance(backend, "backend", cfg.backend or "(given)")
    scripted = is_scripted(backend if backend is not None else validated.backend_factory)
    run_id = cfg.run_id or derive_run_id(ident, scripted)
    store = ResultsStore(cfg.output, run_id)
    found = store.read_manifest()
    if found:  # refused before the lock is taken: a refused command leaves the run untouched
        check_identity(run_id, found, ident, registry, validated)
    # one writer per run folder, taken before minutes are spent loading a model
    lock = RunLock(store.dir, "run", wait=cfg.wait_lock, command=cfg.command).acquire()
    try:
        existing = store.read_manifest()  # again, under the lock: another writer may have just finished
        if existing:
            check_identity(run_id, existing, ident, registry, validated)
        sels = merged_selections(existing, cfg.limit, cfg.samples)
    except BaseException:
        lock.release()
        raise

    own_backend = backend is None
    judge_cfg = cfg.judge_config()
    judge = None
    manifest: dict[str, Any] | None = None
    invocation: dict[str, Any] | None = None
    try:
        t_load = time.perf_counter()
        if backend is None:
            backend = build_backend(registry, cfg)
        timings["backend_load_s"] = time.perf_counter() - t_load
        t1 = time.perf_counter()
        tasks, items, entries = plan(registry, cfg, backend, validated=validated, selections=sels)
        timings["plan_s"] = time.perf_counter() - t1

        # before anything is written: a backend that checks its inputs against the plan (replay) fails here
        if isinstance(backend, PlanBound):
            partial = frozenset(  # tasks that may run a subset of their samples
                name for name in tasks if cfg.limit is not None or cfg.samples or entries[name]["options"])
            backend.bind(PlanView(tasks, {(it.task, it.sample.id): it.sample for it in items}, partial))

        all_keys = {name: [it.key for it in items if it.task == name] for name in tasks}
        if cfg.shard is not None:
            items = shard_items(items, *cfg.shard)

        check_resumable(existing, backend.id, entries)
        shard = {"index": cfg.shard[0], "count": cfg.shard[1]} if cfg.shard is not None else None
        if existing and existing.get("shard") != shard:
            raise UserError(f"run {run_id!r} was made with shard {existing.get('shard')}, not {shard}; "
                            f"use a new --run-id")
        # Everything that can be wrong with the command has been said by now (one line each, exit 2): the
        # run id and folder come next, before anything is written or generated.
        announce(run_id, store.dir, existing)
        if judge_cfg is None and existing.get("judge"):
            from ..judge import JudgeConfig

            judge_cfg = JudgeConfig.from_dict(existing["judge"])  # a resumed run keeps its judge
        manifest, invocation = invocation_manifest(existing, run_id, cfg, ident, sels, backend, validated.backend,
                                         scripted, entries, judge_cfg, shard)
        store.write_manifest(manifest)
        for name in tasks:
            keys = tuple(it.key for it in items if it.task == name)
            store.write_plan(PlanDoc(name, keys, shard, tuple(all_keys[name]) if shard is not None else None))

        t2 = time.perf_counter()
        n_generated, n_reused = generate(store, backend, tasks, items, cfg, on_generation,
                                         Progress.auto(cfg.progress))
        timings["generate_s"] = time.perf_counter() - t2
        if isinstance(backend, Timed):
            # per-phase figures a backend measures itself (engine load, prefill/decode throughput,
            # prefix-cache hit rate), recorded with this invocation
            invocation["backend_timings"] = backend.timings()

        t3 = time.perf_counter()
        if judge_cfg is not None:
            from ..judge import JudgeProvider

            judge = JudgeProvider(judge_cfg, registry)
        scores = {name: score_task(store, name, tasks[name], judge=judge) for name in tasks}
        timings["score_s"] = time.perf_counter() - t3
        timings["total_s"] = time.perf_counter() - t0

        complete = all(s.n_missing == 0 and s.n_errors == 0 for s in scores.values())
        invocation.update({"ended": now(), "status": "complete" if complete else "partial",
                           "n_generated": n_generated, "n_reused": n_reused, "timings": timings})
        manifest["updated"] = now()
        store.write_manifest(manifest)
        return RunOutcome(str(store.dir), run_id, scores, n_generated, n_reused, timings, complete)
    except KeyboardInterrupt:
        end_invocation(store, manifest, invocation, "interrupted")
        raise RunInterrupted(run_id, str(store.dir)) from None
    except BaseException as exc:
        end_invocation(store, manifest, invocation, "error", exc)
        raise
    finally:
        try:
            if own_backend and backend is not None:
                backend.close()
            if judge is not None:
                judge.close()
        finally:
            lock.release()


def rescore(store: ResultsStore, registry: Registry | None = None,
            judge_config: Any = None, wait_lock: bool = False) -> dict[str, TaskScores]:
    """Re-score every task of a run from its logs, without generating. The judge is ``judge_config``
    when given, else the one the run recorded (its cached verdicts are reused). Holds the run folder's
    lock (``evalsuite.lock``) while it writes."""
    check_output_root(store.dir, "run folder")
    with RunLock(store.dir, "score", wait=wait_lock):
        return _rescore(store, registry, judge_config)


def _rescore(store: ResultsStore, registry: Registry | None, judge_config: Any) -> dict[str, TaskScores]:
    from ..judge import JudgeConfig, JudgeProvider

    _sweep_sandbox_scratch()
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


__all__ = ["PlannedItem", "RunConfig", "RunInterrupted", "RunOutcome", "apply_overrides", "build_backend",
           "final_row", "parse_shard", "plan", "records_from_rows", "rescore", "run", "score_task", "shard_items",
           "stamp", "task_context"]
