"""Planning: every task prepared with what the backend declares, its samples selected, one request per sample
stamped with its identity, the run's generation overrides applied and the task's truncation policy run;
plus the manifest entry of each task and the shard slices.

Nothing is written and nothing generated here; the orchestrator (``evalsuite.runner.run``) writes the plan
(``plan.json``) once every check has passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from ..contracts import Backend, ModelInfo, Task, Tokenized, Truncating, TruncationPolicy
from ..datafiles import data_errors, guarded
from ..errors import UserError
from ..registry import Registry
from ..task import TaskContext
from ..types import Generation, Request, Sample, canonical_json, sha256_text
from .config import RunConfig


@dataclass
class PlannedItem:
    task: str
    sample: Sample
    request: Request
    key: str
    stage: int = 0
    """0 for a sample's first request; n for the n-th follow-up (``MultiPass.next_request``)."""
    parent: str | None = None
    """Key of the request whose answer this one follows up."""
    history: tuple[tuple[Request, Generation], ...] = ()
    """Earlier passes of this sample, oldest first."""


def split_task_options(registry: Registry, names: Sequence[str],
                       options: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Give each task the ``-T`` options it declares (``evalsuite.taskopts``: global, group, task levels)."""
    from ..taskopts import route_task_options

    return route_task_options(registry, names, options)


def parse_sample_filter(entries: Sequence[str]) -> tuple[set[str], set[tuple[str, int]]]:
    """``--samples`` entries: sample ids, and ``<task>:<index>`` positions."""
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


class _Selection:
    """One invocation's choice of samples (``--limit``, ``--samples``); see ``identity.selections``."""

    def __init__(self, limit: int | None, samples: Sequence[str] | None):
        self.limit = limit
        self.filtered = bool(samples)
        self.ids, self.positions = parse_sample_filter(samples or [])
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


def select(name: str, stream: Iterable[Sample], selections: Sequence[Mapping[str, Any]]) -> Iterable[Sample]:
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


def plan(registry: Registry, cfg: RunConfig, backend: Backend, validated: Any = None,
         selections: Sequence[Mapping[str, Any]] | None = None
         ) -> tuple[dict[str, Task], list[PlannedItem], dict[str, Any]]:
    """Instantiate tasks, build samples and requests. Returns (tasks, items, task manifest entries).

    ``validated`` (``evalsuite.validate.Validated``) gives the task names, options and instances already
    checked; ``selections`` the run's sample selections (default: this config's ``--limit``/``--samples``)."""
    if validated is None:
        from ..validate import Validated, check_samples

        names = registry.expand_tasks(cfg.tasks)
        if not names:
            raise UserError("no tasks selected (--tasks)")
        validated = Validated(names=names, task_options=split_task_options(registry, names, cfg.task_options))
        check_samples(names, cfg.samples)
    names, opts = validated.names, validated.task_options
    if selections is None:
        selections = [{"limit": cfg.limit, "samples": cfg.samples}]
    overrides = cfg.overrides()
    ctx = task_context(backend, cfg)
    tasks: dict[str, Task] = {}
    items: list[PlannedItem] = []
    entries: dict[str, Any] = {}
    for name in names:
        task = validated.tasks.get(name) or registry.task(name).factory(**opts[name])
        with data_errors(name):  # task data is untrusted: a malformed file is one line and exit 2
            task.prepare(ctx)
        tasks[name] = task
        stream: Iterable[Sample] = guarded(name, select(name, task.samples(), selections))
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


__all__ = ["PlannedItem", "apply_overrides", "parse_sample_filter", "plan", "select", "shard_items",
           "split_task_options", "stamp", "task_context"]
