"""Build time of the static leaderboard for synthetic results (default 20 runs x 30 tasks x 500 samples).

    .venv/bin/python benchmarks/leaderboard_build.py [--runs 20 --tasks 30 --samples 500] [--keep DIR]

Writes the synthetic results (tests/leaderboard_synth.py: half the tasks RULER-shaped with a depth x
length heatmap per run, half LongBench-E-shaped with length buckets), then times
``evalsuite leaderboard build`` in-process, and reports per-phase shares, file counts and sizes, and the
bytes the overview page loads (index.html + what it references) against the total site.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--keep", help="write results and site here instead of a temp folder")
    ap.add_argument("--jobs", type=int, default=2, help="also time a build with this many workers (0: skip)")
    a = ap.parse_args()

    from leaderboard_synth import write_results

    from evalsuite.leaderboard import build_site

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="lb-bench-"))
    results, site = work / "results", work / "site"
    t0 = time.perf_counter()
    if not (results / "run00" / "manifest.json").exists():  # --keep DIR reuses earlier synthetic results
        write_results(results, a.runs, a.tasks, a.samples)
    t_synth = time.perf_counter() - t0

    from evalsuite.leaderboard import charts

    chart_time = [0.0]
    for name in ("length_curves", "depth_length_heatmap", "bucket_bars"):
        fn = getattr(charts, name)

        def timed(*args, _fn=fn, **kw):
            s = time.perf_counter()
            try:
                return _fn(*args, **kw)
            finally:
                chart_time[0] += time.perf_counter() - s
        setattr(charts, name, timed)

    t0, c0 = time.perf_counter(), time.process_time()
    info = build_site([results], site, jobs=1)
    t_build, cpu_build = time.perf_counter() - t0, time.process_time() - c0

    files = [p for p in site.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    index = site / "index.html"
    refs = re.findall(r'(?:src|href)="([^"#]+\.(?:css|js|svg|json))"', index.read_text())
    overview_bytes = index.stat().st_size + sum((site / r).stat().st_size for r in set(refs))
    samples_bytes = sum(p.stat().st_size for p in (site / "samples").rglob("*") if p.is_file())
    print(f"synthetic results: {a.runs} runs x {a.tasks} tasks x {a.samples} samples "
          f"({a.runs * a.tasks * a.samples} samples) written in {t_synth:.1f}s")
    print(f"build (1 job): {t_build:.1f}s wall, {cpu_build:.1f}s CPU  ({info['n_files']} files, "
          f"{total / 1e6:.1f} MB; 1-min load average after it: {os.getloadavg()[0]:.1f})")
    print(f"  charts (matplotlib): {chart_time[0]:.1f}s = {100 * chart_time[0] / t_build:.0f}% of the build")
    print(f"  pages + per-sample pages: {t_build - chart_time[0]:.1f}s")
    print(f"overview page loads {overview_bytes / 1e3:.1f} kB (index.html + {sorted(set(refs))}); "
          f"per-sample pages total {samples_bytes / 1e6:.1f} MB, none referenced by index.html")
    if a.jobs and a.jobs > 1:
        t0 = time.perf_counter()
        build_site([results], work / f"site-jobs{a.jobs}", jobs=a.jobs)
        t_par = time.perf_counter() - t0
        same = all((site / p.relative_to(work / f"site-jobs{a.jobs}")).read_bytes() == p.read_bytes()
                   for p in (work / f"site-jobs{a.jobs}").rglob("*") if p.is_file())
        print(f"build with --jobs {a.jobs}: {t_par:.1f}s ({t_build / t_par:.2f}x faster; "
              f"files identical to the 1-job build: {same})")
    if not a.keep:
        print(f"(site left in {site})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
