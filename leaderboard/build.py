"""Build the static leaderboard site from run folders.

Pages (relative links only, so the site works from ``file://`` and any static host; no CDN):

* ``index.html``: models (runs) x task groups, sortable, with CIs and sample counts. It reads only
  ``manifest.json`` and ``scores.json`` data: no per-sample file is loaded to draw it.
* ``benchmarks/<group>.html``: the group's tasks (from task metadata) x models, and group charts.
* ``tasks/<task>.html``: one task's metadata, models table, per-length curves, depth x length heatmaps
  (RULER, as HTML tables) and length buckets (LongBench-E), from ``scores.json`` details.
* ``runs/<run>.html``: a run's scores and its manifest (local paths rewritten: ``local_paths``).
* ``samples/<run>/<task>.html``: the per-sample browser (prediction, references, per-sample scores,
  flags, folded think text, prompt by hash with an optional preview); the samples themselves are
  compressed JSON in ``samples/<run>/<task>.<n>.js``, loaded on demand (``samples.py``).

Everything user- or model-supplied goes through Jinja2 autoescaping, XML escaping in the SVG charts, or
``textContent`` in the sample browser. Output is deterministic: same results in, byte-identical files
out. Rebuilds are incremental (``incremental.py``): a run x task's sample data is reused when nothing it
is made from changed, pages are rendered again (milliseconds) and rewritten only when they differ, and
files of runs no longer given are removed.

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
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.redact import known_secrets, redact_obj
from evalsuite.rows import TaskScores
from evalsuite.store import MANIFEST, PER_SAMPLE, PROMPTS, SAMPLES, ResultsStore

from . import incremental, samples
from .incremental import MARKER, SiteWriter
from .local_paths import default_roots, publishable, publishable_text

Z95 = 1.959963984540054
SCRIPTED_BACKENDS = ("echo", "replay", "gold")
"""Backends whose answers come from a script: labelled so and kept out of rankings by default."""


@dataclass
class Run:
    run_id: str
    store: ResultsStore
    manifest: dict[str, Any]
    scores: dict[str, TaskScores]
    """task -> its ``scores.json`` (typed; a read-only mapping of the file's fields too)"""
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
        for t in (tc.task for tc in comp.tasks):  # the manifest's tasks and those on disk (store.tasks())
            s = st.read_scores(t)
            if s is not None and s.metrics:
                scores[t] = s
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
    searched_all = False
    for name in names:
        # a plugin is loaded once (the registry's entry points are scanned per lookup: a few ms each)
        entry = reg.tasks.get(name)
        if entry is None and not searched_all:
            try:
                entry = reg.task(name)
            except UserError:  # not registered here: reg.task loaded every plugin before it said so
                searched_all = True
        if entry is not None:
            meta = task_metadata(name, entry.factory, entry.description)
            meta["registered"] = True
        else:
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


def primary(info: TaskInfo, scores: TaskScores) -> dict[str, Any] | None:
    """The task's primary metric entry in a scores.json (metadata's choice, else the task's main)."""
    want = info.meta.get("primary_metric") or scores.main
    m = scores.metric(want) if isinstance(want, str) else None
    m = m or (scores.metrics[0] if scores.metrics else None)
    if m is None:
        return None
    hib = info.meta.get("higher_is_better")
    return {"name": m.name, "value": m.value if _finite(m.value) else None,
            "ci": list(m.ci95) if m.ci95 is not None else None,
            "stderr": m.stderr if _finite(m.stderr) else None,
            "higher_is_better": hib if isinstance(hib, bool) else m.higher_is_better,
            "details": dict(m.details), "n": scores.get("n"), "n_errors": scores.n_errors,
            "n_truncated": scores.n_truncated, "version": scores.version}


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


def build_site(results: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
               title: str = "evalsuite leaderboard", prompt_preview: int = 0, jobs: int = 1,
               include_partial: bool = False, include_scripted: bool = False) -> dict[str, Any]:
    """Build the site, or bring an earlier build of it up to date; returns counts and timing. Raises
    ``UserError`` on bad input.

    ``jobs`` > 1 prepares the per-sample data in that many worker processes (0: one per CPU, at most 8);
    the files are the same whatever the number of jobs, and whether the folder was built before or not.
    ``include_partial`` / ``include_scripted`` put partial runs / scripted-backend runs into the rankings
    (with a badge)."""
    if prompt_preview < 0:
        raise UserError("--prompt-preview must be 0 or a positive number of characters")
    if jobs < 0:
        raise UserError("--jobs must be 0 (one per CPU) or a positive number")
    t0 = time.perf_counter()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.perf_counter() - t0 - sum(phases.values()), 4)

    stores = find_runs(results)
    runs = load_runs(stores, include_partial=include_partial, include_scripted=include_scripted)
    ranked = [r for r in runs if r.ranked]
    phase("read runs")
    infos = task_infos(runs)
    phase("task metadata")
    out = Path(output)
    incremental.prepare(out)
    previous = incremental.load_index(out)
    w = SiteWriter(out)
    static = resources.files("evalsuite.leaderboard") / "static"
    for name in ("site.css", "site.js"):
        w.write(f"static/{name}", (static / name).read_bytes())

    # the per-sample data first: the sample pages show its counts
    units, reused = _sample_units(runs, infos, prompt_preview, out, previous, w, jobs)
    phase("sample data")

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
        heatmaps = []
        for row in rows:
            d = (row["cell"] or {}).get("details", {})
            if isinstance(d.get("by_length"), Mapping) and d["by_length"]:
                curves[row["run"].label] = {str(k): v for k, v in d["by_length"].items() if _finite(v)}
            if isinstance(d.get("buckets"), Mapping) and d["buckets"]:
                buckets[row["run"].label] = {str(k): v for k, v in d["buckets"].items()}
                bucket_names += [str(b) for b in d["buckets"] if str(b) not in bucket_names]
            grid = d.get("by_depth_length")
            if isinstance(grid, Mapping) and grid:
                heatmaps.append(charts.heatmap_html(grid, row["run"].label))
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
        w.write(f"tasks/{info.slug}.html", env.get_template("task.html.jinja").render(
            root="../", info=info, rows=rows, charts=chart_files, heatmaps=heatmaps, **common))

    phase("overview, benchmark and task pages, charts")
    # per run + its sample pages
    shell = env.get_template("samples.html.jinja")
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
            info, u = infos[t], units[_unit_id(r, infos[t])]
            w.write(f"samples/{r.key}/{info.slug}.html", shell.render(
                root="../../", run=r, info=info, n_items=u["n"], n_failed=u["n_failed"], n_chunks=u["chunks"],
                chunk_size=samples.CHUNK, chunk_base=info.slug, prompt_preview=prompt_preview, **common))
    phase("run and sample pages")
    removed = w.prune()
    n_files, n_written = len(w.produced), w.written
    # last: the record of what this build made (a killed build leaves the previous record, whose hashes
    # no longer match what changed)
    w.write(MARKER, incremental.index_bytes(units))
    return {"output": str(out), "n_runs": len(runs), "n_ranked": len(ranked), "n_tasks": len(infos),
            "n_files": n_files, "n_written": n_written, "n_removed": removed,
            "n_units": len(units), "n_units_reused": reused, "seconds": time.perf_counter() - t0,
            "phases": phases}


