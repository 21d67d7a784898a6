"""LongBench v2 at full size: how long planning takes and how much memory it holds.

Planning = what ``evalsuite run`` does before the first generation: read ``data.json``, build the 503
samples and requests, and middle-truncate every prompt to 120,000 tokens with the model's tokenizer (the
SmolLM2 tokenizer of the embedded model here). The real data is on the hub only, so the documents are
synthetic text of the release's length distribution (LongBench v2 paper / leaderboard: 503 items, short
180 (words 0-32k), medium 215 (32k-128k), long 108 (128k-2M), the shortest about 8k words): within each
class the word count is log-uniform over the class's range (short from 8k), words drawn from wonderwords'
lists so that tokens per word are those of English text. Seeded: every run writes the same file.

Each measurement runs ``evalsuite.runner.plan`` in a fresh subprocess (``--backend echo --model <tokenizer>``,
no generation; the tokenizer copy declares a 131,072-token window, a 128K model) and reports its wall time and peak resident memory (``ru_maxrss``), plus the memory still
held by the plan at its end (tracemalloc, Python objects only; ``--tracemalloc``, slower). ``--runs`` plans
in a row share one tokenization cache folder (``EVALSUITE_CACHE``), so the second run shows the cache.

    .venv/bin/python benchmarks/longbench_v2_planning.py                 # full size (~90M words)
    .venv/bin/python benchmarks/longbench_v2_planning.py --scale 0.05    # a quick look

``--scale`` multiplies every item's word count (the item count stays 503).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLASSES = (("short", 180, 8_000, 32_000), ("medium", 215, 32_000, 128_000), ("long", 108, 128_000, 2_000_000))


def _vocabulary() -> list[str]:
    from wonderwords import RandomWord  # a project dependency (RULER)

    return sorted(set(RandomWord().filter(include_categories=["noun", "adjective", "verb"])))


def write_data(path: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """Write a synthetic data.json (a JSON array, one row at a time) and return its shape."""
    rng = random.Random(seed)
    try:
        vocab = _vocabulary()
    except Exception:
        vocab = [f"word{i}" for i in range(5000)]
    rows, total_words = 0, 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for cls, n, lo, hi in CLASSES:
            for i in range(n):
                words = int(math.exp(rng.uniform(math.log(lo), math.log(hi))) * scale)
                total_words += words
                # sentences of 12 words, paragraphs of 6 sentences: punctuation and newlines as in real text
                parts = []
                for k in range(0, words, 12):
                    sent = " ".join(rng.choices(vocab, k=min(12, words - k)))
                    parts.append(sent.capitalize() + (".\n\n" if (k // 12) % 6 == 5 else ". "))
                row = {"_id": f"{cls}-{i:03d}", "domain": "Single-Document QA", "sub_domain": "synthetic",
                       "difficulty": "hard" if i % 3 else "easy", "length": cls,
                       "question": f"Which statement about item {i} is true?",
                       "choice_A": "alpha", "choice_B": "beta", "choice_C": "gamma", "choice_D": "delta",
                       "answer": "ABCD"[i % 4], "context": "".join(parts)}
                f.write(("," if rows else "") + json.dumps(row, ensure_ascii=False))
                rows += 1
        f.write("]")
    return {"rows": rows, "words": total_words, "bytes": path.stat().st_size}


CHILD = r"""
import json, os, resource, sys, time, tracemalloc
trace = sys.argv[3] == "1"
if trace:
    tracemalloc.start()
from evalsuite.registry import default_registry
from evalsuite.runner import RunConfig, build_backend, plan
cfg = RunConfig(tasks=["longbench_v2"], model=sys.argv[1], backend="echo",
                task_options={"data_file": sys.argv[2]}, progress=False)
reg = default_registry()
backend = build_backend(reg, cfg)
t0 = time.perf_counter()
tasks, items, entries = plan(reg, cfg, backend)
wall = time.perf_counter() - t0
held = tracemalloc.get_traced_memory()[0] if trace else None
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "held_python_mb": None if held is None else round(held / 2**20), "items": len(items),
                  "truncated": entries["longbench_v2"]["n_truncated"],
                  "prompts_sha256": entries["longbench_v2"]["prompts_sha256"]}))
"""


def measure(tokenizer: Path, data: Path, cache: Path, trace: bool) -> dict:
    env = {**os.environ, "EVALSUITE_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(tokenizer), str(data), "1" if trace else "0"],
                         capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every item's word count")
    ap.add_argument("--runs", type=int, default=2, help="plans in a row sharing one cache folder")
    ap.add_argument("--tracemalloc", action="store_true", help="also report Python memory held by the plan")
    ap.add_argument("--keep", type=Path, help="write data.json here and keep it (default: a temp folder)")
    ap.add_argument("--data", type=Path, help="plan this data.json (one written before with --keep) instead")
    args = ap.parse_args(argv)

    from evalsuite.backends.embedded import ensure_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        # SmolLM2's tokenizer declares an 8K window; a 128K model is what LongBench v2 is run with (upstream's
        # 120,000-token budget then decides the cut), so the copy declares 131072
        tok = Path(tmp) / "tokenizer-128k"
        shutil.copytree(ensure_tokenizer(), tok)
        cfg = json.loads((tok / "tokenizer_config.json").read_text())
        cfg["model_max_length"] = 131072
        (tok / "tokenizer_config.json").write_text(json.dumps(cfg))
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data = args.data or folder / "data.json"
        t0 = time.perf_counter()
        if args.data:
            shape = {"rows": None, "words": None, "bytes": data.stat().st_size}
        else:
            shape = write_data(data, args.scale)
        if not args.data:
            print(f"data: {shape['rows']} rows, {shape['words'] / 1e6:.1f}M words, {shape['bytes'] / 2**20:.0f} MiB "
                  f"(written in {time.perf_counter() - t0:.0f} s)", flush=True)
        cache = Path(tmp) / "cache"
        results = []
        for k in range(args.runs):
            r = measure(tok, data, cache, args.tracemalloc)
            results.append(r)
            print(f"plan {k + 1}: {r}", flush=True)
        if len({r['prompts_sha256'] for r in results}) != 1:
            raise SystemExit("the plans differ between runs")
        print(json.dumps({"scale": args.scale, **shape, "runs": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
