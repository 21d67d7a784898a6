"""LongBench-Cite: chunking, statement/cite parsing, and judged recall/precision/F1 hand-computed with a
scripted judge; the copied prompts are byte-exact."""

from __future__ import annotations

import hashlib

import pytest

from conftest import SHARED
from evalsuite.backends import BaseBackend
from evalsuite.judge import Judge, JudgeConfig
from evalsuite.tasks.longbench_cite import PROMPTS, LongBenchCiteMetric, parse_statements, split_chunks
from evalsuite.types import Generation, Record, Sample


def test_prompt_is_byte_exact_copy():
    a = (PROMPTS / "one_shot_prompt.txt").read_bytes()
    assert a == (SHARED / "data" / "citation" / "longcite" / "one_shot_prompt.txt").read_bytes()
    assert b"<<context>>" in a and b"<<question>>" in a
    for name in ("need_citation", "support", "relevant"):
        t = (PROMPTS / f"{name}_prompt_template.txt").read_text()
        assert t.count("{}") == 1 and "[[" in t


def test_chunks_cover_the_context():
    ctx = "Alpha is first. Beta is second!  Gamma third?\n\n第一句。第二句！"
    chunks = split_chunks(ctx)
    assert "".join(chunks) == ctx and len(chunks) == 5
    assert split_chunks("no sentence end\n\nsecond block") == ["no sentence end\n\n", "second block"]


def test_parse_statements_merges_clips_and_caps():
    chunks = [f"c{i} " for i in range(6)]
    ans = ("Intro text here. <statement>S1<cite>[0-1][2-2][9-9][4-3]</cite></statement>"
           "<statement>S2<cite>[0-0][2-2][4-4][5-7]</cite></statement><statement>S3<cite></cite></statement> ok")
    got = parse_statements(ans, chunks)
    assert got[0] == ("Intro text here.", [])
    assert got[1] == ("S1", ["c0 c1 c2 "])                      # [0-1]+[2-2] merge; [9-9] and [4-3] dropped
    assert got[2] == ("S2", ["c0 ", "c2 ", "c4 c5 "])            # [4-4]+[5-7 clipped to 5] merge; first 3
    assert got[3] == ("S3", [])
    assert len(got) == 4                                        # " ok" is too short to be a statement


class ScriptedJudge(BaseBackend):
    """Support: "Fully" if the snippet holds "c0", "Partially" if "c2", else "No support"; need-citation:
    yes iff the sentence says "fact"; relevance: relevant iff the snippet holds "c0" or "c4"."""

    def __init__(self):
        self.id = "scripted-gpt:1"
        self.batch_size = 1 << 30
        self.calls = 0

    def generate(self, requests):
        self.calls += 1
        out = []
        for r in requests:
            p = r.prompt
            snippet = p.split("<snippet>")[-1] if "<snippet>" in p else ""
            if "[[Fully supported]]" in p:
                v = "[[Fully supported]]" if "c0" in snippet else "[[Partially supported]]" if "c2" in snippet \
                    else "[[No support]]"
            elif "[[Relevant]]" in p:
                v = "[[Relevant]]" if ("c0" in snippet or "c4" in snippet) else "[[Unrelevant]]"
            else:
                v = "[[Yes]]" if "fact" in p.split("<sentence>")[-1] else "[[No]]"
            out.append(Generation("Rating: " + v, "stop"))
        return out


def test_scripted_judge_hand_computed(tmp_path):
    chunks = [f"c{i} " for i in range(6)]
    rec = lambda i, ans: Record(Sample(f"s{i}", i, {}, {"question": "Q", "chunks": chunks}), ans,  # noqa: E731
                                Generation(ans, "stop"))
    records = [
        # S1 cites c0 -> fully (1), relevant; S2 cites c2 and c3 -> joined snippet holds c2 -> partially (0.5),
        # c2 unrelevant, c3 unrelevant; "A fact without citation." needs one -> 0.
        # R = (1 + 0.5 + 0) / 3, P = 1/3
        rec(0, "<statement>S1<cite>[0-0]</cite></statement><statement>S2<cite>[2-2][4-4]</cite></statement>"
               "A fact without citation."),
        # only a citation-less statement that needs none: R = 1, P = 0 (no citations), F1 = 0
        rec(1, "In short, that is all."),
    ]
    be = ScriptedJudge()
    judge = Judge(be, JudgeConfig("scripted"), tmp_path / "judge.jsonl", "t")
    shared: dict = {}
    res = {n: LongBenchCiteMetric(n, shared).score(records, judge=judge)
           for n in ("citation_rec", "citation_prec", "citation_f1_mean")}
    # S2's citations: [2-2] and [4-4] are not contiguous -> two citations "c2 " and "c4 "; c4 is relevant
    r0, p0 = (1 + 0.5 + 0) / 3, 2 / 3
    assert res["citation_rec"].per_sample == pytest.approx([r0, 1.0])
    assert res["citation_prec"].per_sample == pytest.approx([p0, 0.0])
    assert res["citation_f1_mean"].per_sample == pytest.approx([2 * r0 * p0 / (r0 + p0), 0.0])
    assert be.calls == 1 and "judge:scripted-gpt:1" in res["citation_rec"].signature


def test_cli_gold_with_replay_judge(cli, tmp_path):
    import json

    rows = [{"idx": 7, "dataset": "hotpotqa", "query": "Who?", "context": "Ann met Bob. Bob left.",
             "answer": "Ann met Bob in town.", "few_shot_scores": []},
            {"idx": 8, "dataset": "gov_report", "query": "x", "context": "y.", "answer": "z"}]
    (tmp_path / "lbc.json").write_text(json.dumps(rows))
    (tmp_path / "verdicts.jsonl").write_text(json.dumps({"sample_id": "7/need/0", "output": "[[No]]"}) + "\n")
    r = cli("run", "--tasks", "longbench_cite/hotpotqa", "--backend", "gold", "-T", "data_file=lbc.json",
            "--run-id", "r", "--judge-backend", "replay", "-J", "file=verdicts.jsonl")
    assert r.returncode == 0, r.stderr
    scores = json.loads((tmp_path / "results" / "r" / "longbench_cite" / "hotpotqa" / "scores.json").read_text())
    vals = {m["name"]: m["value"] for m in scores["metrics"]}
    assert scores["n"] == 1 and vals == {"citation_f1_mean": 0.0, "citation_rec": 100.0, "citation_prec": 0.0}
    from evalsuite.tasks.longbench_cite import LongBenchCiteTask

    task = type("T", (LongBenchCiteTask,), {"name": "longbench_cite/hotpotqa", "dataset": "hotpotqa"})(
        data_file=str(tmp_path / "lbc.json"))
    (sample,) = list(task.samples())
    prompt = task.request(sample).prompt
    assert "<C0>Ann met Bob. <C1>Bob left." in prompt and "<<" not in prompt.split("<C0>")[1]
