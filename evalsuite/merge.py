"""``evalsuite merge``: combine the shard runs of one evaluation (``run --shard i/n``) into one run.

Every shard plans the whole evaluation and generates its own interleaved slice, recording the full
plan (``plan.json`` ``all_keys``) and its place (``manifest.json`` ``shard``). Merging checks that the
shards belong together (same backend identity, task versions, options and prompts, the same full plan,
each index 0..n-1 exactly once), concatenates their logs (samples, prompts, judge verdicts) into a new
run whose plan is the full one, and scores it along the same path as any run, so the merged scores
equal those of the same evaluation run unsharded.
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import UserError
from .lock import LOCK_FILE, RunLock
from .rows import JudgeRow, PlanDoc, PromptRow, SampleRow
from .runner.config import now
from .store import (JUDGE_LOG, PLAN, PROMPTS, SAMPLES, ResultsStore, atomic_write_json, check_output_root, read_rows,
                    write_error)

_LOGS = (SAMPLES, PROMPTS, JUDGE_LOG)
_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    SAMPLES: SampleRow.from_dict, JUDGE_LOG: JudgeRow.from_dict, PROMPTS: PromptRow.from_dict}
_MUST_AGREE = ("version", "options", "prompts_sha256", "n_planned", "generation_params")


def _check(shards: Sequence[ResultsStore]) -> tuple[list[dict[str, Any]], int]:
    manifests = [s.read_manifest() for s in shards]
    for s, m in zip(shards, manifests):
        if not m.get("shard"):
            raise UserError(f"{s.dir} is not a shard run (made without --shard)")
    counts = {m["shard"]["count"] for m in manifests}
    if len(counts) != 1:
        raise UserError(f"shards disagree on the shard count: {sorted(counts)}")
    n = counts.pop()
    seen: dict[int, str] = {}
    for s, m in zip(shards, manifests):
        i = m["shard"]["index"]
        if i in seen:
            raise UserError(f"shard {i}/{n} given twice: {seen[i]} and {s.dir}")
        seen[i] = str(s.dir)
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        raise UserError(f"missing shard(s) {', '.join(f'{i}/{n}' for i in missing)}")
    first = manifests[0]
    for s, m in zip(shards[1:], manifests[1:]):
        if m.get("backend", {}).get("id") != first.get("backend", {}).get("id"):
            raise UserError(f"{s.dir} used backend {m.get('backend', {}).get('id')!r}, "
                            f"{shards[0].dir} used {first.get('backend', {}).get('id')!r}")
        if set(m.get("tasks", {})) != set(first.get("tasks", {})):
            raise UserError(f"{s.dir} ran tasks {sorted(m.get('tasks', {}))}, "
                            f"{shards[0].dir} ran {sorted(first.get('tasks', {}))}")
        for name, entry in m.get("tasks", {}).items():
            for field in _MUST_AGREE:
                if entry.get(field) != first["tasks"][name].get(field):
                    raise UserError(f"{name}: shards disagree on {field} ({s.dir} vs {shards[0].dir})")
        if m.get("judge") != first.get("judge"):
            raise UserError(f"{s.dir} and {shards[0].dir} used different judges")
    return manifests, n


def merge_shards(paths: Sequence[str], output: str, run_id: str,
                 wait_lock: bool = False) -> tuple[ResultsStore, dict[str, Any]]:
    """Merge shard runs into ``<output>/<run_id>`` and score it. Returns (store, scores by task).

    Atomic: the merged run is built and scored in ``<output>/.<run_id>.merging`` and renamed into place
    at the end, so a merge killed half-way leaves no half-merged run; the next merge into the same id
    takes over the leftover folder. Each shard is locked while it is read (a shard still being written is
    refused), and so is the folder being built."""
    from .runner import _rescore

    if len(paths) < 1:
        raise UserError("merge: give the shard runs")
    shards = [ResultsStore.open_existing(p) for p in paths]
    out = ResultsStore(output, run_id)
    check_output_root(output)
    if out.exists or out.dir.exists():
        raise UserError(f"{out.dir} exists; merge writes a new run (choose another --run-id)")
    work = ResultsStore(output, run_id)
    work.dir = Path(output) / f".{run_id}.merging"
    with ExitStack() as locks:
        for s in shards:
            locks.enter_context(RunLock(s.dir, "merge (reading this shard)", wait=wait_lock))
        locks.enter_context(RunLock(work.dir, "merge", wait=wait_lock))
        _clear(work.dir)  # what a merge killed earlier left behind (its lock died with it)
        try:
            manifests, n = _check(shards)
            order = sorted(range(len(shards)), key=lambda k: manifests[k]["shard"]["index"])
            shards = [shards[k] for k in order]
            manifests = [manifests[k] for k in order]
            _write_merged(work, shards, manifests, n, run_id)
            scores = _rescore(work, None, None)
            if out.dir.exists():
                raise UserError(f"{out.dir} appeared while merging; choose another --run-id")
            os.rename(work.dir, out.dir)
        except OSError as exc:
            _clear(work.dir)
            raise write_error(work.dir, exc) from None
        except BaseException:
            _clear(work.dir)
            raise
    return out, scores


def _clear(folder: Path) -> None:
    """Remove everything in a folder being built except its lock file."""
    if not folder.is_dir():
        return
    for leftover in folder.iterdir():
        if leftover.name != LOCK_FILE:
            shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()


def _write_merged(out: ResultsStore, shards: Sequence[ResultsStore], manifests: Sequence[dict[str, Any]],
                  n: int, run_id: str) -> None:
    for name in manifests[0]["tasks"]:
        plans = []
        for s in shards:
            plan = s.read_plan(name)
            if plan is None:
                raise UserError(f"{s.dir}: no plan for {name} (the shard never started generating)")
            plans.append(plan)
        full = plans[0].all_keys
        if full is None or any(p.all_keys != full for p in plans):
            raise UserError(f"{name}: shards planned different requests (data or prompts changed "
                            f"between shards)")
        union = [k for p in plans for k in p.keys]
        if sorted(union) != sorted(full) or len(set(union)) != len(union):
            raise UserError(f"{name}: shard plans do not partition the full plan")
        d = out.task_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        for log in _LOGS:
            parts = [s.task_dir(name) / log for s in shards if (s.task_dir(name) / log).exists()]
            if not parts:
                continue
            # only rows: a torn last line (crash mid-write) and lines that are not rows are left behind (and
            # counted on stderr), as when the log is read; each is written in this version's form
            out.write_log(name, log, (row for part in parts for row in read_rows(part, _PARSERS[log])))
        # the plan goes through this module's atomic_write_json: the first write after the logs are copied
        atomic_write_json(d / PLAN, PlanDoc(name, tuple(full)).to_dict())

    manifest = {k: v for k, v in manifests[0].items() if k not in {"shard", "invocations", "run_id"}}
    manifest.update({
        "run_id": run_id, "created": now(), "updated": now(),
        "merged_from": [{"run_id": m.get("run_id"), "dir": str(s.dir), "shard": m["shard"],
                         "invocations": m.get("invocations", [])} for s, m in zip(shards, manifests)],
        "invocations": [{"started": now(), "command": "merge", "status": "complete", "shards": n}],
    })
    out.write_manifest(manifest)
