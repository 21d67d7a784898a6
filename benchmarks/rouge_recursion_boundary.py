"""Where the official LongBench scorer's ROUGE-L fails by recursion, measured on the real ``eval.py``, and
whether evalsuite's explicit rule (``_rouge_l.official_max_steps``) puts the boundary at the same place.

rouge 1.0.1 walks each LCS table back with one recursive call per step; inside ``python eval.py`` a walk
longer than the stack room raises RecursionError and LongBench scores the item 0. evalsuite computes
ROUGE-L without recursion and decides those pairs by the walk's length. This script builds text pairs
whose longest walk is a chosen number of steps around the predicted limit -- in several shapes (all
diagonal, one long run up, one long run left, random text, several sentences; each scores above 0 when
it does not fail) -- writes them as prediction files, runs the official ``eval.py`` on them under each given interpreter, and compares which
pairs scored 0 with what the rule predicts for that interpreter.

Official files: ``LongBench/eval.py`` and ``metrics.py`` of THUDM/LongBench at
2e00731f8d0bff23dc4325161044d0ed8af94c1e in a scratch folder outside the repository, and for each
interpreter a scratch environment with ``rouge==1.0.1 jieba==0.42.1 fuzzywuzzy==0.18.0 numpy``::

    python benchmarks/rouge_recursion_boundary.py --official-dir /tmp/lb_official \\
        --python /tmp/lbvenv/bin/python --python /tmp/lbvenv310/bin/python ...

Exits 1 when an official outcome differs from the rule's.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

EN_SLOTS = ("gov_report", "qmsum", "multi_news", "samsum")  # rouge_score datasets (one item per file)
ZH_SLOTS = ("dureader", "vcsum")  # rouge_zh_score datasets
WINDOW = 3  # walks of limit-WINDOW .. limit+WINDOW steps


def _longest_walk(hyp: str, ref: str) -> int:
    from evalsuite.tasks.longbench._rouge_l import longest_walk

    return longest_walk(hyp, ref)


def _words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _shapes(steps: int, rnd: random.Random) -> dict[str, tuple[str, str]]:
    """(hypothesis, reference) pairs whose longest walk should be ``steps`` (checked by the caller)."""
    out = {
        "diagonal": (" ".join(_words("w", steps)),) * 2,  # equal sentences: one step per word pair
        "up": ("z", " ".join(["z"] + _words("w", steps - 1))),  # up the single column, then one match
        "left": (" ".join(["z"] + _words("w", steps - 1)), "z"),  # left along the only row, then one match
        "two-sentences": ("a b c. " + " ".join(_words("w", steps)), "a c. " + " ".join(_words("w", steps))),
    }
    # Random text over a small vocabulary: grow the sentences until the walk has the wanted length.
    vocab = [f"v{i}" for i in range(12)]
    for _ in range(200):
        x = [rnd.choice(vocab) for _ in range(steps // 2 + rnd.randint(0, steps // 4))]
        y = [rnd.choice(vocab) for _ in range(steps // 2 + rnd.randint(0, steps // 4))]
        while _longest_walk(" ".join(y), " ".join(x)) < steps:
            (x if rnd.random() < 0.5 else y).append(rnd.choice(vocab))
        if _longest_walk(" ".join(y), " ".join(x)) == steps:
            out["random"] = (" ".join(y), " ".join(x))
            break
    return out


def _official_outcomes(python: str, official_dir: str, cases: list[tuple[str, str, str]]) -> list[bool]:
    """Runs eval.py over the cases (dataset, hyp, ref): one item per dataset file, so as many runs as the
    busiest dataset has cases. True where the official score is above 0, in the order of ``cases``."""
    results: list[bool] = [False] * len(cases)
    pending = list(range(len(cases)))
    while pending:
        batch, rest, used = [], [], set()
        for i in pending:
            (rest if cases[i][0] in used else batch).append(i)
            used.add(cases[i][0])
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "pred" / "m"
            run.mkdir(parents=True)
            for i in batch:
                ds, hyp, ref = cases[i]
                (run / f"{ds}.jsonl").write_text(json.dumps({"pred": hyp, "answers": [ref], "all_classes": None,
                                                             "length": 1}) + "\n", encoding="utf-8")
            proc = subprocess.run([python, str(Path(official_dir) / "eval.py"), "--model", "m"], cwd=tmp,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"eval.py failed under {python}:\n{proc.stderr[-2000:]}")
            scores = json.loads((run / "result.json").read_text())
        for i in batch:
            results[i] = scores[cases[i][0]] > 0
        pending = rest
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official-dir", required=True, help="folder with LongBench/eval.py and metrics.py")
    ap.add_argument("--python", action="append", required=True,
                    help="interpreter with rouge 1.0.1, jieba, fuzzywuzzy, numpy (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from evalsuite.tasks.longbench import _rouge_l as rl
    from evalsuite.tasks.longbench._metric import _jieba_join

    bad = 0
    for python in args.python:
        ver = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.split()
        version = (int(ver[0]), int(ver[1]))
        rnd = random.Random(args.seed)
        cases: list[tuple[str, str, str]] = []
        meta: list[tuple[str, str, int, bool]] = []
        for fn, slots in (("rouge_score", EN_SLOTS), ("rouge_zh_score", ZH_SLOTS)):
            limit = rl.official_max_steps(fn, version)
            k = 0
            for steps in range(limit - WINDOW, limit + WINDOW + 1):
                for shape, (hyp, ref) in _shapes(steps, rnd).items():
                    seg_h, seg_r = (_jieba_join(hyp), _jieba_join(ref)) if fn == "rouge_zh_score" else (hyp, ref)
                    walk = _longest_walk(seg_h, seg_r)
                    if walk != steps:
                        raise SystemExit(f"{shape}: built a walk of {walk} steps, wanted {steps}")
                    cases.append((slots[k % len(slots)], hyp, ref))
                    k += 1
                    meta.append((fn, shape, steps, steps <= limit))
        outcomes = _official_outcomes(python, args.official_dir, cases)
        print(f"\n{python} (CPython {version[0]}.{version[1]}): {len(cases)} pairs")
        summary: dict[tuple[str, str], list[tuple[int, bool, bool]]] = {}
        for i, (fn, shape, steps, predicted) in enumerate(meta):
            summary.setdefault((fn, shape), []).append((steps, outcomes[i], predicted))
        for (fn, shape), rows in summary.items():
            ok = [s for s, o, _ in rows if o]
            failed = [s for s, o, _ in rows if not o]
            agree = all(o == p for _, o, p in rows)
            bad += not agree
            print(f"  {fn:<15} {shape:<14} official: scores up to {max(ok) if ok else '-'} steps, 0 from "
                  f"{min(failed) if failed else '-'}; rule: up to {rl.official_max_steps(fn, version)}  "
                  f"{'same' if agree else 'DIFFERENT'}")
    print("\nall official outcomes equal the rule" if not bad else f"\n{bad} groups differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
