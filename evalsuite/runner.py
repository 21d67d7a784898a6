"""The runner: plan every request of every selected task, skip what is done, generate in large batches
persisting each finished generation before going on, then score.

Scoring always reads back the samples log, so a resumed run, an uninterrupted run and
``evalsuite score`` take the same path to the same numbers.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import __version__
from .datafiles import data_errors, guarded
from .errors import UserError
from .lock import RunLock
from .manifest import environment_info
from .reasoning import split_reasoning
from .redact import redact_argv, redact_obj, redact_text, register_env_refs
from .registry import Registry, default_registry
from .store import (SAMPLES, ResultsStore, atomic_write_json, check_output_root, is_scorable_row, skipped_lines,
                    valid_text)
from .task import TaskContext
from .contracts import (Backend, Batched, TruncationPolicy, ModelInfo, MultiPass, PlanBound, PlanView, ScoreContext, Scripted, Timed,
                        Tokenized, Truncating, check_instance)
from .metrics import needs_judge, score_metric
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
    gen_overrides: dict[str, Any] = field(default_factory=dict)
    """Generation parameters for every request of every task (``--temperature``, ``--top-p``, ``--seed``,
    ``--gen-kwargs``): GenParams field -> value, applied like ``max_tokens`` and recorded."""
    progress: bool = True
    """A progress bar on a terminal, periodic log lines otherwise (``evalsuite.progress``); False: none."""
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
    wait_lock: bool = False
    """Wait for another process that holds the run folder instead of failing at once (``evalsuite.lock``)."""

    def overrides(self) -> dict[str, Any]:
        """Every generation override: ``gen_overrides`` plus ``max_tokens``."""
        out = dict(self.gen_overrides)
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out

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
    complete: bool = True
    """Every planned sample of the selected tasks has an answer and none failed (``evalsuite.completeness``)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, carrying where the run lives so the message can say how to resume it."""

    def __init__(self, run_id: str, run_dir: str):
        super().__init__(run_id)
        self.run_id = run_id
        self.run_dir = run_dir


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _split_task_options(registry: Registry, names: Sequence[str],
                        options: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Give each task the ``-T`` options it declares (``evalsuite.taskopts``: global, group, task levels)."""
    from .taskopts import route_task_options

    return route_task_options(registry, names, options)


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


def _checked_generation(gen: Any) -> tuple[Generation, list[str]]:
    """A backend's answer made safe to store and reuse: a text that is not a string (a replay file's
    ``123``, a plugin's ``None``) becomes a per-request error, and a text that is not valid Unicode (a
    lone surrogate from a replay file or a server's JSON) is repaired. Returns (generation, repaired
    fields)."""
    if not isinstance(gen, Generation):
        return Generation.failed(f"backend returned {type(gen).__name__}, not a Generation"), []
    if not isinstance(gen.text, str):
        kind = "null" if gen.text is None else type(gen.text).__name__
        return replace(gen, text="", finish_reason="error",
                       error=f"backend returned a text that is {kind}, not text"), []
    text, repaired = valid_text(gen.text)
    if not repaired:
        return gen, []
    return replace(gen, text=text), ["generation.text"]


def _row_for(item: PlannedItem, gen: Generation, backend_id: str, next_key: str | None,
             repaired: Sequence[str] = ()) -> dict[str, Any]:
    req = item.request
    s = item.sample
    extra = {"repaired": list(repaired)} if repaired else {}
    return {
        "key": item.key, "task": item.task, "sample_id": s.id, "index": s.index,
        "stage": item.stage, "parent": item.parent, "next": next_key,
        "prompt_sha256": req.prompt_hash(), "prompt_chars": req.prompt_chars(),
        "prompt_tokens": gen.prompt_tokens, "truncated": req.truncated,
        "params": req.params.to_dict(), "backend": backend_id,
        "sample": {"target": s.target, "metadata": dict(s.metadata)},
        "generation": {**gen.to_dict(), "error": redact_text(gen.error) if gen.error else gen.error},
        "time": _now(), **extra,
    }


