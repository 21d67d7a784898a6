"""RULER prompt-fitting benchmark: generate every registered RULER task at one length and report the
wall time and the tokenizer work ratio (tokens encoded while generating / tokens in the final prompts).

    .venv/bin/python benchmarks/ruler_fitting.py --length 32768 --num-samples 50

Tokenizer: the converted SmolLM2 tokenizer (``ensure_tokenizer()``) unless ``--tokenizer`` is given.
Essay haystacks: ``--data-file`` (default shared/data/ruler/essays/PaulGrahamEssays.json).
qa_1 / qa_2: ``--squad`` / ``--hotpotqa`` (the official dev files); without them, synthetic files in the
official formats are built from the essays (tests/ruler_qa_data.py, long paragraphs cut into pieces:
several hundred SQuAD paragraphs, 300 HotpotQA questions), since the real files need network.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=32768)
    ap.add_argument("--num-samples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: converted SmolLM2)")
    ap.add_argument("--data-file", default=str(REPO.parent / "shared/data/ruler/essays/PaulGrahamEssays.json"))
    ap.add_argument("--tasks", default=None, help="comma-separated subset (default: all registered)")
    ap.add_argument("--squad", default=None, help="SQuAD v2 dev JSON for qa_1 (default: synthetic)")
    ap.add_argument("--hotpotqa", default=None, help="HotpotQA dev-distractor JSON for qa_2 (default: synthetic)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not (args.squad and args.hotpotqa):
        import tempfile

        sys.path.insert(0, str(REPO / "tests"))
        from ruler_qa_data import write_hotpotqa, write_squad

        tmp = Path(tempfile.mkdtemp(prefix="ruler-qa-"))
        essays = Path(args.data_file).parent / "PaulGrahamEssays"
        args.squad = args.squad or str(write_squad(tmp / "squad.json", essays, articles=49,
                                                        split_long=True))
        args.hotpotqa = args.hotpotqa or str(write_hotpotqa(tmp / "hotpotqa.json", essays, questions=300,
                                                                 split_long=True))

    import evalsuite.tasks.ruler as ruler
    from evalsuite.registry import Registry
    from evalsuite.task import TaskContext
    from evalsuite.tokenizer import load_tokenizer

    if args.tokenizer is None:
        from evalsuite.backends.embedded import ensure_tokenizer
        tok_dir = ensure_tokenizer()
    else:
        tok_dir = Path(args.tokenizer)
    tok = load_tokenizer(tok_dir)
    reg = Registry()
    ruler.register(reg)
    names = args.tasks.split(",") if args.tasks else ruler.task_names()
    rows = []
    total_enc = total_prompt = 0
    t_all = time.perf_counter()
    for name in names:
        extra = {"qa_file": args.squad} if name == "ruler/qa_1" else \
            {"qa_file": args.hotpotqa} if name == "ruler/qa_2" else {}
        task = reg.task(name).factory(length=args.length, num_samples=args.num_samples, seed=args.seed,
                                      data_file=args.data_file, **extra)
        t0 = time.perf_counter()
        task.prepare(TaskContext(tokenizer=tok))
        samples = list(itertools.islice(task.samples(), args.num_samples))
        dt = time.perf_counter() - t0
        enc, prompt = task.encoded_tokens, task.fit_stats["prompt_tokens"]
        fit = task.fit_info() or {}
        rows.append({"task": name, "samples": len(samples), "seconds": round(dt, 2), "encoded_tokens": enc,
                     "prompt_tokens": prompt, "work_ratio": round(enc / prompt, 3) if prompt else None,
                     "search_tokenized": len(fit.get("probes", [])),
                     "search_decided": len(fit.get("decided_without_tokenizing", [])),
                     "sample_tokenized_attempts": task.fit_stats["tokenized_attempts"],
                     "max_length": max(s.metadata["length"] for s in samples)})
        total_enc += enc
        total_prompt += prompt
    wall = time.perf_counter() - t_all
    summary = {"length": args.length, "num_samples": args.num_samples, "tasks": len(names),
               "tokenizer": str(tok_dir), "wall_seconds": round(wall, 2), "encoded_tokens": total_enc,
               "prompt_tokens": total_prompt, "work_ratio": round(total_enc / total_prompt, 3)}
    if args.json:
        print(json.dumps({"summary": summary, "tasks": rows}, indent=1))
        return 0
    print(f"{'task':28} {'n':>4} {'sec':>7} {'ratio':>6} {'probes tok/skip':>15} {'attempts':>8} {'max len':>8}")
    for r in rows:
        print(f"{r['task']:28} {r['samples']:4d} {r['seconds']:7.2f} {r['work_ratio']:6.3f} "
              f"{r['search_tokenized']:>7}/{r['search_decided']:<7} {r['sample_tokenized_attempts']:8d} "
              f"{r['max_length']:8d}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
