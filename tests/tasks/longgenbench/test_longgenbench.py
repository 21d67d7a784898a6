"""LongGenBench (Liu et al.) and LongGenBench (Wu et al.): prompts as released, batching, both answer
extractions, gold runs on the copied data, the ``#*#`` parser and CR / STIC with a replay judge.
Expected values are worked out by hand from the upstream rules (comments show the reasoning)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED
from evalsuite.tasks.longgenbench_liu import (GSM8K_EXEMPLARS, MMLU_EXEMPLARS, _make, mmlu_exemplar_pairs)
from evalsuite.tasks.longgenbench_liu._extract import (official_answers, official_log, official_score,
                                                       official_tally, robust_answers, robust_score)
from evalsuite.tasks.longgenbench_wu._metric import analyse, completion_rate, parse_blocks, summarize
from evalsuite.types import Generation, Record, Sample

LIU = SHARED / "data" / "longgenbench-liu" / "data"
MMLU_DIR = LIU / "MMLU" / "data"
WU_DIR = SHARED / "data" / "longgenbench-wu" / "Dataset"


# -- Liu: extraction ---------------------------------------------------------------------------------

GOLD = ["18", "3", "70", "5"]  # questions 9..12 (GSM8K numbering)


def ans(n, text):
    return f"Answer_{n}:\n{text}\n\n"


CASES = {
    # name: (response, official (correct, answered), robust (correct, answered))
    "clean": ("".join(ans(9 + i, f"The answer is {g}.") for i, g in enumerate(GOLD)), (4, 4), (4, 4)),
    # Answer_10 skipped: officially the later answers slide onto questions 10 and 11 (70 vs 3, 5 vs 70)
    "skipped": (ans(9, "2 + 16 = 18. The answer is 18.") + ans(11, "The answer is 70.") + ans(12, "The answer is 5."),
                (1, 3), (3, 3)),
    # the first answer on its tag's line is not extracted at all: every answer shifts by one
    "same_line": ("Answer_9: The answer is 18.\n\n" + ans(10, "The answer is 3.") + ans(11, "The answer is 70.")
                  + ans(12, "The answer is 5."), (0, 3), (4, 4)),
    # a preamble ending in ":" + newline adds a phantom empty answer ("A_model:Q_0" -> 0 != 18), shifting all
    "preamble": ("Here are the answers:\n\n" + "".join(ans(9 + i, f"The answer is {g}.") for i, g in enumerate(GOLD)),
                 (0, 4), (4, 4)),
    # a blank line inside answer 9 cuts it to "Janet has 16 eggs." (16 != 18); nothing shifts
    "blank_line": ("Answer_9:\nJanet has 16 eggs.\n\nShe sells the rest. The answer is 18.\n\n"
                   + "".join(ans(10 + i, f"The answer is {g}.") for i, g in enumerate(GOLD[1:])), (3, 4), (4, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_liu_extraction_official_and_robust(name):
    text, official, robust = CASES[name]
    assert official_score("gsm8k", text, GOLD) == official
    assert robust_score("gsm8k", text, GOLD, first=9) == robust


def test_liu_official_quirks_and_robust_numbers():
    # the "Q_<i>" prefix takes part: an answer without a number at position 1 is read as "1"
    assert official_score("gsm8k", ans(9, "18") + ans(10, "no idea"), ["18", "1"]) == (2, 2)
    assert robust_score("gsm8k", ans(9, "18") + ans(10, "no idea"), ["18", "1"], 9) == (1, 2)
    # string comparison officially ("18.00" != "18"), numeric robustly; commas removed in both
    assert official_score("gsm8k", ans(9, "The answer is 18.00."), ["18"]) == (0, 1)
    assert robust_score("gsm8k", ans(9, "The answer is $1,800.00."), ["1800"], 9) == (1, 1)
    # MMLU: the last capital A-D anywhere officially ("DNA" -> A), "The answer is (X)" robustly
    assert official_score("mmlu", ans(6, "The answer is (B). DNA"), ["B"]) == (0, 1)
    assert robust_score("mmlu", ans(6, "The answer is (B). DNA"), ["B"], 6) == (1, 1)
    assert robust_score("mmlu", "**Answer_7:** (C) is right\n\nAnswer_6: The answer is D", ["D", "C"], 6) == (2, 2)
    assert official_answers("Answer_1:\na\n\nAnswer_2:\nb") == ["a", "b"]
    assert robust_answers("Answer_3: x\nAnswer_3: y\nAnswer_4:z") == {3: "x", 4: "z"}


# -- Liu: prompts and runs -------------------------------------------------------------------------

def test_mmlu_prompt_layout():
    task = _make("mmlu", False)(data_dir=str(MMLU_DIR), k=3, batches=2, order="dataset")
    samples = list(task.samples())
    assert [s.index for s in samples] == [0, 1] and [s.metadata["subject"] for s in samples] == ["abstract_algebra", "anatomy"]
    req = task.request(samples[0])
    system, user = req.prompt
    assert system.content.endswith("regardless of their number. The following are multiple choice questions "
                                   "(with answers) about  abstract algebra.\n\n")
    pairs = mmlu_exemplar_pairs(json.loads(MMLU_EXEMPLARS.read_text())["abstract_algebra"])
    assert len(pairs) == 5
    assert user.content.startswith("Examples: \nQuestion_1:\n" + pairs[0][0] + "\n\nQuestion_2:\n")
    assert ("Answer_5:\n" + pairs[4][1] + "\n\nFollowing Question: \nQuestion_6:\nFind the degree for the given "
            "field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n(A) 0(B) 4(C) 2(D) 6\n\nQuestion_7:\n") in user.content
    assert user.content.endswith("\n\n") and "Question_9:" not in user.content
    assert samples[0].target["official"] == ["B", "C", "D"]
    assert req.params.max_tokens == 4096 and req.params.temperature == 0 and req.params.seed == 42
    # paper order: ascending by length inside the batch
    by_len = _make("mmlu", False)(data_dir=str(MMLU_DIR), k=5, batches=1)
    qs = next(iter(by_len.samples())).input["questions"]
    assert [len(q) for q in qs] == sorted(len(q) for q in qs)


def test_mmlu_gold_is_100_on_copied_slice(cli):
    r = cli("run", "--tasks", "longgenbench_liu/mmlu", "--backend", "gold", "-T", f"data_dir={MMLU_DIR}",
            "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["longgenbench_liu/mmlu"]
    m = {x["name"]: x for x in s["metrics"]}
    # 57 subjects, the copied slice holds 20 questions each (K=30 takes all 20)
    assert s["n"] == 57 and m["accuracy"]["details"]["questions"] == 1140
    assert m["accuracy"]["value"] == 100.0 and m["accuracy_official"]["value"] == 100.0


GSM = [("Tom has 3 apples and buys 15 more. How many?", "3 + 15 = <<3+15=18>>18\n#### 18"),
       ("Ann has 1 cat.", "#### 1"),
       ("A long question about 7 boxes of 10 pens each, how many pens in total are there?", "7*10=70\n#### 70"),
       ("Five?", "#### 5"),
       ("Sum 1,000 and 234.", "1,000 + 234 = 1,234\n#### 1,234")]


def test_gsm8k_batches_prompt_gold_and_replay(cli, tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in GSM))
    task = _make("gsm8k", False)(data_file=str(data), k=2, batches=2, order="dataset")
    samples = list(task.samples())
    assert len(samples) == 2 and samples[1].input["questions"] == [GSM[2][0], GSM[3][0]]  # 5th question beyond K*T
    user = task.request(samples[0]).prompt[1].content
    assert user == ("Examples: \n" + GSM8K_EXEMPLARS.read_text() + "\n\nFollowing Question: \nQuestion_9:\n"
                    + GSM[0][0] + "\nQuestion_10:\n" + GSM[1][0] + "\n\n")
    common = ["-T", f"data_file={data}", "-T", "k=2", "-T", "batches=2", "-T", "order=dataset", "--json", "--no-progress"]
    r = cli("run", "--tasks", "longgenbench_liu/gsm8k,longgenbench_liu/gsm8k_baseline", "--backend", "gold", *common)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for t in ("longgenbench_liu/gsm8k", "longgenbench_liu/gsm8k_baseline"):
        assert all(m["value"] == 100.0 for m in out["scores"][t]["metrics"])
    assert {s["name"]: s["value"] for s in out["summaries"]}["longgenbench_liu gsm8k delta (accuracy)"] == 0.0
    # every batch numbers its questions from 9. Batch 0 skips Answer_10 (robust 1/2, official 1/1); batch 1
    # puts answer 9 on its tag's line (official: only "The answer is 5." extracted, at position 0 -> 5 != 70:
    # 0/1; robust 2/2)
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"task": "longgenbench_liu/gsm8k", "index": 0, "output": ans(9, "The answer is 18.")})
                      + "\n" + json.dumps({"task": "longgenbench_liu/gsm8k", "index": 1,
                                           "output": "Answer_9: The answer is 70.\n\n" + ans(10, "The answer is 5.")}) + "\n")
    r = cli("run", "--tasks", "longgenbench_liu/gsm8k", "--backend", "replay", "-B", f"file={replay}", *common)
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["longgenbench_liu/gsm8k"]["metrics"]}
    assert m["accuracy"]["value"] == 75.0
    assert m["accuracy_official"]["value"] == 50.0 and m["accuracy_official"]["details"]["answered"] == 2


# -- Wu ---------------------------------------------------------------------------------------------

class _VerdictJudge:
    id = "fake-judge"

    def __init__(self, verdicts):
        self.verdicts = verdicts
        self.asked = []

    def yes_no(self, queries):
        self.asked.extend(q.id for q in queries)
        return [self.verdicts[q.id] for q in queries]


def test_wu_spec_vector():
    # number=4, blocks for Week 1, 2, 4 -> CR 75; checks {2: yes, 3: no block, 4: no} -> STIC-1 1/2, STIC-2 1/3
    text = "#*# Week 1 (January 1st - January 7th):\nmonday\n#*# Week 2: a wedding\n#*# Week 4: quiet\n"
    blocks = parse_blocks(text, "Week")
    assert sorted(blocks) == [1, 2, 4] and completion_rate(blocks, 4) == 75.0
    s = Sample("s", 0, None, {"checks_once": {"2": "wedding", "3": "trip"}, "checks_range": {}, "checks_periodic": {"4": "gym"}},
               {"type": "Week", "number": 4, "prefix": ""})
    rec = Record(s, text, Generation(text, "stop"))
    judge = _VerdictJudge({"s/once/2": True, "s/periodic/4": False})
    out = summarize(analyse([rec], judge))
    assert judge.asked == ["s/once/2", "s/periodic/4"]
    assert out["completion_rate"] == 75.0
    assert out["stic1"] == pytest.approx(50.0) and out["stic2"] == pytest.approx(100 / 3)
    assert out["wavg"] == pytest.approx(75.0 / 3) and out["wavg_mean_of_products"] == pytest.approx(25.0)
    assert out["acc_once"] == 100.0 and out["acc_periodic"] == 0.0 and out["acc_range"] == 0.0


def test_wu_parser_first_match_and_first_block_wins():
    text = "#*# Floor 1: lobby\n#*# Floor 3 mentions Floor 2 later\n#*# Floor 2: shops\n#*# Floor 3: again"
    b = parse_blocks(text, "Floor")
    assert b[3] == " Floor 3 mentions Floor 2 later\n" and b[2] == " Floor 2: shops\n"
    assert parse_blocks("#*# week 1", "Week") == {}  # case-sensitive


def test_wu_gold_and_replay_judge_on_copied_data(cli, tmp_path):
    from judge_replay import wu_verdicts

    verdicts = tmp_path / "v.jsonl"
    ids = wu_verdicts(verdicts, "short")
    assert len(ids) == 6205  # check total of Dataset_short.json (spec §4b.2)
    r = cli("run", "--tasks", "longgenbench_wu/short", "--backend", "gold", "-T", f"data_dir={WU_DIR}",
            "--judge-backend", "replay", "-J", f"file={verdicts}", "--json", "--no-progress", "--run-id", "w")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["longgenbench_wu/short"]
    m = {x["name"]: x for x in s["metrics"]}
    assert s["main"] == "wavg" and s["n"] == 400
    assert m["completion_rate"]["value"] == 100.0
    assert m["stic2"]["value"] == 100.0 and m["stic1"]["value"] == 100.0 and m["wavg"]["value"] == 100.0
    assert m["stic2"]["details"]["n_checks"] == 6205 and m["stic2"]["details"]["n_judged"] == 6205
    assert "judge:replay" in m["stic2"]["signature"]
    manifest = json.loads((tmp_path / "results" / "w" / "manifest.json").read_text())
    assert manifest["judge"]["backend"] == "replay"
    # without a judge: completion rate only, the judged metrics listed as skipped
    r = cli("run", "--tasks", "longgenbench_wu/long", "--backend", "gold", "-T", f"data_dir={WU_DIR}", "--json",
            "--no-progress")
    s = json.loads(r.stdout)["scores"]["longgenbench_wu/long"]
    assert [x["name"] for x in s["metrics"]] == ["completion_rate"] and s["value"] == 100.0
    assert {x["name"] for x in s["skipped_metrics"]} >= {"wavg", "stic1", "stic2"}


def test_wu_requests_as_released():
    from evalsuite.tasks.longgenbench_wu import _cls

    rows = json.loads((WU_DIR / "Dataset_long.json").read_text())
    t = _cls("long")(data_dir=str(WU_DIR))
    s = next(iter(t.samples()))
    req = t.request(s)
    assert req.prompt == rows[0]["prompt"] and req.use_chat_template is False
    assert req.params.max_tokens == 32000 and req.params.stop == ("*** finished",)
    assert t.extract(s, Generation(" text", "stop")) == rows[0]["prefix"] + " text"
    assert _cls("short")(chat_template="true").request(s).use_chat_template is True


def test_offline_without_local_data_names_the_option():
    from evalsuite.errors import UserError
    from evalsuite.tasks.longgenbench_wu import _cls

    for task in (_make("gsm8k", False)(), _make("mmlu", True)(), _cls("short")()):
        with pytest.raises(UserError, match="data_dir|data_file"):
            list(task.samples())


# -- Liu: the official records rule against upstream's scripts ---------------------------------------

LIU_FIX = Path(__file__).parents[2] / "fixtures" / "longgenbench_liu"


def test_liu_official_records_match_upstream_parse_pred_ans(cli):
    """Goldens produced by upstream, not by us: Dominic789654/LongGenBench@9845864's scripts (unmodified,
    imported from a scratch checkout outside this repository) with a fake OpenAI client answering each batch
    with the replay outputs in fixtures/longgenbench_liu/. GSM8K: `process_question` per batch (K=2, dataset
    order), the results appended in batch order, then `parse_pred_ans` printed
    `num_q 9 correct 3 ratio 0.3333`. MMLU: `main()` with TASKS = abstract_algebra, anatomy and k=3 on the
    copied MMLU slice printed `Total correct: 4`, `Total acc ratio: 0.6666666666666666` (K=3 per subject).
    See fixtures/longgenbench_liu/README.md."""
    r = cli("run", "--tasks", "longgenbench_liu/gsm8k", "--backend", "replay", "-B",
            f"file={LIU_FIX / 'replay_gsm8k.jsonl'}", "-T", f"data_file={LIU_FIX / 'gsm8k_test.jsonl'}",
            "-T", "k=2", "-T", "batches=3", "-T", "order=dataset", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["longgenbench_liu/gsm8k"]["metrics"]}
    off = m["accuracy_official"]
    assert (off["details"]["correct"], off["details"]["records"]) == (3, 9)
    assert off["value"] == pytest.approx(100 * 3 / 9)
    assert off["details"]["answered"] == 6  # six answers extracted; three "Question:" lines add records

    r = cli("run", "--tasks", "longgenbench_liu/mmlu", "--backend", "replay", "-B",
            f"file={LIU_FIX / 'replay_mmlu.jsonl'}", "-T", f"data_dir={MMLU_DIR}", "-T", "k=3", "-T", "batches=2",
            "-T", "order=dataset", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["longgenbench_liu/mmlu"]["metrics"]}
    off = m["accuracy_official"]
    assert off["details"]["correct"] == 4 and off["details"]["answered"] == 6
    assert off["value"] / 100 == pytest.approx(0.6666666666666666)
    assert off["details"]["records"] == 7  # the restated question opened a record of its own


def test_liu_official_tally_rules():
    # a "Question:" line inside an answer: the text before it is scored against the gold still held (the
    # previous record's), and the count grows; the first record of the file is scored only at the next
    # "Question:" line
    log0 = official_log(["q1", "q2"], ["#### 7", "#### 8"], ans(9, "The answer is 7.") + ans(10, "Question: q2\n8"))
    assert official_tally("gsm8k", [log0]) == [(1, 3)]  # 7 ok; "A_model:Q_1" (1) vs 7 no; "A_model:Q_1" vs 8 no
    # across logs (batches written to one file): the stale gold is the previous batch's last one
    log1 = official_log(["q3"], ["#### 1"], ans(9, "Question: restated\nThe answer is 1."))
    assert official_tally("gsm8k", [log0, log1]) == [(1, 3), (0, 2)]
    # "\r" ends a line when the log is read back
    log2 = official_log(["q"], ["#### 5"], ans(9, "See\rQuestion: q\rThe answer is 5."))
    assert official_tally("gsm8k", [log2]) == [(0, 2)]
    # no "Question:" line in any answer: the positional rule, unchanged
    text = CASES["skipped"][0]
    logs = official_log(["a", "b", "c", "d"], [f"#### {g}" for g in GOLD], text)
    assert official_tally("gsm8k", [logs]) == [official_score("gsm8k", text, GOLD)]