class _Selection:
    """One invocation's choice of samples (``--limit``, ``--samples``); see ``identity.selections``."""

    def __init__(self, limit: int | None, samples: Sequence[str] | None):
        self.limit = limit
        self.filtered = bool(samples)
        self.ids, self.positions = _parse_sample_filter(samples or [])
        self.taken = 0

    def offer(self, task: str, s: Sample) -> bool:
        if self.filtered and s.id not in self.ids and (task, s.index) not in self.positions:
            return False
        if self.limit is not None and self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.taken >= self.limit


def _select(name: str, stream: Iterable[Sample], selections: Sequence[Mapping[str, Any]]) -> Iterable[Sample]:
    """The samples any selection takes, in stream order; stops reading once every selection is full
    (a synthetic task builds each sample on demand, so reading past the limit costs)."""
    sels = [_Selection(sel.get("limit"), sel.get("samples")) for sel in selections]
    for s in stream:
        took = False
        for sel in sels:
            took = sel.offer(name, s) or took
        if took:
            yield s
        if all(sel.exhausted for sel in sels):
            return


def task_context(backend: Backend, cfg: RunConfig) -> TaskContext:
    """What tasks may know about the run before they build samples, from what the backend declares
    (``Tokenized``: tokenizer and window; ``ModelInfo``: the model's name and how to give a tokenizer)."""
    tok = backend.tokenizer if isinstance(backend, Tokenized) else None
    window = backend.max_model_len if isinstance(backend, Tokenized) else None
    info = backend if isinstance(backend, ModelInfo) else None
    hint = {"tokenizer_hint": info.tokenizer_hint} if info is not None and isinstance(info.tokenizer_hint, str) else {}
    model = (info.model_name if info is not None and info.model_name else None) or cfg.model
    return TaskContext(tokenizer=tok, max_model_len=window, model=model, **hint)


def stamp(req: Request, task: str, sample: Sample) -> Request:
    """The request with its identity: the task, the sample id and index (tasks leave them to the runner)."""
    return req.stamped(task, sample.id, sample.index)


def apply_overrides(req: Request, overrides: Mapping[str, Any]) -> Request:
    """The request with the run's generation overrides (``--max-tokens``, ``--temperature``, ...)."""
    if not overrides:
        return req
    return replace(req, params=replace(req.params, **dict(overrides)))


def plan(registry: Registry, cfg: RunConfig, backend: Any, validated: Any = None,
         selections: Sequence[Mapping[str, Any]] | None = None) -> tuple[dict[str, Any], list[PlannedItem], dict[str, Any]]:
    """Instantiate tasks, build samples and requests. Returns (tasks, items, task manifest entries).

    ``validated`` (``evalsuite.validate.Validated``) gives the task names, options and instances already
    checked; ``selections`` the run's sample selections (default: this config's ``--limit``/``--samples``)."""
    if validated is None:
        from .validate import Validated

        names = registry.expand_tasks(cfg.tasks)
        if not names:
            raise UserError("no tasks selected (--tasks)")
        validated = Validated(names=names, task_options=_split_task_options(registry, names, cfg.task_options))
        from .validate import _check_samples

        _check_samples(names, cfg.samples)
    names, opts = validated.names, validated.task_options
    if selections is None:
        selections = [{"limit": cfg.limit, "samples": cfg.samples}]
    overrides = cfg.overrides()
    ctx = task_context(backend, cfg)
    tasks: dict[str, Any] = {}
    items: list[PlannedItem] = []
    entries: dict[str, Any] = {}
    truncation_counts: dict[str, int] = {}
    for name in names:
        task = validated.tasks.get(name) or registry.task(name).factory(**opts[name])
        with data_errors(name):  # task data is untrusted: a malformed file is one line and exit 2
            task.prepare(ctx)
        tasks[name] = task
        stream: Iterable[Sample] = guarded(name, _select(name, task.samples(), selections))
        seen: set[str] = set()
        policy = task.truncation() if isinstance(task, Truncating) else None
        prompt_hashes = []
        n_trunc = 0
        for s in stream:
            if s.id in seen:
                raise UserError(f"{name}: duplicate sample id {s.id!r} in the task's data")
            seen.add(s.id)
            with data_errors(name):
                req = stamp(task.request(s), name, s)
            req = apply_overrides(req, overrides)
            if policy is not None and ctx.tokenizer is not None:
                req = policy.apply(req, ctx.tokenizer)
                n_trunc += req.truncated
            prompt_hashes.append(req.prompt_hash())
            items.append(PlannedItem(name, s, req, req.key(backend.id)))
        truncation_counts[name] = n_trunc
        params = {canonical_json(it.request.params.to_dict()) for it in items if it.task == name}
        entries[name] = {
            "version": task.version,
            "options": dict(opts[name]),
            "describe": task.describe(),
            "n_planned": len(seen),
            "n_truncated": n_trunc,
            "prompts_sha256": sha256_text("\n".join(prompt_hashes)),
            "generation_params": [json.loads(p) for p in sorted(params)],
            "truncation": _describe_policy(policy),
            "chat_template": task.opts.get("chat_template", None),
        }
    return tasks, items, entries


