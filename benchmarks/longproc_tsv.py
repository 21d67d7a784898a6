"""Scoring time of LongProc html_to_tsv 8k with gold outputs: our set-based row matching
(tasks/longproc/_tsv.py) against a straightforward quadratic matcher (each row compared with every row
of the other table, as upstream's pandas loop does), same parsing for both.

    .venv/bin/python benchmarks/longproc_tsv.py [--data ../shared/data/longproc/data] [--level 8k]
                                                [--repeat 5] [--scale 1,2,4]

Reports the matching step alone (tables parsed once; the only part where the two differ) and the
whole scoring (extraction, parsing, normalisation, matching), wall time for all items of the level (best of ``--repeat``), the ratio quadratic / ours, and, to
show the growth in rows, both timings on tables made ``k`` times longer (rows repeated with a distinct
suffix, so no duplicates are created) for each ``k`` in ``--scale``. Also checks that both give the same
precision/recall on every item.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalsuite.tasks.longproc._tsv import TsvError, extract_tsv_block, normalize_cell, parse_tsv, score_answer  # noqa: E402


def quadratic(answer: str, reference: str) -> tuple[float, float]:
    """Precision and recall with the obvious nested loops (no hashing)."""
    text, _ = extract_tsv_block(answer)
    try:
        gt, pred = parse_tsv(reference), parse_tsv(text)
    except TsvError:
        return 0.0, 0.0
    if not pred.rows or pred.width != gt.width:
        return 0.0, 0.0
    p = sum(any(r == g for g in gt.rows) for r in pred.rows) / len(pred.rows)
    r = sum(any(g == q for q in pred.rows) for g in gt.rows) / len(gt.rows)
    return p, r


def ours(answer: str, reference: str) -> tuple[float, float]:
    s = score_answer(answer, reference)
    return s.precision, s.recall


def grow(tsv: str, k: int) -> str:
    if k == 1:
        return tsv
    lines = tsv.strip().split("\n")
    body = [f"{line}{i}" for i in range(k) for line in lines[1:]]
    return "\n".join([lines[0]] + body)


def best(fn, pairs, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        normalize_cell.cache_clear()  # both sides parse from scratch each time
        t0 = time.perf_counter()
        for a, r in pairs:
            fn(a, r)
        times.append(time.perf_counter() - t0)
    return min(times)


def match_sets(pred, gt) -> tuple[int, int]:
    gs, ps = set(gt.rows), set(pred.rows)
    return sum(r in gs for r in pred.rows), sum(g in ps for g in gt.rows)


def match_nested(pred, gt) -> tuple[int, int]:
    return (sum(any(r == g for g in gt.rows) for r in pred.rows),
            sum(any(g == q for q in pred.rows) for g in gt.rows))


def best_match(fn, tables, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p, g in tables:
            fn(p, g)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "longproc" / "data"))
    ap.add_argument("--level", default="8k")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", default="1,2,4")
    a = ap.parse_args()
    rows = json.loads((Path(a.data) / "html_to_tsv" / f"html_to_tsv_{a.level}.json").read_text(encoding="utf-8"))
    refs = [r["gt"] for r in rows]
    n_rows = sum(len(r.strip().split("\n")) - 1 for r in refs)
    print(f"html_to_tsv_{a.level}: {len(refs)} items, {n_rows} reference rows (max {max(len(r.split(chr(10))) - 1 for r in refs)})")
    for k in (int(x) for x in a.scale.split(",")):
        grown = [grow(r, k) for r in refs]
        pairs = [(f"```tsv\n{g}\n```", g) for g in grown]
        assert all(ours(x, y) == quadratic(x, y) == (1.0, 1.0) for x, y in pairs[:: max(1, len(pairs) // 40)])
        t_ours = best(ours, pairs, a.repeat)
        t_quad = best(quadratic, pairs, a.repeat)
        tables = [(parse_tsv(g), parse_tsv(g)) for g in grown]
        m_ours = best_match(match_sets, tables, a.repeat)
        m_quad = best_match(match_nested, tables, a.repeat)
        print(f"rows x{k:<3} matching only: ours {m_ours * 1000:8.1f} ms   quadratic {m_quad * 1000:9.1f} ms   "
              f"ratio {m_quad / m_ours:7.1f}")
        print(f"rows x{k:<3} ours {t_ours * 1000:9.1f} ms   quadratic {t_quad * 1000:10.1f} ms   "
              f"ratio quadratic/ours {t_quad / t_ours:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
