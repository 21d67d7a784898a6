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
    correct = vals.pop("correctness")  # its judge question has no verdict in the file: a failed call, left out
    assert scores["n"] == 1 and vals == {"citation_f1_mean": 0.0, "citation_rec": 100.0, "citation_prec": 0.0}
    assert correct != correct and next(m for m in scores["metrics"] if m["name"] == "correctness")[
        "details"]["n_judge_errors"] == 1
    from evalsuite.tasks.longbench_cite import LongBenchCiteTask

    task = type("T", (LongBenchCiteTask,), {"name": "longbench_cite/hotpotqa", "dataset": "hotpotqa"})(
        data_file=str(tmp_path / "lbc.json"))
    (sample,) = list(task.samples())
    prompt = task.request(sample).prompt
    assert "<C0>Ann met Bob. <C1>Bob left." in prompt and "<<" not in prompt.split("<C0>")[1]


# -- correctness (upstream eval_correct.py) ------------------------------------------------------------

LBC_FIX = __import__("pathlib").Path(__file__).parents[2] / "fixtures" / "longbench_cite"

# Produced by upstream, not by us: THUDM/LongCite@d7d772e `LongBench-Cite/eval_correct.py` (unmodified,
# imported from a scratch checkout outside this repository), its `process()` run on each fixture row with
# `query_llm` replaced by a fake judge answering from fixtures/longbench_cite/verdicts.jsonl (stop strings
# applied) and `random.seed(str(idx))` before each row; its per-row `score`, then its aggregation (datasets
# matched by substring, so "multifieldqa" pools en and zh; the average leaves out the two halves).
UPSTREAM_SCORE = {1: 0.8, 2: 0.3, 3: 1.0, 4: 0.5, 5: 1.0, 6: 0.5, 7: 1.0, 8: 0.75, 9: 0.0}
UPSTREAM_DATASET = {"longbench-chat": 0.55, "multifieldqa_en": 0.75, "multifieldqa_zh": 1.0, "hotpotqa": 0.5,
                    "dureader": 1.0, "gov_report": 0.375}
UPSTREAM_AVG = 0.6516666666666666


def test_correctness_equals_upstream_eval_correct(cli, tmp_path):
    import json

    r = cli("run", "--tasks", "longbench_cite", "--backend", "replay", "-B", f"file={LBC_FIX / 'replay.jsonl'}",
            "-T", f"data_file={LBC_FIX / 'LongBench-Cite.synthetic.json'}", "--run-id", "c", "--json",
            "--no-progress", "--judge-backend", "replay", "-J", f"file={LBC_FIX / 'verdicts.jsonl'}",
            "-J", "missing=empty")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for ds, want in UPSTREAM_DATASET.items():
        s = out["scores"][f"longbench_cite/{ds}"]
        m = {x["name"]: x for x in s["metrics"]}
        assert m["correctness"]["value"] == pytest.approx(100 * want, abs=1e-9), ds
        # beside the citation metrics (judged too; these verdicts are not in the file: unparseable, left out)
        assert {"citation_f1_mean", "citation_rec", "citation_prec"} <= set(m)
    per = [json.loads(x) for x in (tmp_path / "results" / "c" / "longbench_cite" / "longbench-chat" /
                                   "per_sample.jsonl").read_text().splitlines()]
    assert {p["sample_id"]: p["metrics"]["correctness"] for p in per} == {"1": 0.8, "2": 0.3}
    summ = {x["name"]: x for x in out["summaries"]}
    assert summ["longbench_cite avg correctness"]["value"] == round(100 * UPSTREAM_AVG, 2)
    assert summ["longbench_cite avg correctness"]["datasets"]["multifieldqa"] == pytest.approx(100 * 0.8333, abs=0.01)


def test_correctness_judge_prompts_are_upstreams_bytes():
    """Our judge messages equal the ones upstream's process() sent (recorded in upstream_judge_prompts.jsonl),
    the few-shot order included (upstream seeded with random.seed(str(idx)), ours random.Random(str(idx)))."""
    import json

    from evalsuite.tasks.longbench_cite import LongBenchCiteTask
    from evalsuite.tasks.longbench_cite._correct import LongBenchCiteCorrectness

    sent = {(d["idx"], d["j"]): d for d in map(json.loads, (LBC_FIX / "upstream_judge_prompts.jsonl").read_text().splitlines())}
    preds = {d["sample_id"]: d["output"] for d in map(json.loads, (LBC_FIX / "replay.jsonl").read_text().splitlines())}
    checked = 0
    for ds in UPSTREAM_DATASET:
        task = type("T", (LongBenchCiteTask,), {"name": f"longbench_cite/{ds}", "dataset": ds})(
            data_file=str(LBC_FIX / "LongBench-Cite.synthetic.json"))
        records = [Record(s, preds[s.id], Generation(preds[s.id], "stop")) for s in task.samples()]
        for rec, qs in zip(records, LongBenchCiteCorrectness(ds).queries(records)):
            for j, q in enumerate(qs):
                up = sent[(int(rec.sample.id), j)]
                assert [m.to_dict() for m in q.prompt] == up["messages"], (ds, rec.sample.id, j)
                assert list(q.stop) == (up["stop"] or []) and q.max_tokens == 1024
                checked += 1
    assert checked == 10


def test_correctness_rating_rules():
    from evalsuite.tasks.longbench_cite._correct import clean_answer, rating, rating_to_score

    assert rating("x [[1]] y [[3]]") == 3 and rating("[[Rating: 2/3]]") == 2 and rating("[[2.5]]") is None
    assert rating("no brackets") is None
    assert (rating_to_score("hotpotqa", 3), rating_to_score("gov_report", 5), rating_to_score("longbench-chat", 7)) \
        == (1.0, 1.0, 0.7)
    assert clean_answer("<statement>A<cite>[0-1]</cite></statement> B") == "A B"


def test_correctness_prompt_files_are_upstream_literals():
    import hashlib

    from evalsuite.tasks.longbench_cite import PROMPTS

    # the values of the string literals in LongBench-Cite/eval_correct.py at THUDM/LongCite@d7d772e (blob
    # d0d53356), read with ast.literal_eval
    want = {"correct_system_prompt.txt": "8a43fdc4d9903c31df6987a8aa178a16e2f559ae0ee1b4998a809bc00beaa620",
            "correct_qa_prompt_template.txt": "af800e57d109de825dabd671aadabd6c2c85a8ea4c4269b41cd6c9e10ad91fb7",
            "correct_summ_prompt_template.txt": "4a438c865c900c477d371d942c189e8035eea340f4e21ba262ad2a36122570fd",
            "correct_fewshot_prompt_template.txt": "ea57e2caadf1d5d663dac3deefdec65974b65f689e3f8ed2d488afa922de4b96"}
    for name, sha in want.items():
        assert hashlib.sha256((PROMPTS / name).read_bytes()).hexdigest() == sha, name
