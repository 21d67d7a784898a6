"""L-CiteEval: rule-based niah / counting_stars scoring (hand-computed), length buckets, the 1-shot prompt
layout, and `--backend gold` end to end on synthetic rows in the released schema (the prompt files are not
shipped: the upstream repository has no license, so the test writes one in the documented schema)."""

from __future__ import annotations

import json

import pytest

from evalsuite.tasks.lciteeval._rule import counting_stars_citation, niah_citation
from evalsuite.tasks.lciteeval import gen_budget, length_bucket, make_item

DOCS = [{"text": "filler one"}, {"text": "the needle is 7421 here"}, {"text": "filler two"}]


@pytest.mark.parametrize("out,want", [
    ("7421 [2]", (1.0, 1.0, 1.0)),
    ("7421 [2][1]", (1.0, 0.5, 2 * 0.5 / 1.5)),
    ("7421 [2][2]", (1.0, 0.5, 2 * 0.5 / 1.5)),        # duplicates kept, as upstream
    ("7421 [1][3]", (0.0, 0.0, 0.0)),
    ("7421\n[2]", (0.0, 0.0, 0.0)),                     # only the first line counts
    ("7421 [1][3][4][2]", (0.0, 0.0, 0.0)),             # at most three citations
])
def test_niah_rule(out, want):
    assert niah_citation(out, DOCS, "7421") == pytest.approx(want)


def test_niah_answer_in_no_doc_scores_zero():
    assert niah_citation("x [1]", DOCS, "nowhere") == (0.0, 0.0, 0.0)


STAR_DOCS = [{"text": "a"}, {"text": "The little penguin counted 3 ★"}, {"text": "b"},
             {"text": "The little penguin counted 5 ★"}]


@pytest.mark.parametrize("out,want", [
    ('{"little_penguin": [3, 5], "passage_id": [2, 4]}', (1.0, 1.0, 1.0)),
    ('Answer: {"little_penguin": [3], "passage_id": [2, 2, 1]} done', (0.5, 0.5, 0.5)),
    ('{"little_penguin": [3]}', (0.0, 0.0, 0.0)),
    ('no json here', (0.0, 0.0, 0.0)),
    ('{"passage_id": ["2"]}', (0.0, 0.0, 0.0)),           # strings do not match ids, as upstream
])
def test_counting_stars_rule(out, want):
    assert counting_stars_citation(out, STAR_DOCS) == pytest.approx(want)


def test_buckets_and_budgets():
    assert length_bucket("hotpotqa", 7999, "l-citeeval") == 8000
    assert length_bucket("hotpotqa", 8000, "l-citeeval") == 16000
    assert length_bucket("multi_news", 45000, "l-citeeval") == 40000
    assert length_bucket("hotpotqa", 50000, "l-citeeval") is None
    assert length_bucket("hotpotqa", 20000, "length") == 32000
    assert (gen_budget("hotpotqa"), gen_budget("niah"), gen_budget("narrativeqa"), gen_budget("gov_report")) == \
        (200, 128, 800, 800)


PROMPT = {"instruction": "Cite passages like [1][2].", "demo_sep": "\n\n",
          "demo_prompt": "{D}\n\n{INST}\n\nQuestion: {Q}\nAnswer: {A}", "doc_prompt": "Passage [{ID}]: {P}\n",
          "demos": [{"question": "dq", "answer": "da [1]", "docs": ["demo chunk"]}]}


def test_prompt_layout():
    assert make_item(PROMPT["demos"][0], PROMPT["demo_prompt"], PROMPT["doc_prompt"], "I", False) == \
        "Passage [1]: demo chunk\n\n\nI\n\nQuestion: dq\nAnswer:da [1]"
    assert make_item({"question": "q", "docs": ["c1", "c2"]}, PROMPT["demo_prompt"], PROMPT["doc_prompt"], "I",
                     True) == "Passage [1]: c1\nPassage [2]: c2\n\n\nI\n\nQuestion: q\nAnswer:"