def _unit_id(run: Run, info: TaskInfo) -> str:
    return f"samples/{run.key}/{info.slug}"


def _sample_units(runs: Sequence[Run], infos: Mapping[str, TaskInfo], prompt_preview: int, out: Path,
                  previous: Mapping[str, Mapping[str, Any]], w: SiteWriter,
                  jobs: int) -> tuple[dict[str, dict[str, Any]], int]:
    """The per-sample data of every run x task: reused from the previous build when its key (a hash of
    everything it is made from: ``incremental``) is unchanged and its files are intact, else computed.

    Only error texts depend on the environment (credentials redacted, local folders rewritten), so a unit
    whose data holds no error text is recorded under the key of its inputs alone, and one with error texts
    under that key combined with the environment's part: a changed API key in the shell redoes only the
    run x tasks that show errors."""
    shared = {"format": samples.FORMAT, "builder": incremental.fingerprint(), "preview": prompt_preview}
    environment = {"roots": default_roots(), "secrets": sorted(known_secrets())}
    units: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Any, ...]] = []
    reused = 0
    inputs = incremental.InputDigests(out)
    for r in runs:
        for t in sorted(r.scores):
            info = infos[t]
            uid = _unit_id(r, info)
            d = r.store.task_dir(t)
            names = [PER_SAMPLE, SAMPLES] + ([PROMPTS] if prompt_preview > 0 else [])
            key = incremental.unit_key({**shared, "run": r.key, "task": t, "slug": info.slug,
                                        "inputs": {n: inputs.digest(d / n) for n in names}})
            key_env = incremental.unit_key({"unit": key, "environment": environment})
            old = previous.get(uid)
            if old is not None and old.get("key") in (key, key_env) and incremental.still_there(out, old):
                units[uid] = dict(old)
                w.keep(old["files"])
                reused += 1
            else:
                todo.append((uid, (key, key_env), r.store, t, r.key, info.slug, prompt_preview))
    inputs.save()
    for uid, entry, written in _run_units(out, todo, jobs):
        units[uid] = entry
        w.written += written
        w.unchanged += len(entry["files"]) - written
        w.produced.update(entry["files"])
    return units, reused


def _make_unit(job: tuple[Any, ...], out: Path) -> tuple[str, dict[str, Any], int]:
    """Parse one run x task's logs and write its sample chunks; returns the unit's record and the number
    of files written (a chunk whose bytes did not change is left alone)."""
    uid, key, store, task, run_key, slug, prompt_preview = job
    items = samples.sample_items(store, task, prompt_preview)
    w = SiteWriter(out)
    for n, chunk in enumerate(samples.chunks(items), 1):
        w.write(f"samples/{run_key}/{samples.chunk_name(slug, n)}", samples.encode_chunk(n, chunk))
    key = key[1] if any("e" in i for i in items) else key[0]
    return uid, {"key": key, "files": w.produced, "n": len(items), "n_failed": sum(1 for i in items if i.get("x")),
                 "chunks": math.ceil(len(items) / samples.CHUNK)}, w.written


def _run_units(out: Path, todo: list[tuple[Any, ...]], jobs: int) -> list[tuple[str, dict[str, Any], int]]:
    if jobs == 0:
        jobs = max(1, min(8, os.cpu_count() or 1))
    if jobs == 1 or len(todo) < 8:
        return [_make_unit(job, out) for job in todo]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        return list(pool.map(partial(_make_unit, out=out), todo, chunksize=4))


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


