"""Harness overhead: a full `evalsuite run` against calling the same backend directly on the same requests.

Both sides share one loaded backend (model load is excluded from both). The direct side hands the
backend the planned requests in batches of ``backend.batch_size``, in the order the runner uses
(longest prompt first). The harness side is ``evalsuite.runner.run`` end to end: planning (RULER
sample generation and length fitting), the resume check, persistence of every generation, scoring and
the manifest. Rounds alternate (direct, harness, direct, harness, ...) because the machine is shared
and noisy; the ratio is taken from the medians.

    python benchmarks/overhead.py                      # embedded SmolLM2, 24 RULER requests at 1024 tokens
    python benchmarks/overhead.py --n 32 --rounds 3 --length 2048
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from evalsuite.registry import default_registry
from evalsuite.runner import RunConfig, build_backend, plan, run
from evalsuite.store import ResultsStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="ruler/niah_single_1")
    ap.add_argument("--n", type=int, default=24, help="requests per round (>= 20)")
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="embedded")
    ap.add_argument("--model", default=None)
    ap.add_argument("-B", dest="bopts", action="append", default=[], help="backend option key=value")
    args = ap.parse_args()

    reg = default_registry()
    base = RunConfig(tasks=[args.task], backend=args.backend, model=args.model, limit=args.n,
                     task_options={"length": str(args.length)},
                     backend_options=dict(kv.split("=", 1) for kv in args.bopts), progress=False)
    t0 = time.perf_counter()
    backend = build_backend(reg, base)
    print(f"backend {backend.id} loaded in {time.perf_counter() - t0:.1f}s")
    _, items, _ = plan(reg, base, backend)
    items.sort(key=lambda it: -it.request.prompt_chars())
    reqs = [it.request for it in items]
    print(f"{len(reqs)} requests, batch_size {backend.batch_size}")

    # warm-up (first-call kernel and allocator costs belong to neither side)
    backend.generate(reqs[: min(2, len(reqs))])

    direct, harness, own = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            # alternate which side goes first: the first pass of a round pays for a cold cache
            for side in (("direct", "harness") if r % 2 == 0 else ("harness", "direct")):
                if side == "direct":
                    t = time.perf_counter()
                    outs = []
                    for s in range(0, len(reqs), backend.batch_size):
                        outs += backend.generate(reqs[s:s + backend.batch_size])
                    direct.append(time.perf_counter() - t)
                    outputs_direct = {it.sample.id: g.text for it, g in zip(items, outs)}
                else:
                    cfg = RunConfig(**{**base.__dict__, "run_id": f"bench{r}", "output": out})
                    t = time.perf_counter()
                    outcome = run(cfg, registry=reg, backend=backend)
                    harness.append(time.perf_counter() - t)
                    own.append(harness[-1] - outcome.timings["generate_s"])
            print(f"round {r}: direct {direct[-1]:.2f}s  harness {harness[-1]:.2f}s  "
                  f"(plan {outcome.timings['plan_s']:.2f}s, generate {outcome.timings['generate_s']:.2f}s, "
                  f"score {outcome.timings['score_s']:.2f}s)  score {outcome.scores[args.task]['value']:.1f}")
            rows = {row["sample_id"]: row["generation"]["text"]
                    for row in ResultsStore(out, f"bench{r}").rows(args.task)}
            same = sum(rows[k] == v for k, v in outputs_direct.items())
            print(f"         identical outputs: {same}/{len(items)}")
    backend.close()
    md, mh = statistics.median(direct), statistics.median(harness)
    print(f"median direct {md:.2f}s, median harness {mh:.2f}s, overhead ratio {mh / md:.3f} (target <= 1.05)")
    mo = statistics.median(own)
    print(f"harness time outside generation (plan, resume check, manifest, scoring): median {mo:.2f}s "
          f"= {100 * mo / md:.2f}% of the direct time")


if __name__ == "__main__":
    main()
