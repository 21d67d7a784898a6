"""LongBench v1 scoring speed: ``evalsuite score-file`` (the CLI, one process for the whole folder) and
evalsuite's ``longbench`` metric, against the official ``LongBench/eval.py`` on the same prediction
files, with a check that every score is equal.

The official scripts are not part of evalsuite: fetch ``LongBench/eval.py`` and ``LongBench/metrics.py``
of THUDM/LongBench at commit 2e00731f8d0bff23dc4325161044d0ed8af94c1e into a scratch folder, and give
them a scratch virtual environment with the libraries the official numbers were made with (fuzzywuzzy
must stay out of evalsuite's environment; without python-Levenshtein it runs on difflib)::

    mkdir -p /tmp/lb_official && cd /tmp/lb_official
    for f in eval.py metrics.py; do curl -fsSLO \\
      https://raw.githubusercontent.com/THUDM/LongBench/2e00731f8d0bff23dc4325161044d0ed8af94c1e/LongBench/$f; done
    python3 -m venv /tmp/lbvenv && /tmp/lbvenv/bin/pip install rouge==1.0.1 jieba==0.42.1 fuzzywuzzy==0.18.0 numpy

    python benchmarks/longbench_scorer.py --official-dir /tmp/lb_official --official-python /tmp/lbvenv/bin/python

Prediction files: by default the 10 golden files under ``shared/data/longbench/golden_pred`` (every
LongBench metric). The full 21-file set they come from -- llama2-7b-chat-4k's ``pred/`` folder of the
LongBench fork viridisGreen/LongBench (commit eaae8054f84fddaf1a299836ce6763359f823ce8, files unchanged
since 7f1ce12f; ``result.json`` there is the official eval.py output) -- goes in a scratch folder::

    git clone https://github.com/viridisGreen/LongBench /tmp/lb_fork && mkdir -p /tmp/golden21 && \\
      cp /tmp/lb_fork/pred/llama2-7b-chat-4k/*.jsonl /tmp/lb_fork/pred/llama2-7b-chat-4k/result.json /tmp/golden21/
    python benchmarks/longbench_scorer.py ... --pred-dir /tmp/golden21

Each round runs, in alternating order (the machine is shared and noisy; medians are compared), after one
untimed warm-up of each side (jieba's and evalsuite's dictionary caches):

* official, end to end: ``eval.py --model <run>`` as a subprocess on a scratch copy of the files (the
  wall time of the command a LongBench user runs; its result.json is read back);
* evalsuite, end to end: ``evalsuite score-file <folder> --json --result-json <file>`` as a subprocess
  (the command an evalsuite user runs; its result.json is compared with the official one);
* official, per dataset: a subprocess of this script under the official Python that imports ``eval.py``
  from ``--official-dir`` and times its ``scorer`` per file (read + score), in sorted file order;
* evalsuite, per dataset: a subprocess of this script that reads and scores every file with
  ``records_from_official`` + ``LongBench(dataset).score`` the same way.

Prints per-dataset medians, totals, the whole-process ratio ``evalsuite score-file / eval.py`` in wall
time (target <= 0.12 on the 21 files) and in CPU time (user + sys of the child process), and whether all scores are equal (``--check-e`` also compares the LongBench-E
length buckets with eval.py's ``scorer_e``, untimed). Exits 1 when a score differs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PRED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "longbench" / "golden_pred" \
    / "llama2-7b-chat-4k"


def _files(pred_dir: Path) -> list[Path]:
    return sorted(p for p in pred_dir.glob("*.jsonl"))


def _worker_official(official_dir: str, pred_dir: Path, longbench_e: bool = False) -> dict:
    """Runs under the official Python: imports eval.py's scorer (``scorer_e`` with ``longbench_e``) and
    reads the files as eval.py does."""
    import warnings

    warnings.simplefilter("ignore")  # fuzzywuzzy's "slow pure-python SequenceMatcher" warning
    sys.path.insert(0, official_dir)
    t0 = time.perf_counter()
    import eval as official  # noqa: E402  (LongBench/eval.py from the scratch folder)

    out = {"import_s": time.perf_counter() - t0, "datasets": {}}
    for path in _files(pred_dir):
        dataset = path.name.split(".")[0]
        t = time.perf_counter()
        preds, answers, lengths, all_classes = [], [], [], None
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                preds.append(row["pred"])
                answers.append(row["answers"])
                all_classes = row["all_classes"]
                if "length" in row:
                    lengths.append(row["length"])
        if longbench_e:
            score = {k: float(v) for k, v in official.scorer_e(dataset, preds, answers, lengths, all_classes).items()}
        else:
            score = official.scorer(dataset, preds, answers, all_classes)
        out["datasets"][dataset] = {"score": score, "seconds": time.perf_counter() - t}
    return out


def _worker_ours(pred_dir: Path) -> dict:
    t0 = time.perf_counter()
    from evalsuite.tasks.longbench._metric import LongBench, records_from_official

    out = {"import_s": time.perf_counter() - t0, "datasets": {}}
    for path in _files(pred_dir):
        dataset = path.name.split(".")[0]
        t = time.perf_counter()
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        res = LongBench(dataset=dataset).score(records_from_official(dataset, rows))
        out["datasets"][dataset] = {"score": res.details["official"], "seconds": time.perf_counter() - t,
                                    "rouge_errors": res.details.get("rouge_errors"),
                                    "buckets": res.details.get("buckets")}
    return out


def _child_cpu() -> float:
    """CPU seconds (user + sys) of the finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


