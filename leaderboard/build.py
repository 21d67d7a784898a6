"""Build the static leaderboard site from run folders.

Pages (relative links only, so the site works from ``file://`` and any static host; no CDN):

* ``index.html``: models (runs) x task groups, sortable, with CIs and sample counts. It reads only
  ``manifest.json`` and ``scores.json`` data: no per-sample file is loaded to draw it.
* ``benchmarks/<group>.html``: the group's tasks (from task metadata) x models, and group charts.
* ``tasks/<task>.html``: one task's metadata, models table, per-length curves, depth x length heatmaps
  (RULER) and length buckets (LongBench-E), from ``scores.json`` details.
* ``runs/<run>.html``: a run's scores and its manifest (local paths rewritten: ``local_paths``).
* ``samples/<run>/<task>[-N].html``: the per-sample browser (prediction, references, per-sample scores,
  flags, folded think text, prompt by hash with an optional preview).

Everything user- or model-supplied goes through Jinja2 autoescaping; charts are ``<img>`` SVG files
drawn by matplotlib. Output is deterministic: same results in, byte-identical files out.

Rankings (the overview, benchmark and task tables and their charts) hold only runs whose numbers are
final and come from a model: a partial run (``evalsuite.completeness``: samples missing, generations
failed, scores stale) and a run made with a scripted backend (``echo``, ``replay``, ``gold``) are listed
apart, with a badge and the reason, unless ``include_partial`` / ``include_scripted``; their run and
sample pages are built either way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.reasoning import split_reasoning
from evalsuite.redact import redact_obj, redact_text
from evalsuite.store import MANIFEST, PROMPTS, ResultsStore, read_jsonl_rows

from .local_paths import publishable, publishable_text

MARKER = ".evalsuite-site"
PAGE_SIZE = 250
Z95 = 1.959963984540054
SCRIPTED_BACKENDS = ("echo", "replay", "gold")
"""Backends whose answers come from a script: labelled so and kept out of rankings by default."""


@dataclass
class Run:
    run_id: str
    store: ResultsStore
    manifest: dict[str, Any]
    scores: dict[str, dict[str, Any]]
    label: str = ""
    key: str = ""
    """unique page name"""
    partial: bool = False
    partial_reason: str = ""
    scripted: bool = False
    ranked: bool = True
    """In the rankings (overview, benchmark and task tables)."""

    @property
    def not_ranked_because(self) -> str:
        why = []
        if self.partial:
            why.append(f"partial: {self.partial_reason}")
        if self.scripted:
            why.append("scripted backend (answers do not come from a model)")
        return "; ".join(why)


@dataclass
class TaskInfo:
    name: str
    meta: dict[str, Any]
    slug: str
    runs: list[str] = field(default_factory=list)


# -- discovery ---------------------------------------------------------------------------------------

def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[ResultsStore]:
    """Run folders given directly, or the run folders directly under a results root."""
    out: list[ResultsStore] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if (p / MANIFEST).is_file():
            cands = [p]
        elif p.is_dir():
            # hidden folders are work in progress (a merge being built), not runs
            cands = sorted(c for c in p.iterdir() if not c.name.startswith(".") and (c / MANIFEST).is_file())
            if not cands:
                raise UserError(f"{raw}: no run folders (folders with {MANIFEST}) here")
        else:
            raise UserError(f"{raw}: not a run folder or a folder of runs")
        for c in cands:
            r = c.resolve()
            if r not in seen:
                seen.add(r)
                out.append(ResultsStore(c.parent, c.name))
    return out


def _backend_kind(manifest: Mapping[str, Any]) -> str:
    b = manifest.get("backend") or {}
    if isinstance(b.get("name"), str) and b["name"]:
        return b["name"]
    return str(b.get("id") or "").split("@", 1)[0].split(":", 1)[0]


def is_scripted(manifest: Mapping[str, Any]) -> bool:
    """Made with a scripted backend (recorded by the runner; older runs: told by the backend id)."""
    b = manifest.get("backend") or {}
    if isinstance(b.get("scripted"), bool):
        return b["scripted"]
    return _backend_kind(manifest) in SCRIPTED_BACKENDS


def _model_label(manifest: Mapping[str, Any], run_id: str) -> str:
    b = manifest.get("backend") or {}
    if is_scripted(manifest):
        # --model of a scripted backend is only a tokenizer folder: never name a model it did not run
        return f"{_backend_kind(manifest) or 'scripted'} (scripted backend)"
    model = b.get("model")
    if isinstance(model, str) and model:
        # a local folder shows as its last component; a hub id ("org/name") or served name as is
        local = model.startswith(("/", ".", "~")) or (os.sep != "/" and os.sep in model)
        return model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] if local else model
    bid = b.get("id")
    return str(bid).split("@", 1)[0].split(":", 1)[0] if bid else run_id


def load_runs(stores: Sequence[ResultsStore], include_partial: bool = False,
              include_scripted: bool = False) -> list[Run]:
    from evalsuite.completeness import run_completeness

    runs = []
    used: set[str] = set()
    for st in stores:
        manifest = redact_obj(st.read_manifest())  # runs recorded by older versions are published redacted too
        comp = run_completeness(st)
        scores = {}
        for t in st.tasks():
            s = st.read_scores(t)
            if s is not None and s.metrics:
                scores[t] = dict(s)  # the file's fields (the pages show them as recorded)
        key = st.run_id
        i = 2
        while key in used:
            key = f"{st.run_id}-{i}"
            i += 1
        used.add(key)
        reason = "; ".join(f"{t.task}: {', '.join(t.reasons())}" for t in comp.tasks if not t.complete)
        partial, scripted = not comp.complete, is_scripted(manifest)
        runs.append(Run(run_id=st.run_id, store=st, manifest=manifest, scores=scores, key=key,
                        partial=partial, partial_reason=reason or ("no tasks" if partial else ""),
                        scripted=scripted,
                        ranked=(include_partial or not partial) and (include_scripted or not scripted)))
    labels: dict[str, int] = {}
    for r in runs:
        r.label = _model_label(r.manifest, r.run_id)
        labels[r.label] = labels.get(r.label, 0) + 1
    for r in runs:
        if labels[r.label] > 1:
            r.label = f"{r.label} ({r.key})"
    return runs


def task_infos(runs: Sequence[Run]) -> dict[str, TaskInfo]:
    """Metadata of every task any run scored, read from the task registry (plugins included)."""
    from evalsuite.registry import default_registry
    from evalsuite.task import task_metadata

    reg = default_registry()
    names = sorted({t for r in runs for t in r.scores})
    infos: dict[str, TaskInfo] = {}
    slugs: set[str] = set()
    for name in names:
        try:
            entry = reg.task(name)
            meta = task_metadata(name, entry.factory, entry.description)
            meta["registered"] = True
        except UserError:
            meta = task_metadata(name)
            meta["registered"] = False
        slug = _slug(name)
        if slug in slugs:
            slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        slugs.add(slug)
        infos[name] = TaskInfo(name=name, meta=meta, slug=slug,
                               runs=[r.key for r in runs if name in r.scores])
    return infos


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "--")).strip("._") or "task"
    return s[:120]


# -- numbers -----------------------------------------------------------------------------------------

def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def primary(info: TaskInfo, scores: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's primary metric entry in a scores.json (metadata's choice, else the task's main)."""
    metrics = {m.get("name"): m for m in scores.get("metrics", [])}
    want = info.meta.get("primary_metric") or scores.get("main")
    m = metrics.get(want) or (scores.get("metrics") or [None])[0]
    if m is None:
        return None
    hib = info.meta.get("higher_is_better")
    return {"name": m.get("name"), "value": m.get("value") if _finite(m.get("value")) else None,
            "ci": m.get("ci95") if isinstance(m.get("ci95"), list) and len(m["ci95"]) == 2 else None,
            "stderr": m.get("stderr") if _finite(m.get("stderr")) else None,
            "higher_is_better": hib if isinstance(hib, bool) else bool(m.get("higher_is_better", True)),
            "details": m.get("details") or {}, "n": scores.get("n"), "n_errors": scores.get("n_errors", 0),
            "n_truncated": scores.get("n_truncated", 0), "version": scores.get("version")}


