"""COMET throughput: evalsuite's COMET plugin vs unbabel-comet's ``comet-score`` with its default settings.

Data: the 2,000 DRT test pairs as (src = en, ref = zh, mt = the reference with a deterministic ~10 %
character perturbation), newlines inside a segment replaced by a space so the CLI's line files align.
Model: a tiny random COMET checkpoint built offline (``evalsuite/metrics/_comet_tiny.py``), CPU only.

Sides, alternated ``--repeats`` times in one run (ratio of medians):

* ``cli``:  ``comet-score -s src -t mt -r ref --model <ckpt> --quiet --only_system`` (defaults:
  batch_size 16, gpus 1 -> CPU here, embedding cache on, model.half(), length batching by source length).
* ``ours``: ``Comet(model=<ckpt>, python=<comet env>).score(records)`` from this environment: worker
  subprocess, identical triples once, length-sorted batches of 64 (CPU default), fp32.

Both wall times include starting Python and importing comet; CPU seconds (user + sys, ours including
this process's part) are reported beside them, as a busy machine distorts them less. Scoring only is compared in one process
inside the COMET environment, alternating sides ``--repeats`` times: ``predict`` = upstream
``model.predict(samples)`` with its API defaults (batch_size 16, fp32, length batching by source length)
on an already loaded model, vs ``ours`` = the worker's ``score()`` (which also loads the checkpoint each
time) with batch 64.

    .venv/bin/python benchmarks/comet_throughput.py --python ~/.cache/evalsuite/comet-env/bin/python
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evalsuite.metrics.comet import Comet, default_env_dir, env_python  # noqa: E402
from evalsuite.types import Generation, Record, Sample  # noqa: E402

DRT = REPO.parent / "shared" / "data" / "drt-o1" / "data" / "test.jsonl"

PREDICT = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
from evalsuite.metrics import _comet_worker as worker
from comet import load_from_checkpoint
ckpt, data = sys.argv[1], json.load(open(sys.argv[2]))
model = load_from_checkpoint(ckpt, local_files_only=True)
res = {"predict": [], "ours": []}
for rep in range(int(sys.argv[4])):
    for side in (("predict", "ours") if rep % 2 == 0 else ("ours", "predict")):
        t0 = time.perf_counter()
        if side == "predict":
            model.predict(data, batch_size=16, gpus=0, progress_bar=False)
        else:
            worker.score({"model": ckpt, "items": data, "batch_size": 64, "device": "cpu", "local_files_only": True})
        res[side].append(time.perf_counter() - t0)
print(json.dumps(res))
"""


def _cpu() -> float:
    """CPU seconds (user + sys) of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def triples() -> list[dict[str, str]]:
    rng = random.Random(11)
    out = []
    for line in DRT.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        ref = r["zh"].replace("\n", " ")
        chars = list(ref)
        for _ in range(max(1, len(chars) // 10)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice(chars)
        out.append({"src": r["en"].replace("\n", " "), "mt": "".join(chars), "ref": ref})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=str(env_python(default_env_dir())), help="COMET environment interpreter")
    ap.add_argument("--ckpt", help="COMET checkpoint (default: build the tiny one in a temp folder)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="our batch size (default: the plugin's)")
    a = ap.parse_args()
    py = Path(a.python)
    data = triples()
    with tempfile.TemporaryDirectory(prefix="comet-bench-") as d:
        d = Path(d)
        ckpt = a.ckpt
        if not ckpt:
            text = d / "text.jsonl"
            text.write_text("\n".join(DRT.read_text(encoding="utf-8").splitlines()[:600]) + "\n", encoding="utf-8")
            r = subprocess.run([str(py), "-I", str(REPO / "evalsuite/metrics/_comet_tiny.py"), str(d / "tiny"),
                                "--text", str(text)], capture_output=True, text=True, check=True)
            ckpt = r.stdout.strip().splitlines()[-1]
        for k in ("src", "mt", "ref"):
            (d / f"{k}.txt").write_text("\n".join(t[k] for t in data) + "\n", encoding="utf-8")
        records = [Record(Sample(str(i), i, None, t["ref"], {"source": t["src"]}), t["mt"], Generation(t["mt"], "stop"))
                   for i, t in enumerate(data)]
        comet_score = py.with_name("comet-score")
        cli_cmd = [str(comet_score), "-s", str(d / "src.txt"), "-t", str(d / "mt.txt"), "-r", str(d / "ref.txt"),
                   "--model", str(ckpt), "--quiet", "--only_system"]
        (d / "data.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        (d / "predict.py").write_text(PREDICT)
        times: dict[str, list[float]] = {"cli": [], "ours": []}
        cpu: dict[str, list[float]] = {"cli": [], "ours": []}  # child CPU s (user + sys); ours adds our own
        score_only: list[float] = []
        values: dict[str, float] = {}
        for rep in range(a.repeats):
            for side in (("cli", "ours") if rep % 2 == 0 else ("ours", "cli")):
                t0, c0 = time.perf_counter(), _cpu()
                if side == "cli":
                    out = subprocess.run(cli_cmd, capture_output=True, text=True, check=True)
                    values["cli"] = float(out.stdout.strip().split()[-1])
                else:
                    res = Comet(model=str(ckpt), python=str(py), batch_size=a.batch_size).score(records)
                    values["ours"] = res.value / 100
                    score_only.append(res.details["timings"]["score_s"])
                times[side].append(time.perf_counter() - t0)
                cpu[side].append(_cpu() - c0)
                print(f"rep {rep} {side}: {times[side][-1]:.1f} s", file=sys.stderr)

        out = subprocess.run([str(py), "-I", str(d / "predict.py"), str(ckpt), str(d / "data.json"), str(REPO),
                              str(a.repeats)], capture_output=True, text=True, check=True)
        inproc = json.loads(out.stdout.strip().splitlines()[-1])
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "n_segments": len(data), "device": "cpu", "checkpoint": "tiny random COMET (regression_metric)",
        "wall_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "median_wall_s": {k: round(v, 2) for k, v in med.items()},
        "segments_per_s": {k: round(len(data) / v, 1) for k, v in med.items()},
        "ratio_cli_over_ours": round(med["cli"] / med["ours"], 2),
        "cpu_s": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
        "ratio_cli_over_ours_cpu": round(statistics.median(cpu["cli"]) / statistics.median(cpu["ours"]), 2),
        "ours_score_only_s": [round(x, 2) for x in score_only],
        "in_process_s": {k: [round(x, 2) for x in v] for k, v in inproc.items()},
        "ratio_predict16_over_ours_in_process": round(statistics.median(inproc["predict"])
                                                      / statistics.median(inproc["ours"]), 2),
        "system_score": values,
        "note": "comet-score runs the model in half precision (model.half()); ours in fp32, so the system "
                "scores differ slightly",
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
