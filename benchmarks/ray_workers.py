"""Ray data parallel on this machine: the same requests in one process, through 1 Ray worker and
through 2 Ray workers (each worker holds its own warm copy of the backend; on a local cluster the
machine's cores are split between workers).

    python benchmarks/ray_workers.py [--requests 32] [--max-tokens 24] [--backend embedded] [--reps 2]

Prints wall times (generation only: engine load reported separately) and the ratios, all taken in
one run. With ``--reps R`` the three modes alternate R times and the fastest of each is compared, which
keeps load from other processes on a shared machine from landing on one mode only. Real task: RULER niah_single_1 at 512 tokens, greedy, a fixed --max-tokens for every request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from evalsuite.runner import RunConfig, build_backend, run  # noqa: E402
from evalsuite.registry import default_registry  # noqa: E402


def one(args: argparse.Namespace, out: str, workers: int, ray_mode: bool, rep: int = 0) -> dict:
    cfg = RunConfig(tasks=["ruler/niah_single_1"], task_options={"length": "512", "num_samples": str(args.requests)},
                    backend=args.backend, model=args.model, max_tokens=args.max_tokens, output=out,
                    run_id=f"w{workers}{'r' if ray_mode else 'p'}-{rep}", progress=False,
                    workers=workers if ray_mode else 1)
    if ray_mode and workers == 1:
        from evalsuite.executors.ray_pool import RayPool

        t0 = time.perf_counter()
        backend = RayPool(args.backend, args.model, {}, workers=1)
        load = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        backend = build_backend(default_registry(), cfg)
        load = time.perf_counter() - t0
    try:
        res = run(cfg, backend=backend)
    finally:
        backend.close()
    texts = {}
    with open(os.path.join(res.run_dir, "ruler", "niah_single_1", "samples.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            texts[r["key"]] = r["generation"]["text"]
    return {"load_s": load, "generate_s": res.timings["generate_s"], "n": res.n_generated, "texts": texts}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--backend", default="embedded")
    p.add_argument("--model", default=None)
    p.add_argument("--reps", type=int, default=1)
    args = p.parse_args()
    import ray

    runs: dict[str, list[dict]] = {"plain": [], "w1": [], "w2": []}
    with tempfile.TemporaryDirectory() as out:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for rep in range(args.reps):
                runs["plain"].append(one(args, out, 1, False, rep))
                runs["w1"].append(one(args, out, 1, True, rep))
                runs["w2"].append(one(args, out, 2, True, rep))
                print(f"rep {rep}: generate s  in-process {runs['plain'][-1]['generate_s']:.1f}  "
                      f"1 worker {runs['w1'][-1]['generate_s']:.1f}  2 workers {runs['w2'][-1]['generate_s']:.1f}",
                      flush=True)
        finally:
            ray.shutdown()
    plain, w1, w2 = (min(runs[k], key=lambda r: r["generate_s"]) for k in ("plain", "w1", "w2"))
    rows = [("in-process", plain), ("ray, 1 worker", w1), ("ray, 2 workers", w2)]
    print(f"{'mode':16s} {'load s':>8s} {'generate s':>11s} {'requests':>9s}")
    for name, r in rows:
        print(f"{name:16s} {r['load_s']:8.1f} {r['generate_s']:11.1f} {r['n']:9d}")
    print(f"speed-up, 2 workers vs 1 worker: {w1['generate_s'] / w2['generate_s']:.2f}x")
    print(f"ray 1 worker vs in-process (overhead): {w1['generate_s'] / plain['generate_s']:.3f}")
    same = sum(plain["texts"][k] == w2["texts"].get(k) for k in plain["texts"])
    print(f"identical outputs, 2 workers vs in-process: {same}/{len(plain['texts'])}")


if __name__ == "__main__":
    main()
