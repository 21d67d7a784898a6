"""`evalsuite run` of one RULER essay-haystack task at 32K, before and after two changes of issue 22:

* Punkt without nltk's package: the sentence splitter used to import ``nltk`` (whose ``__init__`` imports
  most of nltk, scipy.stats among it) and the ``punkt`` package; now it loads the two module files on
  their own (evalsuite/text.py);
* requests carry planning's token count: the scripted backends used to encode every 32K prompt again
  only to record its length; now they take ``Request.token_count`` (RULER's fit counted that prompt).

Both sides run the same command in a fresh process (``python -c`` calling ``evalsuite.cli.main``); the
"before" side first restores the old behaviour: it imports ``nltk`` and ``punkt.data.english`` as the old
splitter did (``evalsuite.text`` then uses the already-imported nltk and those parameters, as the old code's
``from nltk.tokenize.punkt import`` / ``from punkt.data import english`` did) and makes the scripted backends count with ``len(request_ids(...))`` again. Sides alternate; each
round also reports the child's CPU seconds (user + sys), which a busy shared machine distorts far less
than wall time. Prints medians and the ratios after / before.

    .venv/bin/python benchmarks/ruler_essay_run.py --rounds 5 --limit 10
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ESSAYS = REPO.parent / "shared" / "data" / "ruler" / "essays" / "PaulGrahamEssays.json"

OLD_PUNKT = """
import nltk, punkt.data.english  # what the old splitter imported
import evalsuite.text as splitter
splitter.english_parameters = lambda: punkt.data.english  # and where it took the parameters from
"""
OLD_COUNT = """
import evalsuite.backends.scripted as sc
from evalsuite.tokenizer import request_ids
sc.request_token_count = lambda tok, req: len(request_ids(tok, req))  # the old count: encode again
"""
PRELUDES = {"before": OLD_PUNKT + OLD_COUNT, "punkt-only": OLD_COUNT, "after": ""}
"""before: both old; punkt-only: the new splitter, backends still encode again; after: both new."""

RUN = """
import sys
{prelude}
from evalsuite.cli import main
sys.exit(main({args!r}))
"""


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(side: str, args: list[str]) -> tuple[float, float, str]:
    code = RUN.format(prelude=PRELUDES[side], args=args)
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="ruler/niah_single_2", help="a RULER task with an essay haystack")
    ap.add_argument("--length", type=int, default=32768)
    ap.add_argument("--limit", type=int, default=10, help="samples per run")
    ap.add_argument("--backend", default="gold", help="a scripted backend: gold, echo")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the embedded SmolLM2's)")
    ap.add_argument("--data-file", default=str(ESSAYS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--breakdown", action="store_true",
                    help="also a middle side (new splitter, old counting) to split the saving between the two")
    args = ap.parse_args()
    if args.tokenizer is None:
        from evalsuite.backends.embedded import ensure_tokenizer

        args.tokenizer = str(ensure_tokenizer())

    sides = ["before", "after"] + (["punkt-only"] if args.breakdown else [])
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    outputs: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0 warms the caches (data, tokenizer) and is not counted
            for side in (sides if r % 2 == 0 else sides[::-1]):
                out = Path(tmp) / f"{side}-{r}"
                cli = ["run", "--tasks", args.task, "--backend", args.backend, "--model", args.tokenizer,
                       "-T", f"length={args.length}", "-T", f"data_file={args.data_file}", "--limit",
                       str(args.limit), "--output", str(out), "--run-id", "bench", "--no-progress", "--json"]
                w, c, stdout = _run(side, cli)
                scores = json.loads(stdout)["scores"]
                outputs[side] = json.dumps({k: v.get("metrics") for k, v in scores.items()}, sort_keys=True)
                prompt_tokens = [json.loads(x)["prompt_tokens"] for x in
                                 (next(out.rglob("samples.jsonl"))).read_text().splitlines() if x.strip()]
                outputs[side + "_tokens"] = json.dumps(prompt_tokens)
                shutil.rmtree(out)
                if r:
                    wall[side].append(w)
                    cpu[side].append(c)
            if r:
                print(f"round {r}: " + " | ".join(f"{k} {wall[k][-1]:.2f}s wall / {cpu[k][-1]:.2f}s cpu"
                                                  for k in sides), flush=True)
    mb, ma = statistics.median(wall["before"]), statistics.median(wall["after"])
    cb, ca = statistics.median(cpu["before"]), statistics.median(cpu["after"])
    print(f"\n{args.task} at {args.length} tokens, {args.limit} samples, backend {args.backend}, {args.rounds} rounds")
    print(f"median wall: before {mb:.2f}s, after {ma:.2f}s, after/before {ma / mb:.3f} (saved {mb - ma:.2f}s)")
    print(f"median CPU:  before {cb:.2f}s, after {ca:.2f}s, after/before {ca / cb:.3f} (saved {cb - ca:.2f}s)")
    if args.breakdown:
        mp, cp = statistics.median(wall["punkt-only"]), statistics.median(cpu["punkt-only"])
        print(f"breakdown (CPU): Punkt without nltk's init saves {cb - cp:.2f}s, planned token counts "
              f"{cp - ca:.2f}s (wall {mb - mp:.2f}s / {mp - ma:.2f}s)")
    same = all(outputs[k] == outputs["after"] and outputs[k + "_tokens"] == outputs["after_tokens"]
               for k in sides)
    print(f"scores and recorded prompt_tokens identical: {'yes' if same else 'NO'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