def _describe_policy(policy: TruncationPolicy | None) -> dict[str, Any] | None:
    return policy.describe() if policy is not None else None


def _is_scripted(backend: Any) -> bool:
    """A backend (or backend class) whose answers come from a script (``contracts.Scripted``)."""
    return isinstance(backend, Scripted) and bool(backend.scripted)


def _redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """Backend or judge options as recorded (``evalsuite.redact``: URL credentials, credential-named
    fields and query parameters, known secret values)."""
    return redact_obj(dict(options))


def _check_resumable(existing: Mapping[str, Any], backend_id: str, entries: Mapping[str, Any]) -> None:
    old_backend = existing.get("backend", {}).get("id")
    if old_backend and old_backend not in (backend_id, redact_text(backend_id)):  # recorded ids are redacted
        raise UserError(f"run {existing.get('run_id')!r} was made with backend {old_backend!r}, not "
                        f"{backend_id!r}; use a new --run-id")
    for name, e in entries.items():
        old = existing.get("tasks", {}).get(name)
        if old and str(old.get("version")) != str(e["version"]):
            raise UserError(f"run {existing.get('run_id')!r} has {name} version {old.get('version')}, "
                            f"this evalsuite has {e['version']}; use a new --run-id")


def _sweep_sandbox_scratch() -> None:
    """Remove code-sandbox scratch folders left by killed evalsuite processes (evalsuite.sandbox)."""
    from .sandbox import sweep_stale

    sweep_stale()


def _check_identity(run_id: str, existing: Mapping[str, Any], ident: Mapping[str, Any], registry: Registry,
                    validated: Any) -> None:
    """An existing run resumes only with the same prompts and generation: list what differs, exit 2."""
    from .identity import differences, task_option_differences

    problems = differences(existing["identity"], ident) if isinstance(existing.get("identity"), Mapping) else []
    problems += task_option_differences(registry, existing.get("tasks", {}), validated.names,
                                        validated.task_options)
    if problems:
        raise UserError(f"run {run_id!r} exists with other settings that change prompts or generation: "
                        f"{'; '.join(problems)}. Nothing was changed; use a new --run-id (or drop --run-id "
                        f"to get one derived from the command)")


def _announce(run_id: str, run_dir: Any, existing: Mapping[str, Any]) -> None:
    """The first line of every run, on stderr whether or not it is a terminal."""
    state = "resuming" if existing else "new"
    print(f"evalsuite: run {run_id} ({state}) in {run_dir}", file=sys.stderr, flush=True)


def _end_invocation(store: ResultsStore, manifest: dict[str, Any] | None, invocation: dict[str, Any] | None,
                    status: str, error: BaseException | None = None) -> None:
    """Record how an invocation ended (interrupted, error) in the manifest, best effort."""
    if manifest is None or invocation is None or invocation.get("status") != "running":
        return
    invocation.update({"ended": _now(), "status": status})
    if error is not None:
        text = f"{type(error).__name__}: {error}".strip()
        invocation["error"] = text if len(text) <= 500 else text[:500] + "..."
    manifest["updated"] = _now()
    try:
        store.write_manifest(manifest)
    except Exception:  # the original error matters more than a failed bookkeeping write
        pass


