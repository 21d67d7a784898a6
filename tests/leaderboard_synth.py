"""Synthetic results folders in the results store's layout, for leaderboard and gate tests and for
``benchmarks/leaderboard_build.py``. Clearly synthetic: backend ``synthetic``, tasks ``synth_*``.

Each run is written with :class:`evalsuite.store.ResultsStore` and the scores come from evalsuite's own
stats helpers, so the files have exactly the shape ``evalsuite run`` writes.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Sequence

from evalsuite.stats import bootstrap_ci, stderr
from evalsuite.store import ResultsStore, atomic_write_json

LENGTHS = (4096, 8192, 16384, 32768)
DEPTHS = tuple(round(100 * i / 9, 2) for i in range(10))
BUCKETS = ("0-4k", "4-8k", "8k+")


def _h(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def write_run(root: Path, run_id: str, tasks: Sequence[str], n: int, skill: float, seed: int,
              boot: int = 200) -> Path:
    """One run: ``tasks`` named ``synth_ruler/*`` get RULER-style length/depth details, others
    LongBench-E-style buckets. Per-sample 0/1 scores with P(correct) = skill, lower at long lengths."""
    rng = random.Random(seed)
    store = ResultsStore(root, run_id)
    manifest = {"run_id": run_id, "created": "2026-01-01T00:00:00+00:00", "evalsuite_version": "0.1.0",
                "backend": {"id": f"synthetic:{run_id}", "model": f"synthetic-model-{run_id}"},
                "tasks": {}}
    for t in tasks:
        ruler = t.startswith("synth_ruler/")
        manifest["tasks"][t] = {"version": "1", "options": {},
                                "describe": {"name": t, "version": "1", "data_sha256": _h("data", t)}}
        per_sample, log, vals = [], [], []
        for i in range(n):
            length = LENGTHS[i % len(LENGTHS)]
            depth = DEPTHS[(i // len(LENGTHS)) % len(DEPTHS)]
            p = skill - (0.1 * LENGTHS.index(length) if ruler else 0.0)
            v = 1.0 if rng.random() < p else 0.0
            vals.append(v)
            key = _h(run_id, t, i)
            meta = {"length": length, "depths": [depth]} if ruler else {"length": (i * 37) % 12000}
            target = [f"answer-{i}"]
            pred = target[0] if v else f"wrong-{i}"
            per_sample.append({"sample_id": str(i), "index": i, "key": key, "prediction": pred, "flags": [],
                               "error": None, "metrics": {"acc": v}, "metadata": meta})
            log.append({"key": key, "task": t, "sample_id": str(i), "index": i, "stage": 0, "parent": None,
                        "next": None, "prompt_sha256": _h("prompt", t, i), "prompt_chars": 1000 + i,
                        "prompt_tokens": length, "truncated": False, "params": {"max_tokens": 32},
                        "backend": f"synthetic:{run_id}",
                        "sample": {"target": target, "metadata": meta},
                        "generation": {"text": pred, "finish_reason": "stop", "error": None}})
        scaled = [100 * v for v in vals]
        details: dict = {"scale": 100.0}
        if ruler:
            by_len: dict[str, list[float]] = {}
            grid: dict[str, dict[str, list[float]]] = {}
            for row, v in zip(per_sample, vals):
                L, d = str(row["metadata"]["length"]), str(row["metadata"]["depths"][0])
                by_len.setdefault(L, []).append(v)
                grid.setdefault(L, {}).setdefault(d, []).append(v)
            details["by_length"] = {k: 100 * sum(x) / len(x) for k, x in by_len.items()}
            details["by_depth_length"] = {L: {d: 100 * sum(x) / len(x) for d, x in row.items()}
                                          for L, row in grid.items()}
        else:
            b: dict[str, list[float]] = {k: [] for k in BUCKETS}
            for row, v in zip(per_sample, vals):
                L = row["metadata"]["length"]
                b["0-4k" if L < 4000 else "4-8k" if L < 8000 else "8k+"].append(v)
            details["buckets"] = {k: (round(100 * sum(x) / len(x), 2) if x else None) for k, x in b.items()}
        ci = bootstrap_ci(scaled, n_resamples=boot, seed=0)
        scores = {"task": t, "version": "1",
                  "metrics": [{"name": "acc", "value": sum(scaled) / n, "signature": "acc|scale:100|v:1",
                               "higher_is_better": True, "stderr": stderr(scaled), "ci95": list(ci) if ci else None,
                               "details": details}],
                  "main": "acc", "value": sum(scaled) / n, "n": n, "n_planned": n, "n_missing": 0, "n_errors": 0,
                  "n_truncated": 0, "n_unterminated_think": 0, "scored_at": "2026-01-01T00:00:00+00:00"}
        store.append(t, log)
        atomic_write_json(store.task_dir(t) / "plan.json", {"task": t, "keys": [r["key"] for r in log]})
        store.write_scores(t, scores, per_sample)
    store.write_manifest(manifest)
    return store.dir


def write_results(root: Path, n_runs: int, n_tasks: int, n_samples: int) -> list[Path]:
    n_ruler = n_tasks // 2
    tasks = [f"synth_ruler/t{i:02d}" for i in range(n_ruler)] + \
            [f"synth_lb/t{i:02d}" for i in range(n_tasks - n_ruler)]
    return [write_run(root, f"run{r:02d}", tasks, n_samples, skill=0.5 + 0.45 * r / max(1, n_runs - 1),
                      seed=1000 + r) for r in range(n_runs)]
