"""One results schema: every file of a run folder carries ``schema_version`` (a fresh run, a judged run, a merged
run), the typed rows of ``evalsuite.rows`` read what they write and what evalsuite wrote before versions
existed, and a file from a newer evalsuite is refused with one line (exit 2) instead of being misread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.rows import SCHEMA_VERSION, JudgeRow, NewerSchema, PerSampleRow, PlanDoc, SampleRow, TaskScores
from evalsuite.store import ResultsStore
from evalsuite.types import Generation, MetricResult
from judge_replay import WU_DIR, wu_verdicts

JSON_FILES = ("manifest.json", "plan.json", "scores.json")
JSONL_FILES = ("samples.jsonl", "prompts.jsonl", "judge.jsonl", "per_sample.jsonl")


def _versions(run: Path) -> dict[str, set]:
    """file name -> the schema_version values found in every file (and line) of that name."""
    seen: dict[str, set] = {}
    for p in run.rglob("*"):
        if p.name in JSON_FILES:
            seen.setdefault(p.name, set()).add(json.loads(p.read_text()).get("schema_version"))
        elif p.name in JSONL_FILES:
            lines = p.read_text().splitlines()
            assert lines, p
            seen.setdefault(p.name, set()).update(json.loads(x).get("schema_version") for x in lines)
    return seen


def test_every_file_of_a_judged_run_carries_schema_version(cli, tmp_path):
    wu_verdicts(tmp_path / "verdicts.jsonl", limit=2)
    r = cli("run", "--tasks", "toy/addition,longgenbench_wu/short", "-T", "toy/addition.n=4",
            "-T", f"longgenbench_wu/short.data_dir={WU_DIR}", "--limit", "2", "--backend", "gold",
            "--judge-backend", "replay", "-J", "file=verdicts.jsonl", "--log-prompts", "--run-id", "r",
            "--no-progress")
    assert r.returncode == 0, r.stderr
    seen = _versions(tmp_path / "results" / "r")
    assert set(seen) == set(JSON_FILES) | set(JSONL_FILES)  # the judge log included
    assert all(v == {SCHEMA_VERSION} for v in seen.values()), seen


def test_a_merged_run_carries_schema_version(cli, tmp_path):
    for i in range(2):
        r = cli("run", "--tasks", "toy/addition", "-T", "n=6", "--backend", "gold", "--run-id", f"s{i}",
                "--shard", f"{i}/2", "--no-progress")
        assert r.returncode == 0, r.stderr
    r = cli("merge", "results/s0", "results/s1", "--run-id", "m")
    assert r.returncode == 0, r.stderr
    seen = _versions(tmp_path / "results" / "m")
    assert set(seen) == {"manifest.json", "plan.json", "scores.json", "samples.jsonl", "per_sample.jsonl"}
    assert all(v == {SCHEMA_VERSION} for v in seen.values()), seen


@pytest.mark.parametrize("where", ["scores.json", "samples.jsonl", "manifest.json"])
def test_a_file_from_a_newer_evalsuite_is_refused_in_one_line(cli, tmp_path, where):
    r = cli("run", "--tasks", "toy/addition", "-T", "n=3", "--backend", "gold", "--run-id", "r", "--no-progress")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r"
    path = run / where if where == "manifest.json" else run / "toy" / "addition" / where
    if where.endswith(".jsonl"):
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        rows[1]["schema_version"] = SCHEMA_VERSION + 1
        path.write_text("".join(json.dumps(x) + "\n" for x in rows))
    else:
        doc = json.loads(path.read_text())
        doc["schema_version"] = SCHEMA_VERSION + 1
        path.write_text(json.dumps(doc))
    r = cli("score", "results/r") if where == "samples.jsonl" else cli("show", "results/r")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "newer evalsuite" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_typed_rows_round_trip_and_read_version_1():
    gen = Generation("42", "stop", prompt_tokens=7, completion_tokens=1, latency_s=0.5, flags=("prompt_reencoded",))
    row = SampleRow(key="k", generation=gen, task="toy/addition", sample_id="s0", index=0, stage=0,
                    prompt_sha256="ab", prompt_chars=3, params={"max_tokens": 4}, backend="gold",
                    target="42", metadata={"a": 1}, time="t")
    d = row.to_dict()
    assert d["schema_version"] == SCHEMA_VERSION and d["generation"]["flags"] == ["prompt_reencoded"]
    back = SampleRow.from_dict(json.loads(json.dumps(d)))
    assert back is not None and back.to_dict() == d and back.generation == gen
    # version 1: the same line without the field
    v1 = {k: v for k, v in d.items() if k != "schema_version"}
    old = SampleRow.from_dict(v1)
    assert old is not None and old.generation == gen and old["sample"]["target"] == "42"
    # a generation field Generation does not have is not a row
    bad = json.loads(json.dumps(d))
    bad["generation"]["colour"] = "red"
    assert SampleRow.from_dict(bad) is None
    with pytest.raises(NewerSchema):
        SampleRow.from_dict({**d, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(NewerSchema):
        SampleRow.from_dict({**d, "schema_version": "2"})

    j = JudgeRow(key="j", generation=Generation("yes", "stop"), query_id="q", judge="replay", params={})
    assert JudgeRow.from_dict(j.to_dict()).to_dict() == j.to_dict()
    p = PlanDoc("t", ("a", "b"), {"index": 0, "count": 2}, ("a", "b", "c"))
    assert PlanDoc.from_dict(p.to_dict()).to_dict() == p.to_dict()
    ps = PerSampleRow("s0", 0, key="k", prediction="42", flags=("x",), metrics={"m": 1.0}, stats={"bleu": [1, 2]})
    assert PerSampleRow.from_dict(ps.to_dict()).to_dict() == ps.to_dict()
    m = MetricResult("m", 0.5, "m|v:1", per_sample=(0.0, 1.0), higher_is_better=True)
    ts = TaskScores(task="t", version=1, metrics=(m.with_stats(seed=0),), main="m", value=0.5, n=2, n_planned=2,
                    complete=True, extra={"shard": {"index": 0, "count": 2}})
    d = json.loads(json.dumps(ts.to_dict()))
    back = TaskScores.from_dict(d)
    assert dict(back) == d  # the file's fields, as read
    assert back.metrics[0].ci95 == ts.metrics[0].ci95 and back.metrics[0].stderr == ts.metrics[0].stderr
    assert (back.main, back.n, back.complete, back.extra["shard"]["count"]) == ("m", 2, True, 2)
    # written again: the same fields, but a metric read back has no per-sample values, so its standard error
    # is not written again (MetricResult.to_dict)
    again = back.to_dict()
    assert {k: v for k, v in again.items() if k != "metrics"} == {k: v for k, v in d.items() if k != "metrics"}
    assert again["metrics"] == [{k: v for k, v in d["metrics"][0].items() if k != "stderr"}]


def test_a_log_resumed_by_this_version_mixes_versions_line_by_line(tmp_path):
    """An old run resumed by a newer evalsuite appends version-2 lines to a version-1 log: both read."""
    st = ResultsStore(tmp_path, "r")
    v1 = {"key": "a", "task": "t", "sample_id": "s0", "index": 0, "sample": {"target": "x", "metadata": {}},
          "generation": {"text": "", "finish_reason": "error", "error": "boom"}}
    path = st.task_dir("t") / "samples.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(v1) + "\n")
    st.append("t", [SampleRow(key="a", generation=Generation("x", "stop"), task="t", sample_id="s0", index=0,
                              target="x")])
    latest = st.latest_rows("t")
    assert latest["a"].ok and latest["a"].generation.text == "x"
    assert [json.loads(x).get("schema_version") for x in path.read_text().splitlines()] == [None, SCHEMA_VERSION]
