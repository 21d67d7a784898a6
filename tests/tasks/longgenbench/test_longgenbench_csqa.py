"""LongGenBench (Liu et al.) CommonsenseQA: our port (the upstream repo has no CSQA code or prompt).

The data is a SYNTHETIC file in the official CommonsenseQA dev jsonl schema (``answerKey``, ``id``,
``question: {question_concept, choices: [{label, text}], stem}``), written by the tests; no real CSQA item is
used. Expected scores are worked out by hand from the extraction rules (comments show the reasoning)."""

from __future__ import annotations

import hashlib
import json

import pytest

from evalsuite.errors import UserError
from evalsuite.registry import Registry
from evalsuite.tasks.longgenbench_liu import (CSQA_EXEMPLARS, GSM8K_SYSTEM, _make, csqa_exemplar_pairs,
                                              csqa_question_text, register)
from evalsuite.tasks.longgenbench_liu._extract import mmlu_pred, official_score, robust_score

CSQA_SHA256 = "6269c0cbad34de112b4c7fd03eacbd6860d16a68dffe4711b3e4a62e706ec2d5"  # SOURCE.md
from csqa_fixture import GOLDS, N, synthetic_rows  # noqa: E402


@pytest.fixture
def csqa_file(tmp_path):
    p = tmp_path / "dev_rand_split.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    return p


def ans(n, text):
    return f"Answer_{n}:\n{text}\n\n"


# -- extraction ----------------------------------------------------------------------------------------

def test_letters_a_to_e():
    # robust: "The answer is X" first, then the last "(X)", then the last standalone letter; E is a choice
    assert mmlu_pred("So the answer is (E).", "csqa") == "E"
    assert mmlu_pred("The answer is E", "csqa") == "E"
    assert mmlu_pred("(E) fits best", "csqa") == "E"
    assert mmlu_pred("I pick E", "csqa") == "E"
    assert mmlu_pred("So the answer is (E).", "mmlu") is None  # the MMLU letter set stays A-D
    assert robust_score("csqa", ans(8, "So the answer is (E).") + ans(9, "The answer is (B)."), ["E", "A"], 8) == (1, 2)
    # official: the last capital of A-E anywhere in "A_model:Q_<i>\n<answer>\n"
    assert official_score("csqa", ans(8, "So the answer is (E)."), ["E"]) == (1, 1)
    # ... so a capital E later in the text wins over the stated answer (MMLU's A-D would not see it)
    assert official_score("csqa", ans(8, "The answer is (B). Eiffel"), ["B"]) == (0, 1)
    assert official_score("mmlu", ans(8, "The answer is (B). Eiffel"), ["B"]) == (1, 1)
    assert robust_score("csqa", ans(8, "The answer is (B). Eiffel"), ["B"], 8) == (1, 1)
    # with no letter in the answer the "A" of "A_model" is read
    assert official_score("csqa", ans(8, "no idea"), ["A"]) == (1, 1)


# -- prompt ---------------------------------------------------------------------------------------------

def test_exemplar_file_byte_exact_and_parsed():
    raw = CSQA_EXEMPLARS.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == CSQA_SHA256
    pairs = csqa_exemplar_pairs(raw.decode("utf-8"))
    assert len(pairs) == 7
    assert pairs[0] == ("What do people use to absorb extra ink from a fountain pen? Answer Choices: (A) shirt "
                        "pocket (B) calligrapher's hand (C) inkwell (D) desk drawer (E) blotter",
                        "The answer must be an item that can absorb ink. Of the above choices, only blotters "
                        "are used to absorb ink. So the answer is (E).")
    # the fox exemplar keeps Wei et al.'s published answer (b), as the source file does
    assert pairs[2][1].endswith("only natural habitat is in the forest. So the answer is (B).")


def test_prompt_layout_and_length_order(csqa_file):
    task = _make("csqa", False)(data_file=str(csqa_file))
    samples = list(task.samples())
    # defaults K=40, T=20: 45 items give a batch of 40 and one of 5
    assert [len(s.input["questions"]) for s in samples] == [40, 5]
    s = samples[0]
    rows = synthetic_rows()
    texts = [csqa_question_text(r["question"]["stem"], [(c["label"], c["text"]) for c in r["question"]["choices"]])
             for r in rows[:40]]
    # ascending by length: items 1..39, then item 0 (the longest)
    assert s.metadata["source_indices"] == list(range(1, 40)) + [0]
    assert s.input["questions"] == texts[1:] + texts[:1]
    assert s.target["robust"] == list(GOLDS[1:40]) + ["A"]
    req = task.request(s)
    system, user = req.prompt
    assert system.content == GSM8K_SYSTEM.read_text()
    pairs = csqa_exemplar_pairs(CSQA_EXEMPLARS.read_text())
    block = ("".join(f"Question_{i + 1}:\n{q}\n\n" for i, (q, _) in enumerate(pairs))
             + "".join(f"Answer_{i + 1}:\n{a}\n\n" for i, (_, a) in enumerate(pairs)))
    expected = ("Examples: \n" + block + "Following Question: \n"
                + "".join(f"Question_{8 + i}:\n{q}\n\n" for i, q in enumerate(texts[1:] + texts[:1])))
    assert user.content == expected
    assert texts[1] == ("Synthetic question 1: where is a very ordinary thing kept? Answer Choices: (A) option a "
                        "of item 1 (B) option b of item 1 (C) option c of item 1 (D) option d of item 1 (E) option "
                        "e of item 1")
    assert req.params.max_tokens == 4096 and req.params.temperature == 0
    # dataset order keeps the file order
    ds = next(iter(_make("csqa", False)(data_file=str(csqa_file), order="dataset").samples()))
    assert ds.input["questions"] == texts
    # the baseline: exemplars interleaved, then one question numbered 8
    base = _make("csqa", True)(data_file=str(csqa_file), k=2, batches=1)
    bs = list(base.samples())
    assert len(bs) == 2
    buser = base.request(bs[0]).prompt[1].content
    assert buser.startswith("Examples: \nQuestion_1:\n" + pairs[0][0] + "\n\nAnswer_1:\n" + pairs[0][1]
                            + "\n\nQuestion_2:\n")
    assert buser.endswith("Answer_7:\n" + pairs[6][1] + "\n\nFollowing Question: \nQuestion_8:\n"
                          + bs[0].input["question"] + "\n\n")


