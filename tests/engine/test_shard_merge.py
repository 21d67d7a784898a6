"""``run --shard i/n`` + ``evalsuite merge`` equals the unsharded run (CLI, real logs)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evalsuite.errors import UserError
from evalsuite.runner import PlannedItem, parse_shard, shard_items


def _answers(path: Path, n: int) -> Path:
    rng = random.Random(3)
    lines = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(json.dumps({"task": "toy/addition", "index": i, "output": str(a + b + (i % 3 == 0))}))
    for i, w in enumerate(["ALPHA", "beta", "GAMMA", "DELTA"]):
        lines.append(json.dumps({"task": "toy/upper", "index": i, "output": w}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(cli, answers: Path, run_id: str, *extra: str) -> dict:
    res = cli("run", "--tasks", "toy", "-T", "n=23", "--backend", "replay", "-B", f"file={answers}",
              "-B", "missing=empty", "--run-id", run_id, "--json", "--no-progress", *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _strip(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if k not in {"scored_at", "log_bytes"}}  # bookkeeping


def _per_sample(run: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (run / task / "per_sample.jsonl").read_text().splitlines()]


def test_three_shards_merge_to_the_unsharded_run(cli, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", 23)
    full = _run(cli, answers, "full")
    shard_out = [_run(cli, answers, f"s{i}", "--shard", f"{i}/3") for i in range(3)]
    # each shard generated only its slice, and together exactly the whole plan
    assert sum(s["n_generated"] for s in shard_out) == full["n_generated"] == 23 + 4
    assert [s["scores"]["toy/addition"]["n"] for s in shard_out] == [8, 8, 7]
    assert [s["scores"]["toy/upper"]["n"] for s in shard_out] == [2, 1, 1]
    assert shard_out[1]["scores"]["toy/addition"]["shard"] == {"index": 1, "count": 3}

    # shards given in any order
    res = cli("merge", "results/s2", "s0", "results/s1", "--run-id", "merged", "--json")
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)["scores"]
    for task in ("toy/addition", "toy/upper"):
        assert _strip(merged[task]) == _strip(full["scores"][task])
        assert _per_sample(tmp_path / "results" / "merged", task) == _per_sample(tmp_path / "results" / "full", task)
    man_full = json.loads((tmp_path / "results" / "full" / "manifest.json").read_text())
    man = json.loads((tmp_path / "results" / "merged" / "manifest.json").read_text())
    assert "shard" not in man and [m["shard"]["index"] for m in man["merged_from"]] == [0, 1, 2]
    for task in ("toy/addition", "toy/upper"):
        for field in ("version", "prompts_sha256", "n_planned", "generation_params"):
            assert man["tasks"][task][field] == man_full["tasks"][task][field]
    # the merged run is an ordinary run: score and compare work on it
    res = cli("score", "results/merged", "--json")
    assert res.returncode == 0, res.stderr
    res = cli("compare", "results/full", "results/merged", "--json")
    assert res.returncode == 0, res.stderr


def test_merge_refuses_incomplete_or_mismatched_shards(cli, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl", 23)
    _run(cli, answers, "a0", "--shard", "0/2")
    _run(cli, answers, "a1", "--shard", "1/2")
    _run(cli, answers, "b1", "--shard", "1/2", "-T", "seed=8")  # other data: another plan
    _run(cli, answers, "c1", "--shard", "1/3")
    _run(cli, answers, "plain")

    res = cli("merge", "a0", "--run-id", "m1")
    assert res.returncode == 2 and "missing shard(s) 1/2" in res.stderr
    res = cli("merge", "a0", "a0", "--run-id", "m2")
    assert res.returncode == 2 and "given twice" in res.stderr
    res = cli("merge", "a0", "b1", "--run-id", "m3")
    assert res.returncode == 2 and "disagree" in res.stderr
    res = cli("merge", "a0", "c1", "--run-id", "m4")
    assert res.returncode == 2 and "shard count" in res.stderr
    res = cli("merge", "a0", "plain", "--run-id", "m5")
    assert res.returncode == 2 and "not a shard run" in res.stderr
    assert not any((tmp_path / "results" / m).exists() for m in ("m1", "m2", "m3", "m4", "m5"))
    res = cli("merge", "a0", "a1", "--run-id", "a1")
    assert res.returncode == 2 and "exists" in res.stderr
    # resuming a shard run as another shard is refused
    res = cli("run", "--tasks", "toy", "-T", "n=23", "--backend", "replay", "-B", f"file={answers}",
              "-B", "missing=empty", "--run-id", "a0", "--shard", "1/2", "--no-progress")
    assert res.returncode == 2 and "shard" in res.stderr


def test_killed_shard_resumes_then_merges(cli, tmp_path):
    """A shard killed part-way merges with its gap reported; resumed, it merges to the full run."""
    answers = _answers(tmp_path / "answers.jsonl", 23)
    full = _run(cli, answers, "full")
    _run(cli, answers, "k0", "--shard", "0/2")
    _run(cli, answers, "k1", "--shard", "1/2")
    log = tmp_path / "results" / "k1" / "toy" / "addition" / "samples.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:4]) + lines[4][:20])  # as if killed while writing the fifth row
    res = cli("merge", "k0", "k1", "--run-id", "early", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["scores"]["toy/addition"]["n_missing"] == len(lines) - 4
    again = _run(cli, answers, "k1", "--shard", "1/2")
    assert again["n_generated"] == len(lines) - 4 and again["n_resumed"] == 4 + 2
    res = cli("merge", "k0", "k1", "--run-id", "late", "--json")
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)["scores"]
    assert {t: _strip(s) for t, s in merged.items()} == {t: _strip(s) for t, s in full["scores"].items()}


def test_shard_slices_interleave_per_task():
    items = [PlannedItem(t, None, None, f"{t}{i}") for t in ("a", "b") for i in range(5)]  # type: ignore[arg-type]
    parts = [[it.key for it in shard_items(items, i, 2)] for i in range(2)]
    assert parts == [["a0", "a2", "a4", "b0", "b2", "b4"], ["a1", "a3", "b1", "b3"]]
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(UserError):
            parse_shard(bad)