@pytest.mark.parametrize("task", ["niah", "counting_stars"])
def test_gold_backend_rule_tasks_score_100(cli, tmp_path, task):
    (tmp_path / "prompt.json").write_text(json.dumps(PROMPT))
    if task == "niah":
        rows = [{"id": 1, "question": "What is the number?", "answer": "7421",
                 "docs": ["x", "the needle is 7421", "y"], "length": 9000},
                {"id": 2, "question": "What is the number?", "answer": "55", "docs": ["55 here", "z"], "length": 100}]
    else:
        rows = [{"id": 1, "question": "count", "answer": [3, 5], "length": 9000,
                 "docs": ["a", "The little penguin counted 3 ★", "The little penguin counted 5 ★"]}]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    r = cli("run", "--tasks", f"lciteeval/{task}", "--backend", "gold", "-T", "data_file=data.json",
            "-T", "prompt_file=prompt.json", "--run-id", "r")
    assert r.returncode == 0, r.stderr
    scores = json.loads((tmp_path / "results" / "r" / "lciteeval" / task / "scores.json").read_text())
    vals = {m["name"]: m for m in scores["metrics"]}
    assert vals["citation_f1_mean"]["value"] == pytest.approx(100.0)
    assert vals["citation_rec"]["value"] == pytest.approx(100.0)
    assert set(vals["citation_prec"]["details"]["by_length_bucket"]) == \
        ({"16000", "8000"} if task == "niah" else {"16000"})


def test_missing_prompt_file_names_the_option(cli, tmp_path):
    (tmp_path / "data.json").write_text(json.dumps([{"id": 1, "question": "q", "answer": "a", "docs": ["a"]}]))
    r = cli("run", "--tasks", "lciteeval/hotpotqa", "--backend", "gold", "-T", "data_file=data.json")
    assert r.returncode != 0 and "prompt_file" in r.stderr


# -- correctness (upstream eval_correct.py), beside the citation metrics -------------------------------

CORRECT_FIX = __import__("pathlib").Path(__file__).parents[2] / "fixtures" / "lciteeval"

# Produced by upstream, not by us: ZetangForward/L-CITEEVAL@6e49326 `script/eval_correct.py`, run from a
# scratch copy outside this repository with `--exp l-citeeval --shot 1` on fixtures/lciteeval/<task>.json as
# the reference file and the replay outputs as `generation`. Two changes were needed to run it at all: the
# NameError `low_bound` (line 110, for `lower_bound`) fixed, and its unused Llama-3.1 tokenizer download
# stubbed. Its result JSON ("all" = the value; the rest = length buckets); see fixtures/lciteeval/README.md.
UPSTREAM_CORRECT = {
    "hotpotqa": {"answer_f1": {"8000": 100.0, "16000": 58.33, "24000": 57.14, "32000": 0.0, "all": 54.76},
                 "answer_precision": {"8000": 100.0, "16000": 41.67, "24000": 40.0, "32000": 0.0, "all": 44.67},
                 "answer_recall": {"8000": 100.0, "16000": 100.0, "24000": 100.0, "32000": 0.0, "all": 80.0}},
    "gov_report": {"rouge_l": {"16000": 41.67, "24000": 21.43, "all": 31.55}},
    "niah": {"rouge_1_recall": {"8000": 100.0, "16000": 16.67, "all": 44.44}},
    "counting_stars": {"accuracy": {"8000": 66.67, "16000": 100.0, "24000": 100.0, "all": 66.67}},
}