def test_hub_schema_rows_read_alike(tmp_path):
    rows = synthetic_rows(3)
    hub = [{"id": r["id"], "question": r["question"]["stem"], "question_concept": r["question"]["question_concept"],
            "choices": {"label": [c["label"] for c in r["question"]["choices"]],
                        "text": [c["text"] for c in r["question"]["choices"]]},
            "answerKey": r["answerKey"]} for r in rows]
    a, b = tmp_path / "official.jsonl", tmp_path / "hub.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows))
    b.write_text("".join(json.dumps(r) + "\n" for r in hub))
    sa, sb = (next(iter(_make("csqa", False)(data_file=str(p)).samples())) for p in (a, b))
    assert sa.input == sb.input and sa.target == sb.target


def test_unlabelled_rows_and_offline_hub_fail_fast(tmp_path):
    test_split = tmp_path / "test_rand_split_no_answers.jsonl"
    row = synthetic_rows(1)[0]
    del row["answerKey"]
    test_split.write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match="CommonsenseQA record"):
        list(_make("csqa", False)(data_file=str(test_split)).samples())
    row["answerKey"] = ""  # the hub's test split: empty keys
    test_split.write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match="answerKey ''"):
        list(_make("csqa", False)(data_file=str(test_split)).samples())
    # conftest sets HF_HUB_OFFLINE=1: no data given -> the hub id, refused with the local-file option named
    for baseline in (False, True):
        with pytest.raises(UserError, match=r"tau/commonsense_qa.*-T data_file="):
            list(_make("csqa", baseline)().samples())


def test_registered_in_group():
    reg = Registry()
    register(reg)
    assert {"longgenbench_liu/csqa", "longgenbench_liu/csqa_baseline"} <= set(reg.tasks)
    assert {"longgenbench_liu/csqa", "longgenbench_liu/csqa_baseline"} <= set(reg.groups["longgenbench_liu"])


# -- CLI --------------------------------------------------------------------------------------------------

def test_cli_gold_replay_and_offline(cli, csqa_file, tmp_path):
    r = cli("run", "--tasks", "longgenbench_liu/csqa,longgenbench_liu/csqa_baseline", "--backend", "gold",
            "-T", f"data_file={csqa_file}", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    s = out["scores"]["longgenbench_liu/csqa"]
    m = {x["name"]: x for x in s["metrics"]}
    assert s["n"] == 2 and m["accuracy"]["details"]["questions"] == N
    assert m["accuracy"]["value"] == 100.0 and m["accuracy_official"]["value"] == 100.0
    b = out["scores"]["longgenbench_liu/csqa_baseline"]
    assert b["n"] == N and b["metrics"][0]["value"] == 100.0
    summ = {x["name"]: x["value"] for x in out["summaries"]}
    assert summ["longgenbench_liu csqa delta (accuracy)"] == 0.0
    assert summ["longgenbench_liu csqa delta (accuracy_official)"] == 0.0

    # replay, one batch of the first 5 items in file order (golds A B E E C), Answer_9 skipped.
    # robust: 8 A, 10 E, 11 E, 12 C right, 9 missing -> 4/5 = 80.
    # official: the 4 answers pair with questions 8..11 by position: A=A, E!=B, E=E, C!=E -> 2/4 = 50.
    replay = tmp_path / "r.jsonl"
    output = (ans(8, "The answer must be kept. So the answer is (A).") + ans(10, "So the answer is (E).")
              + ans(11, "So the answer is (E).") + ans(12, "So the answer is (C)."))
    replay.write_text(json.dumps({"task": "longgenbench_liu/csqa", "index": 0, "output": output}) + "\n")
    common = ["-T", f"data_file={csqa_file}", "-T", "k=5", "-T", "batches=1", "-T", "order=dataset",
              "--json", "--no-progress"]
    r = cli("run", "--tasks", "longgenbench_liu/csqa", "--backend", "replay", "-B", f"file={replay}", *common)
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["longgenbench_liu/csqa"]["metrics"]}
    assert m["accuracy"]["value"] == 80.0 and m["accuracy"]["details"]["answered"] == 4
    assert m["accuracy_official"]["value"] == 50.0 and m["accuracy_official"]["details"]["answered"] == 4
    assert m["accuracy_official"]["details"]["accuracy_over_all_questions"] == 40.0

    # no data, hub offline: fails fast naming the local-file option
    r = cli("run", "--tasks", "longgenbench_liu/csqa", "--backend", "gold", "--json", "--no-progress")
    assert r.returncode != 0 and "-T data_file=" in r.stderr and "tau/commonsense_qa" in r.stderr
