"""Cost of the shared loader's nesting check (evalsuite.datafiles.parse_json) against json.loads alone.

The check used to scan the text character by character in Python whenever it held more than 200 brackets
(nearly every data file and long JSONL line); it now walks the parsed containers. One synthetic document of
about 68 MB (8,000 records with long escaped strings and a few nested fields), best of ``--reps``:

    python benchmarks/json_depth_check.py
"""

from __future__ import annotations

import argparse
import json
import time

from evalsuite import datafiles


def best(fn, reps: int) -> float:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=8000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rows = [{"id": i, "context": "word \"q\" \\ " * 600, "answers": [{"a": [1, 2, {"b": "x"}]}], "nested": {"k": [i]}}
            for i in range(a.records)]
    text = json.dumps(rows)
    loads = best(lambda: json.loads(text), a.reps)
    checked = best(lambda: datafiles.parse_json(text, "bench"), a.reps)
    print(f"document {len(text) / 1e6:.1f} MB, {a.records} records, best of {a.reps}")
    print(f"json.loads            {loads:.3f} s")
    print(f"datafiles.parse_json  {checked:.3f} s   ratio {checked / loads:.2f}x (the check costs {checked - loads:.3f} s)")


if __name__ == "__main__":
    main()