def run(cfg: RunConfig, registry: Registry | None = None, backend: Any = None,
        on_generation: Callable[[PlannedItem, Generation], None] | None = None) -> RunOutcome:
    """Run (or resume) an evaluation and score it.

    Order: validate everything that needs no model (``evalsuite.validate``), fix the run id (derived from
    the command unless ``cfg.run_id``) and check that an existing run may resume with these settings,
    build the backend and plan (data problems found while reading surface here), announce the run id and
    folder (stderr, terminal or not), then write, generate and score. A Ctrl-C at any point after the
    run id is fixed raises ``RunInterrupted`` carrying it."""
    from .identity import derive_run_id, identity, selections as merged_selections
    from .progress import Progress
    from .validate import validate

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
    scripted = _is_scripted(backend if backend is not None else validated.backend_factory)
    run_id = cfg.run_id or derive_run_id(ident, scripted)
    store = ResultsStore(cfg.output, run_id)
    if store.read_manifest():  # refused before the lock is taken: a refused command leaves the run untouched
        _check_identity(run_id, store.read_manifest(), ident, registry, validated)
    # one writer per run folder, taken before minutes are spent loading a model
    lock = RunLock(store.dir, "run", wait=cfg.wait_lock, command=cfg.command).acquire()
    try:
        existing = store.read_manifest()  # again, under the lock: another writer may have just finished
        if existing:
            _check_identity(run_id, existing, ident, registry, validated)
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

        _check_resumable(existing, backend.id, entries)
        shard = {"index": cfg.shard[0], "count": cfg.shard[1]} if cfg.shard is not None else None
        if existing and existing.get("shard") != shard:
            raise UserError(f"run {run_id!r} was made with shard {existing.get('shard')}, not {shard}; "
                            f"use a new --run-id")
        # Everything that can be wrong with the command has been said by now (one line each, exit 2): the
        # run id and folder come next, before anything is written or generated.
        _announce(run_id, store.dir, existing)
        if judge_cfg is None and existing.get("judge"):
            from .judge import JudgeConfig

            judge_cfg = JudgeConfig.from_dict(existing["judge"])  # a resumed run keeps its judge
        manifest = dict(existing) if existing else {
            "run_id": run_id, "created": _now(), **environment_info()}
        manifest.update({
            "evalsuite_version": __version__,
            "identity": ident,
            "selections": sels,
            "backend": {"id": backend.id, "options": _redact_options(cfg.backend_options), "model": cfg.model,
                        "name": validated.backend, "scripted": scripted, "describe": backend.describe()},
            "tasks": {**manifest.get("tasks", {}), **entries},
            "updated": _now(),
        })
        if judge_cfg is not None:
            manifest["judge"] = {**judge_cfg.to_dict(), "options": _redact_options(judge_cfg.options)}
        if shard is not None:
            manifest["shard"] = shard
        invocation = {"started": _now(), "command": redact_argv(cfg.command), "status": "running",
                      "limit": cfg.limit, "samples": cfg.samples, "max_tokens_override": cfg.max_tokens,
                      "generation_overrides": cfg.overrides()}
        manifest.setdefault("invocations", []).append(invocation)
        store.write_manifest(manifest)
        for name in tasks:
            plan_doc: dict[str, Any] = {"task": name, "keys": [it.key for it in items if it.task == name]}
            if shard is not None:
                plan_doc.update({"shard": shard, "all_keys": all_keys[name]})
            atomic_write_json(store.task_dir(name) / "plan.json", plan_doc)

        t2 = time.perf_counter()
        progress = Progress.auto(cfg.progress)
        n_generated, n_reused = _generate(store, backend, tasks, items, cfg, on_generation, progress)
        timings["generate_s"] = time.perf_counter() - t2
        if isinstance(backend, Timed):
            # per-phase figures a backend measures itself (engine load, prefill/decode throughput,
            # prefix-cache hit rate), recorded with this invocation
            invocation["backend_timings"] = backend.timings()

        t3 = time.perf_counter()
        if judge_cfg is not None:
            from .judge import JudgeProvider

            judge = JudgeProvider(judge_cfg, registry)
        scores = {name: score_task(store, name, tasks[name], judge=judge) for name in tasks}
        timings["score_s"] = time.perf_counter() - t3
        timings["total_s"] = time.perf_counter() - t0

        complete = all(s.get("n_missing", 0) == 0 and s.get("n_errors", 0) == 0 for s in scores.values())
        invocation.update({"ended": _now(), "status": "complete" if complete else "partial",
                           "n_generated": n_generated, "n_reused": n_reused, "timings": timings})
        manifest["updated"] = _now()
        store.write_manifest(manifest)
        return RunOutcome(str(store.dir), run_id, scores, n_generated, n_reused, timings, complete)
    except KeyboardInterrupt:
        _end_invocation(store, manifest, invocation, "interrupted")
        raise RunInterrupted(run_id, str(store.dir)) from None
    except BaseException as exc:
        _end_invocation(store, manifest, invocation, "error", exc)
        raise
    finally:
        try:
            if own_backend and backend is not None:
                backend.close()
            if judge is not None:
                judge.close()
        finally:
            lock.release()


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
               overrides: Mapping[str, Any] | None) -> PlannedItem | None:
    """The sample's next pass, when its task has one (multi-pass protocols such as CoT-then-answer).

    Generation overrides (``--max-tokens``, ``--temperature``, ...) apply to every pass; a task's
    truncation policy applies to the first pass only (follow-ups are built from the task's own short
    templates).
    """
    if not isinstance(task, MultiPass) or not gen.ok:
        return None
    history = item.history + ((item.request, gen),)
    req = task.next_request(item.sample, list(history))
    if req is None:
        return None
    req = apply_overrides(stamp(req, item.task, item.sample), overrides or {})
    return PlannedItem(item.task, item.sample, req, req.key(backend_id), stage=item.stage + 1,
                       parent=item.key, history=history)