def group_cell(cells: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean of the tasks' primary values; CI from their standard errors (tasks independent)."""
    vals = [c for c in cells if c and c["value"] is not None]
    if not vals:
        return None
    k = len(vals)
    mean = sum(c["value"] for c in vals) / k
    ci = None
    if k == 1 and vals[0]["ci"]:
        ci = vals[0]["ci"]
    elif all(c["stderr"] is not None for c in vals):
        se = math.sqrt(sum(c["stderr"] ** 2 for c in vals)) / k
        ci = [mean - Z95 * se, mean + Z95 * se]
    return {"value": mean, "ci": ci, "n": sum(int(c["n"] or 0) for c in vals), "k": k}


# -- rendering ---------------------------------------------------------------------------------------

def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("evalsuite.leaderboard") / "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["num"] = lambda v, d=2: "–" if v is None or not _finite(v) else f"{v:.{d}f}"
    env.filters["sortkey"] = lambda v: "" if v is None or not _finite(v) else repr(float(v))
    env.filters["pjson"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    env.filters["cjson"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    return env


class _Writer:
    def __init__(self, out: Path):
        self.out = out
        self.n = 0

    def write(self, rel: str, data: str | bytes) -> None:
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        self.n += 1


def _prepare_output(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise UserError(f"{out} is not empty and was not built by `evalsuite leaderboard build`; "
                            "choose an empty or new folder")
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def build_site(results: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
               title: str = "evalsuite leaderboard", prompt_preview: int = 0, jobs: int = 1,
               include_partial: bool = False, include_scripted: bool = False) -> dict[str, Any]:
    """Build the site; returns counts and timing. Raises ``UserError`` on bad input.

    ``jobs`` > 1 draws heatmaps and writes per-sample pages in that many worker processes (0: one per
    CPU, at most 8); the files are the same whatever the number of jobs. ``include_partial`` /
    ``include_scripted`` put partial runs / scripted-backend runs into the rankings (with a badge)."""
    if prompt_preview < 0:
        raise UserError("--prompt-preview must be 0 or a positive number of characters")
    if jobs < 0:
        raise UserError("--jobs must be 0 (one per CPU) or a positive number")
    deferred: list[tuple[Any, ...]] = []
    t0 = time.perf_counter()
    stores = find_runs(results)
    runs = load_runs(stores, include_partial=include_partial, include_scripted=include_scripted)
    ranked = [r for r in runs if r.ranked]
    infos = task_infos(runs)
    out = Path(output)
    _prepare_output(out)
    w = _Writer(out)
    w.write(MARKER, "built by evalsuite leaderboard build\n")
    static = resources.files("evalsuite.leaderboard") / "static"
    for name in ("site.css", "site.js"):
        w.write(f"static/{name}", (static / name).read_bytes())
    env = _env()
    by_key = {r.key: r for r in runs}

    # cells: primary metric per (run, task)
    cell: dict[tuple[str, str], dict[str, Any] | None] = {
        (r.key, t): primary(infos[t], r.scores[t]) for r in runs for t in r.scores}
    groups: dict[str, list[str]] = {}
    for t, info in infos.items():
        groups.setdefault(str(info.meta["group"]), []).append(t)
    groups = {g: sorted(ts) for g, ts in sorted(groups.items())}
    group_slugs = {g: _slug(g) for g in groups}

    common = {"title": title, "groups": groups, "group_slugs": group_slugs}
    # overview
    overview_rows = []
    for r in ranked:
        gcells = {g: group_cell([cell.get((r.key, t)) for t in ts]) for g, ts in groups.items()}
        overview_rows.append({"run": r, "cells": gcells})
    w.write("index.html", env.get_template("index.html.jinja").render(
        root="", rows=overview_rows, group_sizes={g: len(ts) for g, ts in groups.items()},
        unranked=[r for r in runs if not r.ranked], **common))

    from . import charts

    # per group
    for g, ts in groups.items():
        rows = [{"run": r, "cells": [cell.get((r.key, t)) for t in ts]} for r in ranked
                if any((r.key, t) in cell for t in ts)]
        chart_files = []
        curves: dict[str, dict[str, float | None]] = {}
        for r in ranked:
            per_len: dict[str, list[float]] = {}
            for t in ts:
                c = cell.get((r.key, t))
                for k, v in ((c or {}).get("details", {}).get("by_length") or {}).items():
                    if _finite(v):
                        per_len.setdefault(str(k), []).append(float(v))
            if per_len:
                curves[r.label] = {k: sum(v) / len(v) for k, v in per_len.items()}
        if curves:
            rel = f"charts/group-{group_slugs[g]}-length.svg"
            w.write(rel, charts.length_curves(curves, f"{g}: mean over tasks by context length", "score"))
            chart_files.append({"src": rel, "alt": f"{g}: score by context length, one line per model"})
        w.write(f"benchmarks/{group_slugs[g]}.html", env.get_template("group.html.jinja").render(
            root="../", group=g, tasks=[infos[t] for t in ts], rows=rows, charts=chart_files, **common))

    # per task
    for t, info in infos.items():
        rows = [{"run": by_key[k], "cell": cell[(k, t)], "scores": by_key[k].scores[t],
                 "samples": f"samples/{k}/{info.slug}.html"} for k in info.runs if by_key[k].ranked]
        chart_files = []
        curves = {}
        buckets: dict[str, dict[str, float | None]] = {}
        bucket_names: list[str] = []
        for row in rows:
            d = (row["cell"] or {}).get("details", {})
            if d.get("by_length"):
                curves[row["run"].label] = {str(k): v for k, v in d["by_length"].items() if _finite(v)}
            if isinstance(d.get("buckets"), Mapping) and d["buckets"]:
                buckets[row["run"].label] = dict(d["buckets"])
                bucket_names += [b for b in d["buckets"] if b not in bucket_names]
        if curves and any(len(c) > 1 for c in curves.values()):
            rel = f"charts/task-{info.slug}-length.svg"
            w.write(rel, charts.length_curves(curves, f"{info.meta['display_name']}: score by context length",
                                              "score"))
            chart_files.append({"src": rel, "alt": "score by context length, one line per model"})
        if buckets:
            rel = f"charts/task-{info.slug}-buckets.svg"
            w.write(rel, charts.bucket_bars(buckets, bucket_names, f"{info.meta['display_name']}: length buckets",
                                            "score"))
            chart_files.append({"src": rel, "alt": "score per input length bucket, one bar per model"})
        for row in rows:
            d = (row["cell"] or {}).get("details", {})
            grid = d.get("by_depth_length")
            if isinstance(grid, Mapping) and grid:
                rel = f"charts/task-{info.slug}-heatmap-{row['run'].key}.svg"
                deferred.append(("heatmap", rel, dict(grid), f"{row['run'].label}: depth × length"))
                chart_files.append({"src": rel, "alt": f"{row['run'].label}: score by needle depth and "
                                                       "context length", "heatmap": True})
        w.write(f"tasks/{info.slug}.html", env.get_template("task.html.jinja").render(
            root="../", info=info, rows=rows, charts=chart_files, **common))

    # per run + samples
    for r in runs:
        trows = [{"info": infos[t], "cell": cell[(r.key, t)], "scores": r.scores[t],
                  "samples": f"samples/{r.key}/{infos[t].slug}.html"} for t in sorted(r.scores)]
        w.write(f"runs/{r.key}.html", env.get_template("run.html.jinja").render(
            root="../", run=r, rows=trows, summaries=_summaries(r.scores), unsafe_code=_unsafe_code_tasks(r.manifest),
            backend_id=publishable_text(str((r.manifest.get("backend") or {}).get("id") or "?")),
            manifest_json=json.dumps(publishable(r.manifest), indent=2, ensure_ascii=False, sort_keys=True,
                                     default=str),
            **common))
        for t in sorted(r.scores):
            deferred.append(("samples", r, infos[t], prompt_preview, dict(common)))
    w.n += _run_deferred(out, deferred, jobs)
    return {"output": str(out), "n_runs": len(runs), "n_ranked": len(ranked), "n_tasks": len(infos), "n_files": w.n,
            "seconds": time.perf_counter() - t0}


def _unsafe_code_tasks(manifest: Mapping[str, Any]) -> list[str]:
    """Tasks whose model-written programs ran without the sandbox (``-T unsafe_code=true``; evalsuite.sandbox)."""
    out = []
    for name, entry in (manifest.get("tasks") or {}).items():
        sandbox = (entry.get("describe") or {}).get("sandbox") if isinstance(entry, Mapping) else None
        if isinstance(sandbox, Mapping) and sandbox.get("mode") == "unsafe":
            out.append(str(name))
    return sorted(out)


def _summaries(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Benchmark-level aggregates the registry knows for these tasks (LongBench averages, RULER Avg)."""
    from evalsuite.report import summaries_for

    try:
        rows = summaries_for(dict(scores))
    except Exception:  # a plugin's summary must not break the site
        return []
    return [{"name": str(x.get("name")), "value": x.get("value"), "n_tasks": x.get("n_tasks")} for x in rows]


def _do(job: tuple[Any, ...], out: Path) -> int:
    """One unit of deferred work (a heatmap, or a run x task's sample pages); returns files written."""
    w = _Writer(out)
    if job[0] == "heatmap":
        from . import charts

        _, rel, grid, title = job
        w.write(rel, charts.depth_length_heatmap(grid, title))
    else:
        _, run, info, prompt_preview, common = job
        _sample_pages(w, _cached_env(), run, info, prompt_preview, common)
    return w.n


_ENV: Any = None


def _cached_env() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV


def _run_deferred(out: Path, deferred: list[tuple[Any, ...]], jobs: int) -> int:
    if jobs == 0:
        jobs = max(1, min(8, os.cpu_count() or 1))
    if jobs == 1 or len(deferred) < 8:
        return sum(_do(job, out) for job in deferred)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        return sum(pool.map(partial(_do, out=out), deferred, chunksize=4))


def _references(target: Any) -> list[str]:
    if target is None:
        return []
    if isinstance(target, (list, tuple)):
        return [t if isinstance(t, str) else json.dumps(t, ensure_ascii=False, sort_keys=True) for t in target]
    return [target if isinstance(target, str) else json.dumps(target, ensure_ascii=False, sort_keys=True)]


def _sample_pages(w: _Writer, env: Any, run: Run, info: TaskInfo, prompt_preview: int,
                  common: Mapping[str, Any]) -> None:
    st = run.store
    per_sample = st.read_per_sample(info.name)
    log = st.latest_rows(info.name)
    prompts: dict[str, str] = {}
    if prompt_preview > 0:
        for p in read_jsonl_rows(st.task_dir(info.name) / PROMPTS):
            payload = p.get("prompt")
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            if p.get("prompt_sha256"):
                prompts[p["prompt_sha256"]] = text[:prompt_preview]
    items = []
    for ps in per_sample:
        row = log.get(ps.get("key", "")) or {}
        gen = row.get("generation") or {}
        raw = gen.get("text") or ""
        _, think, _ = split_reasoning(raw)
        # the first pass's prompt identifies the sample's input
        first = row
        seen = set()
        while first.get("parent") and first["parent"] in log and first["parent"] not in seen:
            seen.add(first["parent"])
            first = log[first["parent"]]
        ph = first.get("prompt_sha256")
        failed = bool(ps.get("error")) or any(v is not None and v < 1.0 for v in (ps.get("metrics") or {}).values())
        items.append({
            "index": ps.get("index"), "sample_id": ps.get("sample_id"), "metrics": ps.get("metrics") or {},
            "flags": ps.get("flags") or [],
            "error": publishable_text(redact_text(ps["error"])) if isinstance(ps.get("error"), str) else ps.get("error"),
            "prediction": ps.get("prediction") or "",
            "references": _references((row.get("sample") or {}).get("target")),
            "think": think, "prompt_sha256": ph, "prompt_chars": first.get("prompt_chars"),
            "prompt_tokens": first.get("prompt_tokens"), "preview": prompts.get(ph) if ph else None,
            "finish_reason": gen.get("finish_reason"), "metadata": ps.get("metadata") or {},
            "failed": failed,
        })
    pages = max(1, math.ceil(len(items) / PAGE_SIZE))
    tpl = env.get_template("samples.html.jinja")
    for p in range(pages):
        name = f"{info.slug}.html" if p == 0 else f"{info.slug}-{p + 1}.html"
        links = [{"n": i + 1, "href": f"{info.slug}.html" if i == 0 else f"{info.slug}-{i + 1}.html",
                  "current": i == p} for i in range(pages)] if pages > 1 else []
        w.write(f"samples/{run.key}/{name}", tpl.render(
            root="../../", run=run, info=info, items=items[p * PAGE_SIZE:(p + 1) * PAGE_SIZE], pages=links,
            n_items=len(items), prompt_preview=prompt_preview, **common))
