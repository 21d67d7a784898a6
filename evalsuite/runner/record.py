"""The run's record: what the manifest says of the run and of each invocation, and whether an existing run
may resume with this command's settings (the same backend, task versions, prompts and generation)."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from .. import __version__
from ..contracts import Backend, Scripted
from ..errors import UserError
from ..manifest import environment_info
from ..redact import redact_argv, redact_obj, redact_text
from ..registry import Registry
from ..store import ResultsStore
from .config import RunConfig, now


def is_scripted(backend: Any) -> bool:
    """A backend (or backend class) whose answers come from a script (``contracts.Scripted``)."""
    return isinstance(backend, Scripted) and bool(backend.scripted)


def redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """Backend or judge options as recorded (``evalsuite.redact``: URL credentials, credential-named
    fields and query parameters, known secret values)."""
    return redact_obj(dict(options))


def check_resumable(existing: Mapping[str, Any], backend_id: str, entries: Mapping[str, Any]) -> None:
    old_backend = existing.get("backend", {}).get("id")
    if old_backend and old_backend not in (backend_id, redact_text(backend_id)):  # recorded ids are redacted
        raise UserError(f"run {existing.get('run_id')!r} was made with backend {old_backend!r}, not "
                        f"{backend_id!r}; use a new --run-id")
    for name, e in entries.items():
        old = existing.get("tasks", {}).get(name)
        if old and str(old.get("version")) != str(e["version"]):
            raise UserError(f"run {existing.get('run_id')!r} has {name} version {old.get('version')}, "
                            f"this evalsuite has {e['version']}; use a new --run-id")


def check_identity(run_id: str, existing: Mapping[str, Any], ident: Mapping[str, Any], registry: Registry,
                    validated: Any) -> None:
    """An existing run resumes only with the same prompts and generation: list what differs, exit 2."""
    from ..identity import differences, task_option_differences

    problems = differences(existing["identity"], ident) if isinstance(existing.get("identity"), Mapping) else []
    problems += task_option_differences(registry, existing.get("tasks", {}), validated.names,
                                        validated.task_options)
    if problems:
        raise UserError(f"run {run_id!r} exists with other settings that change prompts or generation: "
                        f"{'; '.join(problems)}. Nothing was changed; use a new --run-id (or drop --run-id "
                        f"to get one derived from the command)")


def announce(run_id: str, run_dir: Any, existing: Mapping[str, Any]) -> None:
    """The first line of every run, on stderr whether or not it is a terminal."""
    state = "resuming" if existing else "new"
    print(f"evalsuite: run {run_id} ({state}) in {run_dir}", file=sys.stderr, flush=True)


def end_invocation(store: ResultsStore, manifest: dict[str, Any] | None, invocation: dict[str, Any] | None,
                    status: str, error: BaseException | None = None) -> None:
    """Record how an invocation ended (interrupted, error) in the manifest, best effort."""
    if manifest is None or invocation is None or invocation.get("status") != "running":
        return
    invocation.update({"ended": now(), "status": status})
    if error is not None:
        text = f"{type(error).__name__}: {error}".strip()
        invocation["error"] = text if len(text) <= 500 else text[:500] + "..."
    manifest["updated"] = now()
    try:
        store.write_manifest(manifest)
    except Exception:  # the original error matters more than a failed bookkeeping write
        pass


def invocation_manifest(existing: Mapping[str, Any], run_id: str, cfg: RunConfig, ident: Mapping[str, Any],
              sels: Any, backend: Backend, backend_name: str, scripted: bool, entries: Mapping[str, Any],
              judge_cfg: Any, shard: dict[str, int] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest for this invocation (the existing one updated, or a new one) and the invocation's entry."""
    manifest = dict(existing) if existing else {"run_id": run_id, "created": now(), **environment_info()}
    manifest.update({
        "evalsuite_version": __version__,
        "identity": ident,
        "selections": sels,
        "backend": {"id": backend.id, "options": redact_options(cfg.backend_options), "model": cfg.model,
                    "name": backend_name, "scripted": scripted, "describe": backend.describe()},
        "tasks": {**manifest.get("tasks", {}), **entries},
        "updated": now(),
    })
    if judge_cfg is not None:
        manifest["judge"] = {**judge_cfg.to_dict(), "options": redact_options(judge_cfg.options)}
    if shard is not None:
        manifest["shard"] = shard
    invocation = {"started": now(), "command": redact_argv(cfg.command), "status": "running",
                  "limit": cfg.limit, "samples": cfg.samples, "max_tokens_override": cfg.max_tokens,
                  "generation_overrides": cfg.overrides()}
    manifest.setdefault("invocations", []).append(invocation)
    return manifest, invocation


__all__ = ["announce", "check_identity", "check_resumable", "end_invocation", "invocation_manifest", "is_scripted",
           "redact_options"]
