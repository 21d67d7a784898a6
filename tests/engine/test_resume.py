"""Nothing is lost: SIGKILL at a random moment, re-run the same command, same result as uninterrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env


def _answers(path: Path, n: int) -> Path:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(json.dumps({"task": "toy/addition", "index": i, "output": str(a + b + (i % 4 == 0))}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _cmd(answers: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "toy", "-T", "n=60",
            "--backend", "replay", "-B", f"file={answers}", "-B", "delay=0.02", "-B", "missing=empty",
            "--run-id", run_id, "--json", "--no-progress"]


def _rows(run: Path, task: str) -> list[dict]:
    p = run / task / "samples.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", 60)
    env = cli_env()
    ref = subprocess.run(_cmd(answers, "ref"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    ref_scores = json.loads(ref.stdout)["scores"]
    assert 0 < ref_scores["toy/addition"]["value"] < 100

    rng = random.Random(int(time.time()))
    run = tmp_path / "results" / "killed"
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen(_cmd(answers, "killed"), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.3, 1.2))  # interpreter start + some generations
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        rows = _rows(run, "toy/addition")
        keys = [r["key"] for r in rows]
        assert len(keys) == len(set(keys)), "duplicate generations after a kill"
    assert kills >= 1
    before = {r["key"]: r["time"] for r in _rows(run, "toy/addition")}

    final = subprocess.run(_cmd(answers, "killed"), cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    out = json.loads(final.stdout)
    assert out["n_resumed"] >= len(before) - 0  # everything persisted before the kills was reused
    rows = _rows(run, "toy/addition")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 60
    # completed generations were never regenerated (same timestamp as when first written)
    after = {r["key"]: r["time"] for r in rows}
    assert all(after[k] == t for k, t in before.items())
    assert len(_rows(run, "toy/upper")) == 4
    for task in ("toy/addition", "toy/upper"):
        for field in ("value", "n", "n_errors"):
            assert out["scores"][task][field] == ref_scores[task][field]
    per_ref = (tmp_path / "results/ref/toy/addition/per_sample.jsonl").read_text().splitlines()
    per_new = (run / "toy/addition/per_sample.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "key"} for x in lines]  # noqa: E731
    assert strip(per_ref) == strip(per_new)