@pytest.mark.parametrize("task", sorted(UPSTREAM_CORRECT))
def test_correctness_metrics_equal_upstream_eval_correct(cli, tmp_path, task):
    (tmp_path / "prompt.json").write_text(json.dumps(PROMPT))
    r = cli("run", "--tasks", f"lciteeval/{task}", "--backend", "replay",
            "-B", f"file={CORRECT_FIX / f'replay_{task}.jsonl'}", "-T", f"data_file={CORRECT_FIX / f'{task}.json'}",
            "-T", f"prompt_file={tmp_path / 'prompt.json'}", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"][f"lciteeval/{task}"]
    got = {m["name"]: m for m in s["metrics"]}
    for name, want in UPSTREAM_CORRECT[task].items():
        d = got[name]["details"]
        assert d["official"] == want["all"], (task, name)
        buckets = d.get("by_length_bucket_as_upstream_prints") or d["by_length_bucket"]
        assert buckets == {k: v for k, v in want.items() if k != "all"}, (task, name)
    # side by side with the citation metrics: computed by rule (niah, counting_stars) or waiting for a judge
    if task in ("niah", "counting_stars"):
        assert "citation_f1_mean" in got and s["main"] == "citation_f1_mean"
    else:
        assert {m["name"] for m in s["skipped_metrics"]} >= {"citation_f1_mean", "citation_rec", "citation_prec"}
    if task == "counting_stars":  # the true per-bucket means: a parse failure scores 0 in its bucket too
        assert got["accuracy"]["details"]["by_length_bucket"]["16000"] == 50.0


def test_correctness_rules():
    from evalsuite.tasks.lciteeval._correct import (counting_stars_accuracy, qa_scores, strip_citations,
                                                    summary_rouge_l)

    assert strip_citations("A [1][2] b [3] | c.") == "A b c."
    # each of F1 / precision / recall is the best over the answers separately
    # tokens: rhine river in basel. "Rhine": P 1/4, R 1, F1 0.4; "Rhine river Basel city": P 3/4, R 3/4, F1 3/4
    f1, p, r = qa_scores("the Rhine river in Basel", ["Rhine", "Rhine river Basel city"])
    assert (f1, p, r) == pytest.approx((0.75, 0.75, 1.0))
    assert qa_scores("1999 it was", 1999)[2] == 1.0  # int answers are read as text
    assert summary_rouge_l("In summary no colon here", "x y") == 0.0  # upstream `continue`
    assert summary_rouge_l("[1]", "x") == 0.0
    assert counting_stars_accuracy('{"little_penguin": [1, 1]}', STAR_DOCS) == 0.0
    assert counting_stars_accuracy('{"little_penguin": [3, 3]}', STAR_DOCS) == 1.0  # duplicates count
    assert counting_stars_accuracy('{"little_penguin": 3}', STAR_DOCS) == 0.0  # upstream: TypeError


def test_newline_stop_is_a_token_stop_as_upstreams_vllm_call(tmp_path, smollm2_tokenizer_dir):
    # upstream inference_1shot_vllm.py: stop_token_ids = tokenizer.encode("\n", add_special_tokens=False) (+ EOS)
    from evalsuite.registry import Registry
    from evalsuite.task import TaskContext
    from evalsuite.tasks import lciteeval
    from evalsuite.tokenizer import load_tokenizer

    (tmp_path / "prompt.json").write_text(json.dumps(PROMPT))
    (tmp_path / "data.json").write_text(json.dumps([{"id": 1, "question": "q", "answer": "a", "docs": ["c"],
                                                     "length": 10}]))
    reg = Registry()
    lciteeval.register(reg)
    smol = load_tokenizer(smollm2_tokenizer_dir)

    def params(tok, **opts):
        t = reg.task("lciteeval/hotpotqa").factory(data_file=str(tmp_path / "data.json"),
                                                   prompt_file=str(tmp_path / "prompt.json"), **opts)
        t.prepare(TaskContext(tokenizer=tok))
        return t.request(next(iter(t.samples()))).params, t

    p, t = params(smol)
    assert (p.stop_token_ids, p.stop, t.version) == ((198,), (), "2")
    assert t.describe()["stop_token_ids"] == [198]
    assert params(None)[0].stop == ("\n",) and params(None)[0].stop_token_ids == ()  # no tokenizer: the string
    assert params(smol, stop_newline="string")[0].stop == ("\n",)
    assert params(smol, stop_newline="true")[0].stop == ("\n",)  # version 1's meaning
    assert params(smol, stop_newline="false")[0].stop == () and params(smol, stop_newline="false")[0].stop_token_ids == ()


def test_a_json_array_with_a_utf8_bom_is_read_as_an_array(tmp_path):
    from evalsuite.registry import Registry
    from evalsuite.task import TaskContext
    from evalsuite.tasks import lciteeval

    (tmp_path / "prompt.json").write_text(json.dumps(PROMPT))
    rows = [{"id": 1, "question": "q", "answer": "a", "docs": ["c"], "length": 10}]
    (tmp_path / "data.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    reg = Registry()
    lciteeval.register(reg)
    t = reg.task("lciteeval/hotpotqa").factory(data_file=str(tmp_path / "data.json"),
                                               prompt_file=str(tmp_path / "prompt.json"))
    t.prepare(TaskContext(tokenizer=None))
    got = list(t.samples())
    assert [s.id for s in got] == ["1"] and got[0].target["answer"] == "a"
