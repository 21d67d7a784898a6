"""`-B batch_size=auto` on a GPU: a real CUDA out-of-memory, halved until a batch fits (needs CUDA).

The process is limited to a fraction of the GPU's memory (``torch.cuda.set_per_process_memory_fraction``)
so that a small model runs out of it at a batch size that would fit an unrestricted card; the hf backend
must then halve from its start (64) to a size that fits, give the same answers as that fixed batch size,
and record the halvings.

    python benchmarks/gpu_auto_batch.py --model /models/Qwen2.5-0.5B-Instruct --fraction 0.02 --length 4096
"""

from __future__ import annotations

import argparse
import json
import time

from evalsuite.backends.hf import HFBackend
from evalsuite.types import GenParams, Request


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="local model folder")
    ap.add_argument("--fraction", type=float, default=0.02, help="share of GPU memory this process may use")
    ap.add_argument("--length", type=int, default=4096, help="prompt length in words (roughly tokens)")
    ap.add_argument("--n", type=int, default=64, help="requests")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    torch.cuda.set_per_process_memory_fraction(args.fraction)
    reqs = [Request("t", f"s{i}", i, " ".join(["word"] * args.length) + f" {i}", GenParams(max_tokens=8))
            for i in range(args.n)]
    b = HFBackend(args.model, batch_size="auto", device="cuda")
    t0 = time.perf_counter()
    auto = b.generate(reqs)
    t_auto = time.perf_counter() - t0
    found = b.timings()["batch_size_auto"]
    b.close()
    fixed = HFBackend(args.model, batch_size=str(found["found"]), device="cuda")
    t0 = time.perf_counter()
    ref = fixed.generate(reqs)
    t_fixed = time.perf_counter() - t0
    fixed.close()
    same = sum(a.text == r.text for a, r in zip(auto, ref))
    print(json.dumps({"found": found, "ok": sum(g.ok for g in auto), "n": len(reqs),
                      "same_answers_as_fixed": same, "auto_s": round(t_auto, 2), "fixed_s": round(t_fixed, 2)},
                     indent=2))


if __name__ == "__main__":
    main()
