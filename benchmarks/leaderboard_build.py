"""Leaderboard build: a full build against an incremental one, and the site's bytes per sample.

    .venv/bin/python benchmarks/leaderboard_build.py [--runs 20 --tasks 30 --samples 500] [--keep DIR]
                                                     [--jobs 1] [--repeat 3]

Writes synthetic results (tests/leaderboard_synth.py: half the tasks RULER-shaped with a depth x length
heatmap per run, half LongBench-E-shaped with length buckets; ``--runs`` runs plus one more kept aside),
then, each build in a fresh process (``evalsuite.leaderboard.build_site``, timed inside and as a whole
process):

1. a full build of the runs into an empty folder, and a rebuild with nothing changed;
2. ``--repeat`` times: the extra run is added and the site rebuilt (incremental), a full build of the
   same runs is made into an empty folder (the reference), and the extra run is removed and the site
   rebuilt again. The incremental result must be byte-identical to the fresh full build, and the site
   after the removal byte-identical to the first full build;
3. reports the ratio incremental / full build (medians; target <= 10%), and the site's bytes per sample
   at this size (target <= 200 B at 500 samples per task), by kind of file.

The child processes write bytecode to a cache inside the work folder (as an installed package does; the
machine's PYTHONDONTWRITEBYTECODE would otherwise make every process compile evalsuite again), after one
warm-up build. ``--keep DIR`` reuses the synthetic results written there by an earlier call.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CHILD = """
import json, sys
from evalsuite.leaderboard import build_site
info = build_site([sys.argv[1]], sys.argv[2], jobs=int(sys.argv[3]))
print(json.dumps(info))
"""


def _build(results: Path, site: Path, jobs: int, env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, str(results), str(site), str(jobs)], env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"build failed:\n{p.stderr[-3000:]}")
    info = json.loads(p.stdout.strip().splitlines()[-1])
    info["process"] = wall
    return info


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fresh(site: Path) -> Path:
    shutil.rmtree(site, ignore_errors=True)
    return site


def _kind(rel: str) -> str:
    if rel.startswith("samples/"):
        return "sample data (.js chunks)" if rel.endswith(".js") else "sample pages (.html shells)"
    if rel.startswith("tasks/"):
        return "task pages (with heatmap tables)"
    if rel.startswith("charts/"):
        return "charts (SVG)"
    if rel.startswith("runs/"):
        return "run pages"
    return "overview, benchmark pages, assets, marker"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--keep", help="write results and sites here instead of a temp folder")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes of every build (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="add / full / remove rounds (default 3)")
    a = ap.parse_args()

    from leaderboard_synth import write_results, write_run

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="lb-bench-"))
    results, aside = work / "results", work / "aside"
    extra_id = f"run{a.runs:02d}"
    t0 = time.perf_counter()
    if not (results / "run00" / "manifest.json").exists():
        write_results(results, a.runs, a.tasks, a.samples)
    if (results / extra_id).exists():  # an interrupted earlier call left the extra run in
        aside.mkdir(exist_ok=True)
        os.replace(results / extra_id, aside / extra_id)
    if not (aside / extra_id / "manifest.json").exists():
        n_ruler = a.tasks // 2
        tasks = [f"synth_ruler/t{i:02d}" for i in range(n_ruler)] + \
                [f"synth_lb/t{i:02d}" for i in range(a.tasks - n_ruler)]
        write_run(aside, extra_id, tasks, a.samples, skill=0.7, seed=4242)
    t_synth = time.perf_counter() - t0
    print(f"synthetic results: {a.runs} runs x {a.tasks} tasks x {a.samples} samples, plus one run to add "
          f"({t_synth:.1f}s)")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["EVALSUITE_CACHE"] = str(work / "cache")  # the builds' input-digest record lives here
    site, fresh = work / "site", work / "site-fresh"
    warm = work / "warm-results"
    if not (warm / "run00" / "manifest.json").exists():
        write_results(warm, 1, 2, 10)
    _build(warm, _fresh(work / "site-warm"), a.jobs, env)

    full = _build(results, _fresh(site), a.jobs, env)
    first = _tree(site)
    noop = _build(results, site, a.jobs, env)
    print(f"full build, {a.runs} runs: {full['seconds']:.2f}s in build_site, {full['process']:.2f}s whole process "
          f"({full['n_files']} files); phases {full['phases']}")
    print(f"rebuild, nothing changed: {noop['seconds']:.2f}s in build_site, {noop['process']:.2f}s whole process "
          f"({noop['n_units_reused']}/{noop['n_units']} sample units reused, {noop['n_written']} files written)")

    adds, fulls, removes = [], [], []
    identical_add = identical_remove = True
    for _ in range(a.repeat):
        os.replace(aside / extra_id, results / extra_id)
        inc = _build(results, site, a.jobs, env)
        ref = _build(results, _fresh(fresh), a.jobs, env)
        identical_add &= _tree(site) == _tree(fresh)
        os.replace(results / extra_id, aside / extra_id)
        rem = _build(results, site, a.jobs, env)
        identical_remove &= _tree(site) == first
        adds.append(inc)
        fulls.append(ref)
        removes.append(rem)

    def med(xs: list[dict], k: str) -> float:
        return statistics.median(x[k] for x in xs)

    n1 = a.runs + 1
    print(f"add 1 run ({a.runs} -> {n1}), incremental: {med(adds, 'seconds'):.2f}s in build_site, "
          f"{med(adds, 'process'):.2f}s whole process ({adds[-1]['n_units'] - adds[-1]['n_units_reused']} sample "
          f"units made, {adds[-1]['n_units_reused']} reused, {adds[-1]['n_written']} files written); "
          f"phases {adds[-1]['phases']}")
    print(f"full build, {n1} runs: {med(fulls, 'seconds'):.2f}s in build_site, {med(fulls, 'process'):.2f}s whole "
          "process")
    print(f"remove that run again, incremental: {med(removes, 'seconds'):.2f}s in build_site "
          f"({removes[-1]['n_removed']} files removed)")
    r_in = med(adds, "seconds") / med(fulls, "seconds")
    r_proc = med(adds, "process") / med(fulls, "process")
    print(f"RATIO incremental / full build ({a.repeat} rounds, medians): {100 * r_in:.1f}% in build_site, "
          f"{100 * r_proc:.1f}% whole process (target <= 10%)")
    print(f"incremental site byte-identical to a fresh full build: {identical_add}; after removing the run, "
          f"byte-identical to the first full build: {identical_remove}")

    sizes: dict[str, int] = {}
    total = 0
    for p in fresh.rglob("*"):
        if p.is_file():
            n = p.stat().st_size
            total += n
            k = _kind(p.relative_to(fresh).as_posix())
            sizes[k] = sizes.get(k, 0) + n
    n_samples = n1 * a.tasks * a.samples
    print(f"site ({n1} runs): {total / 1e6:.1f} MB for {n_samples} samples = {total / n_samples:.1f} B per sample "
          f"(target <= 200 B)")
    for k, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {k}: {n / 1e6:.2f} MB = {n / n_samples:.1f} B per sample")
    raw = sum(p.stat().st_size for p in results.rglob("*.jsonl"))
    print(f"(the runs' own per-sample logs: {raw / (a.runs * a.tasks * a.samples):.0f} B per sample)")
    if not a.keep:
        print(f"(work folder left in {work})")
    return 0 if identical_add and identical_remove else 1


if __name__ == "__main__":
    sys.exit(main())