def _generate(store: ResultsStore, backend: Any, tasks: Mapping[str, Any], items: list[PlannedItem],
              cfg: RunConfig, on_generation: Callable[[PlannedItem, Generation], None] | None,
              progress: Any = None) -> tuple[int, int]:
    """Generate every request not yet answered, pass by pass. Returns (generated, reused)."""
    from .progress import Progress

    latest = {name: store.latest_rows(name) for name in tasks}
    progress = progress if progress is not None else Progress("off")
    n_generated = n_reused = 0
    frontier = items
    try:
        while frontier:
            pending: list[PlannedItem] = []
            follow: list[PlannedItem] = []
            for it in frontier:
                row = latest[it.task].get(it.key)
                if row is not None and row["generation"]["finish_reason"] != "error" \
                        and "text" in row["generation"]:
                    n_reused += 1
                    nxt = _follow_up(tasks[it.task], it, Generation.from_dict(row["generation"]), backend.id,
                                     cfg.overrides())
                    if nxt is not None:
                        follow.append(nxt)
                else:
                    pending.append(it)
            if isinstance(backend, Batched) and backend.sort_by_length:
                pending.sort(key=lambda it: -(len(it.request.prompt_ids) if it.request.prompt_ids is not None
                                              else it.request.prompt_chars()))
            progress.grow(len(pending))
            for item, gen in _run_backend(backend, pending):
                gen, repaired = _checked_generation(gen)
                nxt = _follow_up(tasks[item.task], item, gen, backend.id, cfg.overrides())
                row = _row_for(item, gen, backend.id, nxt.key if nxt is not None else None, repaired)
                prompts = []
                if cfg.log_prompts:
                    prompts.append({"key": item.key, "sample_id": item.sample.id, "stage": item.stage,
                                    "prompt_sha256": row["prompt_sha256"], "prompt": item.request.prompt_payload(),
                                    "prompt_ids": list(item.request.prompt_ids) if item.request.prompt_ids else None})
                store.append(item.task, [row], prompts)
                n_generated += 1
                progress.advance(item.task, gen)
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
    from .backends import iterate

    for pos, gen in iterate(backend, [it.request for it in pending]):
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
        if row.get("repaired"):
            flags.append("repaired")
        if gen.finish_reason == "length":
            flags.append("output_truncated")  # the answer was cut at max_tokens (or the context limit)
        flags.extend(f for f in gen.flags if f not in flags)
        records.append(Record(sample=s, prediction=prediction, generation=gen, flags=tuple(flags)))
        extra.append({"key": row["key"]})
    return records, extra


