"""Run identity: what defines a run, the run id derived from it, and what may change when a run resumes.

Without ``--run-id`` the id is derived from what defines the run (tasks as given and their versions, their
options, the backend and model, the backend options that can change an answer, generation overrides,
``--limit``, ``--samples`` and ``--shard``), as ``<model>-<tasks>-<8 hex digits>``: the same command resumes the
same run, a different command gets a different run.

With an explicit ``--run-id`` that already exists, anything that changes prompts or generation (task
options, backend, model, identity-relevant backend options, generation overrides, shard) is refused
with the list of differences; ``--limit`` / ``--samples`` may change and extend the run's plan (the
union of every invocation's selection is planned and scored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from .types import canonical_json, sha256_text

NON_IDENTITY_OPTIONS = frozenset({
    "batch_size", "concurrency", "timeout", "idle_timeout", "max_retries", "backoff", "threads", "delay",
    "base_url", "api_key_env", "check_model", "max_response_bytes",
})
"""Backend options that change how fast or where answers come, not what they are: they stay out of the
derived run id, so that resuming with another batch size or server address continues the same run."""

SLUG_NAMES = {"embedded": "smollm2-135m-instruct"}
"""Model slug for backends that run a fixed model without ``--model``."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int) -> str:
    s = _UNSAFE.sub("-", text).strip("-._").lower()
    s = re.sub(r"-{2,}", "-", s)
    return s[:limit].strip("-._")


def backend_name(backend: str | None, model: str | None) -> str:
    """The backend a run uses: ``--backend``, else ``embedded`` without ``--model`` and ``hf`` with one."""
    return backend or ("hf" if model else "embedded")


def identity(cfg: Any, versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What defines a run (``RunConfig`` in), as recorded in ``manifest.json`` ``identity``. ``versions``
    (task -> version) makes a new task version a new derived run, not a refused resume."""
    backend = backend_name(cfg.backend, cfg.model)
    tasks = sorted({t.strip() for t in cfg.tasks if t.strip()})
    gen = cfg.overrides()
    return {
        "tasks": tasks,
        "task_options": dict(sorted(cfg.task_options.items())),
        "backend": backend,
        "model": cfg.model,
        "backend_options": {k: v for k, v in sorted(cfg.backend_options.items()) if k not in NON_IDENTITY_OPTIONS},
        "generation": dict(sorted(gen.items())),
        "limit": cfg.limit,
        "samples": sorted(cfg.samples) if cfg.samples else None,
        "shard": list(cfg.shard) if cfg.shard is not None else None,
        "task_versions": dict(sorted((versions or {}).items())),
    }


def _model_slug(ident: Mapping[str, Any], scripted: bool) -> str:
    model, backend = ident.get("model"), str(ident.get("backend"))
    if scripted or not model:
        return SLUG_NAMES.get(backend, _slug(backend, 24) or "run")
    m = str(model).rstrip("/\\")
    return _slug(Path(m).name or m, 32) or _slug(backend, 24)


def _tasks_slug(tasks: Sequence[str]) -> str:
    if not tasks:
        return "tasks"
    first = _slug(tasks[0].replace("/", "-"), 40)
    return first if len(tasks) == 1 else f"{first}-and-{len(tasks) - 1}-more"


def derive_run_id(ident: Mapping[str, Any], scripted: bool = False) -> str:
    """``<model>-<tasks>-<hash>``; the hash covers the whole identity, the readable parts are a hint (tasks
    in sorted order, so ``--tasks b,a`` is the same run as ``--tasks a,b``)."""
    digest = sha256_text(canonical_json(dict(ident)))[:8]
    return f"{_model_slug(ident, scripted)}-{_tasks_slug(list(ident.get('tasks') or []))}-{digest}"


def _show(v: Any) -> str:
    return "(none)" if v is None or v == {} or v == [] else (v if isinstance(v, str) else canonical_json(v))


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What changes prompts or generation between two identities (``--limit``/``--samples`` excluded;
    task options are compared per task by :func:`task_option_differences`)."""
    out = []
    for key, label in (("backend", "backend"), ("model", "model"), ("shard", "shard")):
        if old.get(key) != new.get(key):
            out.append(f"{label}: {_show(old.get(key))} -> {_show(new.get(key))}")
    for key, label in (("backend_options", "backend option"), ("generation", "generation parameter"),
                       ("task_versions", "task version")):
        a, b = dict(old.get(key) or {}), dict(new.get(key) or {})
        keys = set(a) & set(b) if key == "task_versions" else set(a) | set(b)  # other tasks may join a run
        for k in sorted(keys):
            if a.get(k) != b.get(k):
                out.append(f"{label} {k}: {_show(a.get(k))} -> {_show(b.get(k))}")
    return out


def task_option_differences(registry: Any, recorded: Mapping[str, Any], names: Sequence[str],
                            new_options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Per task selected now and recorded in the run: options whose parsed values differ (so
    ``-T length=1024`` and the default 1024 are the same option)."""
    out = []
    for name in names:
        entry = recorded.get(name)
        if not isinstance(entry, Mapping) or "options" not in entry:
            continue
        old_raw, new_raw = dict(entry.get("options") or {}), dict(new_options.get(name) or {})
        if old_raw == new_raw:
            continue
        try:
            factory = registry.task(name).factory
            old_p = dict(factory(**old_raw).opts)
            new_p = dict(factory(**new_raw).opts)
        except Exception:  # the recorded options no longer parse: report the raw difference
            old_p, new_p = old_raw, new_raw
        for k in sorted(set(old_p) | set(new_p)):
            if canonical_json(old_p.get(k)) != canonical_json(new_p.get(k)):
                shown_old = old_raw.get(k, f"default {_show(old_p.get(k))}" if k in old_p else None)
                shown_new = new_raw.get(k, f"default {_show(new_p.get(k))}" if k in new_p else None)
                out.append(f"{name} option {k}: {_show(shown_old)} -> {_show(shown_new)}")
    return out


def selections(existing: Mapping[str, Any], limit: int | None, samples: Sequence[str] | None) -> list[dict[str, Any]]:
    """The run's sample selections after this invocation: every earlier one plus this one.

    A selection is ``{"limit": N | None, "samples": [...] | None}``; a sample is planned when any selection
    takes it. A selection of everything (no limit, no samples) makes the others redundant."""
    old = existing.get("selections")
    if not isinstance(old, list):  # a run made before selections were recorded: its invocations say
        old = [{"limit": inv.get("limit"), "samples": inv.get("samples")}
               for inv in existing.get("invocations", []) if isinstance(inv, Mapping)]
    cur = {"limit": limit, "samples": list(samples) if samples else None}
    out: list[dict[str, Any]] = []
    for sel in [*old, cur]:
        norm = {"limit": sel.get("limit"), "samples": list(sel["samples"]) if sel.get("samples") else None}
        if norm["limit"] is None and norm["samples"] is None:
            return [norm]
        if norm not in out:
            out.append(norm)
    return out
