"""LongBench v1 / LongBench-E metrics: official scores of a golden prediction run, and each upstream quirk
with hand-worked values (THUDM/LongBench@2e00731f, LongBench/metrics.py and eval.py)."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest

from evalsuite.errors import UserError
from evalsuite.tasks.longbench._metric import (DATASET_METRIC, LongBench, _bucket_score, _numpy_sum,
                                         classification_score, code_line, code_sim_score, count_score,
                                         fuzz_ratio, length_bucket, normalize_answer, normalize_zh_answer,
                                         qa_f1_score, qa_f1_zh_score, records_from_official, retrieval_score,
                                         retrieval_zh_score, rouge_score, rouge_zh_score)
from evalsuite.types import Generation, Record, Sample

GOLDEN = Path(__file__).resolve().parents[2].parent.parent / "shared" / "data" / "longbench" / "golden_pred" \
    / "llama2-7b-chat-4k"
GOLDEN_FILES = sorted(p.stem for p in GOLDEN.glob("*.jsonl")) if GOLDEN.is_dir() else []
needs_golden = pytest.mark.skipif(not GOLDEN_FILES, reason="shared/data/longbench golden predictions not found")


def _rows(dataset: str) -> list[dict]:
    return [json.loads(x) for x in (GOLDEN / f"{dataset}.jsonl").read_text(encoding="utf-8").splitlines()
            if x.strip()]


def _expected() -> dict[str, float]:
    return json.loads((GOLDEN / "result.json").read_text())


def _rec(pred: str, answers, i: int = 0, **meta) -> Record:
    return Record(Sample(id=f"s{i}", index=i, input=None, target=answers, metadata=meta), pred,
                  Generation(pred, "stop"))


# The longest sentence (words, no ".") rouge can back-trace inside the official eval.py before
# RecursionError, per CPython: measured with `python eval.py` on each interpreter (3.10 enters one frame
# deeper). Ours must fail on exactly the same pairs as the official run on the same interpreter.
EN_MAX = 989 if sys.version_info < (3, 11) else 990  # rouge_score (gov_report, qmsum, multi_news, samsum)
ZH_MAX = EN_MAX - 1  # rouge_zh_score calls rouge_score: one frame more


def _deep_ref(n: int) -> str:
    """A reference whose back-trace against the hypothesis "z" takes n + 1 nested calls (all of them down
    column 1 of an n x 1 table, so it is cheap): "z w1 ... w{n-1}"."""
    return " ".join(["z"] + [f"w{i}" for i in range(1, n)])


# -- golden run: every score equals result.json ---------------------------------------------------------
@needs_golden
def test_golden_fixture_is_complete():
    assert len(GOLDEN_FILES) == 10 and set(GOLDEN_FILES) == set(_expected())
    fns = {DATASET_METRIC[d] for d in GOLDEN_FILES}
    assert fns == {"qa_f1_score", "qa_f1_zh_score", "rouge_score", "rouge_zh_score", "classification_score",
                   "count_score", "retrieval_score", "code_sim_score"}  # retrieval_zh: unit tests below


@needs_golden
@pytest.mark.parametrize("dataset", GOLDEN_FILES)
def test_golden_scores_equal_official(dataset):
    res = LongBench(dataset=dataset).score(records_from_official(dataset, _rows(dataset)))
    assert res.details["official"] == _expected()[dataset]
    assert round(res.value, 2) == _expected()[dataset]
    assert res.name == "longbench" and res.details["scale"] == 100.0
    assert len(res.per_sample) == len(_rows(dataset)) and all(0.0 <= v <= 1.0 for v in res.per_sample)
    assert f"dataset:{dataset}" in res.signature and f"fn:{DATASET_METRIC[dataset]}" in res.signature
    if DATASET_METRIC[dataset].startswith("rouge"):
        assert res.details["rouge_errors"] == 0  # the golden run has no failing pair
    assert set(res.details["buckets"]) == {"0-4k", "4-8k", "8k+"}


def _longbench_task_available() -> bool:
    from evalsuite.registry import Registry

    try:
        Registry().task("longbench/trec")
    except Exception:
        return False
    return True


@needs_golden
@pytest.mark.skipif(not _longbench_task_available(), reason="longbench tasks are not registered (entry point)")
@pytest.mark.parametrize("dataset", GOLDEN_FILES)
def test_golden_scores_via_score_file_task(cli, dataset):
    r = cli("score-file", str(GOLDEN / f"{dataset}.jsonl"), "--task", f"longbench/{dataset}")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["n"] == len(_rows(dataset))
    assert round(out["score"], 2) == _expected()[dataset]


@pytest.mark.skipif(not _longbench_task_available(), reason="longbench tasks are not registered (entry point)")
def test_score_file_task_names_the_bad_line(cli, tmp_path):
    f = tmp_path / "hotpotqa.jsonl"
    f.write_text(json.dumps({"pred": "a", "answers": ["a"]}) + "\n" + json.dumps({"answers": ["b"]}) + "\n")
    r = cli("score-file", str(f), "--task", "longbench/hotpotqa")
    assert r.returncode == 2 and "line 2: missing 'pred'" in r.stderr and "Traceback" not in r.stderr


# -- per-dataset rules ------------------------------------------------------------------------------------
def test_first_line_only_for_the_four_few_shot_sets():
    # trec: "\n\nLocation\nQuestion: ..." -> "Location"; hotpotqa keeps the whole prediction.
    classes = ["Location", "Date"]
    res = LongBench(dataset="trec").score([_rec("\n\nLocation\nType: Date", ["Location"], all_classes=classes)])
    assert res.per_sample == (1.0,)
    res = LongBench(dataset="hotpotqa").score([_rec("\nParis\nFrance", ["France"])])
    assert res.per_sample == (pytest.approx(2 * 0.5 * 1 / 1.5),)  # p = 1/2, r = 1
    res = LongBench(dataset="triviaqa").score([_rec("Paris\nFrance", ["France"])])
    assert res.per_sample == (0.0,)


def test_item_score_is_max_over_answers_and_corpus_value():
    recs = [_rec("blue whale", ["whale shark", "blue whale"], 0), _rec("x", ["y"], 1), _rec("a cat", ["cat"], 2)]
    res = LongBench(dataset="narrativeqa").score(recs)
    assert res.per_sample == (1.0, 0.0, 1.0)  # "a" is an article
    assert res.value == pytest.approx(100 * 2 / 3) and res.details["official"] == 66.67


def test_classification_skips_the_element_after_a_removed_one():
    # matches = [York, New York, New York City, City]; removing "York" slides "New York" into slot 0 and
    # the loop moves on to "New York City": "New York" is never examined and stays. "City" is removed.
    classes = ["York", "New York", "New York City", "City"]
    assert classification_score("New York City", "New York City", all_classes=classes) == 0.5
    assert classification_score("Date or Location", "Date", all_classes=["Date", "Location"]) == 0.5
    assert classification_score("Location", "Date", all_classes=["Date", "Location"]) == 0.0
    with pytest.raises(UserError, match="all_classes"):
        classification_score("x", "y")


def test_code_sim_first_line_rule():
    # Leading newlines dropped; fence and comment lines skipped; an empty line qualifies.
    assert code_line("\n\n```python\n# comment\n\nx = 1") == ""
    assert code_sim_score("\n\n```python\n# comment\n\nx = 1", "x = 1") == 0.0
    assert code_line("// c\nfoo(a, b)") == "foo(a, b)"
    assert code_sim_score("// c\nfoo(a, b)", "foo(a, c)") == 0.89  # 2*8/18 = 88.9 -> 89
    assert code_line("a // b\n`x`") == "" and code_sim_score("```", "") == 1.0  # both empty: equal -> 100
    assert code_sim_score("```\nx", "") == 0.0  # one side empty -> 0


def test_fuzz_ratio_is_fuzzywuzzy_on_difflib():
    from difflib import SequenceMatcher

    assert fuzz_ratio("", "") == 100 and fuzz_ratio("a", "") == 0 and fuzz_ratio("", "a") == 0
    assert fuzz_ratio("abcdefgh", "aXXXXXXX") == 12  # 100 * 2/16 = 12.5 rounds half to even
    # difflib's default autojunk (on for >= 200 chars) is part of the number: " " is popular in b here.
    a = "x = foo(bar, baz) " * 4
    b = " ".join(["y"] * 150) + " x = foo(bar, baz)"
    assert len(b) >= 200
    junk = int(round(100 * SequenceMatcher(None, a, b).ratio()))
    nojunk = int(round(100 * SequenceMatcher(None, a, b, autojunk=False).ratio()))
    assert fuzz_ratio(a, b) == junk != nojunk


def test_count_and_retrieval_fractions():
    assert count_score("3 paragraphs, I count 3 of 5", 3) == pytest.approx(2 / 3)
    assert count_score("no numbers", 3) == 0.0 and count_score("13", 3) == 0.0
    assert retrieval_score("Paragraph 12 and Paragraph 3", "Paragraph 12") == 0.5
    assert retrieval_score("It is paragraph 12.", "Paragraph 12") == 1.0
    assert retrieval_zh_score("答案是段落7，不是段落17", "段落7") == 0.5
    assert retrieval_zh_score("不知道", "段落7") == 0.0
    with pytest.raises(UserError, match="paragraph"):
        retrieval_score("1", "no id here")


def test_english_normalization_and_f1():
    assert normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert qa_f1_score("The Eiffel Tower", "Eiffel Tower in Paris") == pytest.approx(2 / 3)  # p=1, r=1/2
    assert qa_f1_score("", "x") == 0.0 and qa_f1_score("the", "a") == 0.0  # nothing left after normalizing


def test_chinese_normalization_and_f1():
    # lowercase (full-width letters too), drop ASCII + CJK punctuation, remove all whitespace
    assert normalize_zh_answer("Ｈｅｌｌｏ， 世界！ A.B") == "ｈｅｌｌｏ世界ab"
    assert qa_f1_zh_score("北京。", "北京") == 1.0  # "。" is its own word, normalized away
    assert qa_f1_zh_score("我爱北京", "北京") == 0.5  # 我/爱/北京: p = 1/3, r = 1


def test_rouge_l_hand_worked():
    # One sentence each: LCS "a c"; m = n = 3 distinct words; F = 2pr/(p+r+1e-8) with p = r = 2/3.
    assert rouge_score("a b c", "a c d") == pytest.approx(2 * (4 / 9) / (4 / 3 + 1e-8), abs=1e-12)
    assert rouge_score("A b c", "a b c") == rouge_score("a b c", "a c d")  # case-sensitive
    # Sentences split on "."; the union of LCS words counts distinct words; n counts distinct words too:
    # union {the, cat, sat, on, mat} = 5, m = 6, n = 5 -> r = 5/6, p = 1 -> F = 10/11.
    assert rouge_score("the cat. sat on the mat", "the cat sat on a mat") == pytest.approx(10 / 11, abs=1e-8)
    # jieba words joined by spaces: 我/爱/北京/天安门 vs 我/爱/北京 -> p = 3/4, r = 1.
    assert rouge_zh_score("我爱北京天安门", "我爱北京") == pytest.approx(2 * 0.75 / 1.75, abs=1e-8)


def test_rouge_failures_score_zero_and_are_counted():
    # One word over the official stack budget raises RecursionError.
    recs = [_rec("", ["a reference"], 0), _rec("z", [_deep_ref(EN_MAX + 1)], 1), _rec("a b c", ["a c d"], 2),
            _rec("z", [_deep_ref(EN_MAX)], 3)]
    res = LongBench(dataset="gov_report").score(recs)
    assert res.per_sample[:2] == (0.0, 0.0) and res.per_sample[2] > 0.6 and res.per_sample[3] > 0.0
    assert res.details["rouge_errors"] == 2
    assert res.details["rouge_error_types"] == {"RecursionError": 1, "ValueError": 1}
    assert res.details["rouge_error_samples"] == ["s0", "s1"]
    assert "rouge:1.0" in res.signature


def _deep(n: int, fn):
    return _deep(n - 1, fn) if n else fn()


@pytest.mark.parametrize("depth", [0, 300, 900])
def test_rouge_recursion_failures_do_not_depend_on_our_stack(depth):
    # Official eval.py (`python eval.py`, recursion limit 1000) scores an N-word reference against "z"
    # above 0 up to N = EN_MAX with rouge_score and up to N = ZH_MAX with rouge_zh_score.
    got = _deep(depth, lambda: [(rouge_score("z", _deep_ref(n)), rouge_zh_score("z", _deep_ref(n)))
                                for n in (ZH_MAX, EN_MAX, EN_MAX + 1)])
    assert [(a > 0, b > 0) for a, b in got] == [(True, True), (True, False), (False, False)]


def test_rouge_table_choice_changes_nothing():
    # Back-traces through the table-reading branch ("z" vs _deep_ref) and the match branch (x x x ...),
    # on both sides of the stack budget, plus real summaries.
    recs = [_rec("z", [_deep_ref(EN_MAX + 1)], 0), _rec("a b c. d e", ["a c d", "e d"], 1),
            _rec("z", [_deep_ref(EN_MAX), "w1"], 2), _rec("", ["x"], 3), _rec("x " * 995, ["x " * 995], 4),
            _rec("x " * EN_MAX, ["x " * EN_MAX], 5)]
    if GOLDEN_FILES:
        recs += records_from_official("gov_report", _rows("gov_report")[:6])
    fast = LongBench(dataset="qmsum").score(recs)
    slow = LongBench(dataset="qmsum", fast_lcs=False).score(recs)
    assert fast.per_sample == slow.per_sample and fast.details == slow.details
    assert fast.details["rouge_error_types"] == {"RecursionError": 2, "ValueError": 1}
    assert fast.per_sample[5] > 0.99


def test_longbench_e_buckets():
    recs = [_rec("x", ["x"], 0, length=3999), _rec("y", ["x"], 1, length=100), _rec("x", ["x"], 2, length=4000),
            _rec("x", ["x"], 3, length=7999)]
    res = LongBench(dataset="qasper").score(recs)
    assert res.details["buckets"] == {"0-4k": 50.0, "4-8k": 100.0, "8k+": None}  # empty bucket: NaN upstream
    assert res.details["bucket_counts"] == {"0-4k": 2, "4-8k": 2, "8k+": 0}
    assert json.loads(json.dumps(res.details))["buckets"]["8k+"] is None
    assert [length_bucket(x) for x in (0, 3999, 4000, 7999, 8000)] == ["0-4k", "0-4k", "4-8k", "4-8k", "8k+"]
    # No bucket breakdown when a record has no length.
    assert "buckets" not in LongBench(dataset="qasper").score([_rec("x", ["x"])]).details


def test_bucket_rounding_and_sum_follow_numpy():
    # np.round works on x * 100 (half to even): 2.675 -> 2.68, where Python's round(2.675, 2) gives 2.67.
    assert _bucket_score([0.02675]) == 2.68 and round(100 * 0.02675, 2) == 2.67
    assert _bucket_score([]) is None
    np = pytest.importorskip("numpy")
    rnd = random.Random(0)
    for n in [1, 7, 8, 9, 127, 128, 129, 200, 257, 1000]:
        xs = [rnd.choice([0.0, 1.0, 0.5, 1 / 3, rnd.random()]) for _ in range(n)]
        assert _numpy_sum(xs) == float(np.add.reduce(np.array(xs)))
        assert _bucket_score(xs) == float(round(100 * np.mean(xs), 2))


# -- official prediction files ---------------------------------------------------------------------------
def test_records_from_official_rows():
    rows = [{"pred": "p0", "answers": ["a"], "all_classes": ["x"], "length": 10},
            {"pred": "p1", "answers": ["b", "c"], "all_classes": ["y", "z"], "length": 9000}]
    recs = records_from_official("trec", rows)
    assert [r.prediction for r in recs] == ["p0", "p1"] and recs[1].sample.target == ["b", "c"]
    # eval.py uses the all_classes of the last line for every line.
    assert [r.sample.metadata["all_classes"] for r in recs] == [["y", "z"], ["y", "z"]]
    assert [r.sample.metadata["length"] for r in recs] == [10, 9000]


@pytest.mark.parametrize("row, message", [
    ({"answers": ["a"]}, "line 2: missing 'pred'"),
    ({"pred": "p"}, "line 2: missing 'answers'"),
    ({"pred": None, "answers": ["a"]}, "line 2: 'pred' must be a string"),
    ({"pred": "p", "answers": "a"}, "line 2: 'answers' must be a list of strings"),
])
def test_records_from_official_names_the_bad_line(row, message):
    with pytest.raises(UserError, match=message):
        records_from_official("hotpotqa", [{"pred": "p", "answers": ["a"]}, row])
    with pytest.raises(UserError, match="unknown LongBench dataset"):
        records_from_official("nope", [])


def test_dataset_from_metadata_and_score_file_metric(tmp_path, monkeypatch):
    from evalsuite import scorefile
    from evalsuite.registry import Registry

    reg = Registry()
    reg.add_metric("longbench", LongBench)
    monkeypatch.setattr(scorefile, "default_registry", lambda: reg)
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [
        {"prediction": "3 and 3", "references": ["3"], "dataset": "passage_count", "length": 5000},
        {"prediction": "4", "references": ["3"], "dataset": "passage_count", "length": 5000}]))
    out = scorefile.score_file(str(f), metric="longbench")
    assert out["score"] == 50.0 and [x["longbench"] for x in out["per_line"]] == [100.0, 0.0]
    assert out["metrics"][0]["signature"].startswith("longbench|dataset:passage_count|fn:count_score")
    with pytest.raises(UserError, match="name the dataset"):
        LongBench().score([_rec("a", ["a"]), _rec("a", ["a"], dataset="trec")])
    with pytest.raises(UserError, match="unknown LongBench dataset"):
        LongBench(dataset="nope")


def test_empty_input_gives_nan():
    res = LongBench(dataset="lcc").score([])
    assert math.isnan(res.value) and res.details["official"] is None and res.per_sample == ()
