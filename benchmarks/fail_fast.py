"""Fail fast: how long a mistake costs before `evalsuite run` says so, against loading the model.

Measured in one sitting, rounds interleaved (the machine is shared and noisy), each a fresh process as a
user would start it, on the embedded default model (SmolLM2-135M, CPU):

* ``bad -T key``: ``evalsuite run --tasks ruler/niah_single_1 --limit 8 -T lenght=1024`` (exit 2);
* ``bad -B key``: the same with ``-B batchsize=4`` (exit 2);
* ``--help``: ``evalsuite --help``, the floor any command pays (interpreter + CLI import);
* ``load``: ``backend_load_s`` recorded by a real run of the same command spelled right (``--limit 1``),
  i.e. what the mistake cost before the validate phase existed (the model loaded first).

    python benchmarks/fail_fast.py              # 5 rounds
    python benchmarks/fail_fast.py --rounds 9

Target (issue 18): a bad -T key exits 2 in under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CMD = [sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "ruler/niah_single_1", "--limit", "8"]


def timed(args: list[str], cwd: str, want: int) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    dt = time.perf_counter() - t0
    if r.returncode != want:
        raise SystemExit(f"{args[3:]} exited {r.returncode}, expected {want}:\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        # one real run first: the model is converted once (cached) and its load time recorded
        real = subprocess.run([*CMD[:-1], "1", "-T", "length=1024", "--run-id", "real", "--no-progress"], cwd=d,
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if real.returncode != 0:
            raise SystemExit(f"the reference run failed:\n{real.stderr[-2000:]}")
        load = []
        t: dict[str, list[float]] = {"bad -T key": [], "bad -B key": [], "--help": []}
        for i in range(args.rounds):
            t["bad -T key"].append(timed([*CMD, "-T", "lenght=1024"], d, 2))
            t["bad -B key"].append(timed([*CMD, "-T", "length=1024", "-B", "batchsize=4"], d, 2))
            t["--help"].append(timed([sys.executable, "-m", "evalsuite.cli", "--help"], d, 0))
            r = subprocess.run([*CMD[:-1], "1", "-T", "length=1024", "--run-id", "real", "--no-progress"], cwd=d,
                               capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            inv = json.loads((Path(d) / "results/real/manifest.json").read_text())["invocations"][-1]
            load.append(inv["timings"]["backend_load_s"])
        med = {k: statistics.median(v) for k, v in t.items()}
        med["load"] = statistics.median(load)
    print(f"{'what':<12} {'median s':>9} {'min s':>7} {'max s':>7}")
    for k, v in [*t.items(), ("load", load)]:
        print(f"{k:<12} {statistics.median(v):9.3f} {min(v):7.3f} {max(v):7.3f}")
    print(f"bad -T key / --help = {med['bad -T key'] / med['--help']:.2f}x;  "
          f"bad -T key / (--help + model load) = {med['bad -T key'] / (med['--help'] + med['load']):.3f}")
    print(f"target < 1 s: {'met' if med['bad -T key'] < 1.0 else 'MISSED'} ({med['bad -T key']:.3f} s)")


if __name__ == "__main__":
    main()