CPU: dict[str, list[float]] = {"e2e": [], "cli": []}
"""Per-round CPU seconds of the two whole-process sides (a busy machine distorts these far less)."""


def _run_json(cmd: list[str]) -> tuple[dict, float]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def _cli_end_to_end(pred_dir: Path, scratch: Path) -> tuple[dict, float]:
    """``evalsuite score-file <folder> --json --result-json``: (its result.json, wall seconds)."""
    exe = Path(sys.executable).with_name("evalsuite")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "evalsuite.cli"]
    result = scratch / "evalsuite_result.json"
    result.unlink(missing_ok=True)
    t, cpu = time.perf_counter(), _child_cpu()
    proc = subprocess.run(cmd + ["score-file", str(pred_dir), "--json", "--result-json", str(result)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    CPU["cli"].append(_child_cpu() - cpu)
    if proc.returncode != 0:
        raise SystemExit(f"evalsuite score-file failed:\n{proc.stderr[-3000:]}")
    json.loads(proc.stdout)  # the --json document parses
    return json.loads(result.read_text()), wall


def _official_end_to_end(py: str, official_dir: str, scratch: Path) -> tuple[dict, float]:
    result = scratch / "pred" / "run" / "result.json"
    result.unlink(missing_ok=True)
    t, cpu = time.perf_counter(), _child_cpu()
    proc = subprocess.run([py, str(Path(official_dir) / "eval.py"), "--model", "run"], cwd=scratch,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    CPU["e2e"].append(_child_cpu() - cpu)
    if proc.returncode != 0:
        raise SystemExit(f"official eval.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(result.read_text()), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official-dir", help="folder with LongBench/eval.py and metrics.py (not committed)")
    ap.add_argument("--official-python", default="/tmp/lbvenv/bin/python",
                    help="Python with rouge 1.0.1, jieba 0.42.1, fuzzywuzzy 0.18.0 (no python-Levenshtein), numpy")
    ap.add_argument("--pred-dir", type=Path, default=DEFAULT_PRED,
                    help="folder of <dataset>.jsonl prediction files (pred.py's format)")
    ap.add_argument("--expected", type=Path, default=None,
                    help="result.json with the official scores (default: <pred-dir>/result.json if present)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check-e", action="store_true",
                    help="also compare the LongBench-E length buckets with eval.py's scorer_e (untimed)")
    ap.add_argument("--worker", choices=["official", "official-e", "ours"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker in ("official", "official-e"):
        print(json.dumps(_worker_official(args.official_dir, args.pred_dir, args.worker == "official-e")))
        return
    if args.worker == "ours":
        print(json.dumps(_worker_ours(args.pred_dir)))
        return
    if not args.official_dir or not (Path(args.official_dir) / "eval.py").is_file():
        raise SystemExit("--official-dir must hold LongBench/eval.py and metrics.py (see --help)")

    files = _files(args.pred_dir)
    if not files:
        raise SystemExit(f"no .jsonl files in {args.pred_dir}")
    expected_path = args.expected or (args.pred_dir / "result.json")
    expected = json.loads(expected_path.read_text()) if expected_path.is_file() else None
    me = str(Path(__file__).resolve())
    ours_cmd = [sys.executable, me, "--worker", "ours", "--pred-dir", str(args.pred_dir)]
    off_cmd = [args.official_python, me, "--worker", "official", "--official-dir", args.official_dir,
               "--pred-dir", str(args.pred_dir)]
    print(f"{len(files)} files from {args.pred_dir}; {os.cpu_count()} CPUs; {args.rounds} rounds")

    e2e, cli_wall, off_wall, our_wall = [], [], [], []
    per_off: dict[str, list[float]] = {p.stem: [] for p in files}
    per_our: dict[str, list[float]] = {p.stem: [] for p in files}
    mismatches: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "pred" / "run").mkdir(parents=True)
        for p in files:  # eval.py writes result.json next to the predictions: work on a copy
            shutil.copyfile(p, scratch / "pred" / "run" / p.name)
        _official_end_to_end(args.official_python, args.official_dir, scratch)  # warm-up: jieba's cache
        _cli_end_to_end(args.pred_dir, scratch)  # warm-up: evalsuite's dictionary cache
        for r in range(args.rounds):
            order = ("e2e", "cli", "official", "ours") if r % 2 == 0 else ("ours", "official", "cli", "e2e")
            for side in order:
                if side == "e2e":
                    official_scores, wall = _official_end_to_end(args.official_python, args.official_dir, scratch)
                    e2e.append(wall)
                elif side == "cli":
                    cli_scores, wall = _cli_end_to_end(args.pred_dir, scratch)
                    cli_wall.append(wall)
                elif side == "official":
                    off, wall = _run_json(off_cmd)
                    off_wall.append(wall)
                    for d, v in off["datasets"].items():
                        per_off[d].append(v["seconds"])
                else:
                    ours, wall = _run_json(ours_cmd)
                    our_wall.append(wall)
                    for d, v in ours["datasets"].items():
                        per_our[d].append(v["seconds"])
            print(f"round {r}: official eval.py {e2e[-1]:.2f}s | evalsuite score-file {cli_wall[-1]:.2f}s | "
                  f"official per-dataset process {off_wall[-1]:.2f}s | evalsuite per-dataset process "
                  f"{our_wall[-1]:.2f}s")
            for d in per_off:
                want = {official_scores.get(d), off["datasets"][d]["score"]}
                if expected is not None:
                    want.add(expected.get(d))
                if len(want) != 1 or ours["datasets"][d]["score"] not in want or cli_scores.get(d) not in want:
                    mismatches.add(d)
            if set(cli_scores) != set(official_scores):
                mismatches.add("(result.json keys)")

    print(f"\n{'dataset':<22}{'official s':>11}{'evalsuite s':>13}{'ratio':>8}  {'score':>8}  equal  rouge_errors")
    t_off = t_our = 0.0
    for d in per_off:
        mo, mu = statistics.median(per_off[d]), statistics.median(per_our[d])
        t_off, t_our = t_off + mo, t_our + mu
        errs = ours["datasets"][d]["rouge_errors"]
        print(f"{d:<22}{mo:>11.3f}{mu:>13.3f}{mu / mo if mo else float('nan'):>8.2f}  "
              f"{ours['datasets'][d]['score']:>8}  {'no' if d in mismatches else 'yes':<5}  "
              f"{'' if errs is None else errs}")
    print(f"{'total (scoring)':<22}{t_off:>11.3f}{t_our:>13.3f}{t_our / t_off:>8.2f}")
    me2e, mcli = statistics.median(e2e), statistics.median(cli_wall)
    mow, muw = statistics.median(off_wall), statistics.median(our_wall)
    print(f"\nmedian wall, whole process: official eval.py {me2e:.2f}s, evalsuite score-file {mcli:.2f}s; "
          f"per-dataset runs: official {mow:.2f}s, evalsuite {muw:.2f}s")
    ratios = [c / e for c, e in zip(cli_wall, e2e)]
    print(f"ratio evalsuite score-file / official eval.py, whole process: {mcli / me2e:.3f} (median of the "
          f"per-round ratios {statistics.median(ratios):.3f}; target <= 0.12)")
    ce, cc = statistics.median(CPU["e2e"][1:]), statistics.median(CPU["cli"][1:])  # [0]: the warm-ups
    print(f"median CPU seconds, whole process: official eval.py {ce:.2f}s, evalsuite score-file {cc:.2f}s, "
          f"ratio {cc / ce:.3f}")
    print(f"scores equal on {len(per_off) - len(mismatches)}/{len(per_off)} datasets"
          + (f" (official result.json {expected_path})" if expected is not None else "")
          + (f"; DIFFER: {', '.join(sorted(mismatches))}" if mismatches else ""))
    if args.check_e:
        off_e, _ = _run_json([args.official_python, me, "--worker", "official-e", "--official-dir",
                              args.official_dir, "--pred-dir", str(args.pred_dir)])
        differ = []
        for d, v in off_e["datasets"].items():
            # eval.py's empty bucket is NaN; ours is None (null in JSON).
            want = {k: None if x != x else x for k, x in v["score"].items()}
            if ours["datasets"][d]["buckets"] != want:
                differ.append(d)
                print(f"  {d}: scorer_e {want} evalsuite {ours['datasets'][d]['buckets']}")
        mismatches.update(differ)
        print(f"LongBench-E buckets equal to scorer_e on {len(off_e['datasets']) - len(differ)}/"
              f"{len(off_e['datasets'])} datasets")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