def final_row(latest: Mapping[str, dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Follow a sample's passes from its first request to the last; None while a pass is missing."""
    row = latest.get(key)
    seen = set()
    while row is not None and row.get("next") and row["generation"]["finish_reason"] != "error":
        if row["key"] in seen:  # pragma: no cover - a cycle would be a bug in a task
            raise RuntimeError(f"request chain loops at {row['key']}")
        seen.add(row["key"])
        row = latest.get(row["next"])
    return row


_final_row = final_row  # the old private name


def _rows_in_plan(store: ResultsStore, name: str) -> list[dict[str, Any]]:
    """The final-pass row of every planned sample that has one."""
    latest = store.latest_rows(name)
    plan_path = store.task_dir(name) / "plan.json"
    if plan_path.exists():
        keys = json.loads(plan_path.read_text())["keys"]
    else:
        keys = [k for k, r in latest.items() if not r.get("stage")]
    # a final row scoring cannot read (hand-edited, another version's) counts as missing
    rows = [r for r in (final_row(latest, k) for k in keys) if r is not None and is_scorable_row(r)]
    rows.sort(key=lambda r: r["index"])
    return rows


def score_task(store: ResultsStore, name: str, task: Any, judge: Any = None) -> dict[str, Any]:
    """Score one task from its samples log and write scores.json + per_sample.jsonl.

    ``judge`` (a :class:`evalsuite.judge.JudgeProvider`) serves metrics that declare ``NeedsJudge``; without
    one they are skipped and listed under ``skipped_metrics``."""
    from .completeness import log_bytes, plan_sha256

    size = log_bytes(store, name)  # before reading: a later append makes these scores stale
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
    options = dict(task.opts)
    for metric in task.metrics():
        if not records:
            continue
        ctx = ScoreContext(task=name, options=options)
        if needs_judge(metric):
            if judge is None:
                skipped.append({"name": metric.name, "reason": "needs a judge model: pass --judge-backend"})
                continue
            bound = judge.for_task(store.task_dir(name), name)
            ctx = ScoreContext(task=name, judge=bound, options=options)
            judges[bound.id] = bound
        res = score_metric(metric, records, ctx)
        if res.per_sample is not None:
            if len(res.per_sample) != len(records):
                raise RuntimeError(f"metric {res.name} returned {len(res.per_sample)} values for {len(records)} records")
            per_sample_values[res.name] = res.per_sample
        # stderr and the bootstrap CI over the scaled per-sample values; a corpus metric (BLEU, chrF) brings
        # its own CI over per-segment statistics
        res = res.with_stats(seed=0)
        if res.per_sample_stats is not None and len(res.per_sample_stats) == len(records):
            per_sample_stats[res.name] = res.per_sample_stats
        metrics_out.append(res.to_dict())
    n_errors = sum("error" in r.flags for r in records)
    scores = {
        "task": name, "version": task.version,
        "metrics": metrics_out,
        "main": metrics_out[0]["name"] if metrics_out else None,
        "value": metrics_out[0]["value"] if metrics_out else None,
        "n": len(records), "n_planned": n_planned, "n_missing": n_planned - len(records),
        "n_errors": n_errors,
        "n_truncated": sum("truncated" in r.flags for r in records),
        "n_output_truncated": sum("output_truncated" in r.flags for r in records),
        "n_unterminated_think": sum("unterminated_think" in r.flags for r in records),
        "n_skipped_log_lines": skipped_lines(store.task_dir(name) / SAMPLES),
        "complete": n_planned == len(records) and n_errors == 0,
        "plan_sha256": plan_sha256(plan_doc["keys"]) if plan_doc else None,
        "log_bytes": size,
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
            judge_config: Any = None, wait_lock: bool = False) -> dict[str, dict[str, Any]]:
    """Re-score every task of a run from its logs, without generating. The judge is ``judge_config``
    when given, else the one the run recorded (its cached verdicts are reused). Holds the run folder's
    lock (``evalsuite.lock``) while it writes."""
    check_output_root(store.dir, "run folder")
    with RunLock(store.dir, "score", wait=wait_lock):
        return _rescore(store, registry, judge_config)


def _rescore(store: ResultsStore, registry: Registry | None, judge_config: Any) -> dict[str, dict[str, Any]]:
    from .judge import JudgeConfig, JudgeProvider

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

