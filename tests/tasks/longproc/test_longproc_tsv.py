"""The reusable TSV metric plugin (tasks/longproc/_tsv.py): parsing, normalisation, matching, failures,
and its use through the registry. Expected values worked out by hand in the comments."""

from __future__ import annotations

import pytest

from evalsuite.tasks.longproc._tsv import Tsv, extract_tsv_block, normalize_cell, parse_tsv, score_answer, score_tables
from evalsuite.registry import Registry
from evalsuite.types import Generation, Record, Sample

REF = "name\tcity\nThe Alps Inn\tBern, CH\nLake House\tZug\nLake House\tZug\nOld Mill\tBaar"


def test_normalize_cell():
    assert normalize_cell("The  Alps-Inn, (A) an\tapple!") == "alpsinnapple"
    assert normalize_cell("Théâtre d'Art") == "théâtredart"


def test_extraction():
    assert extract_tsv_block("x ```tsv\na\tb\n``` y ```z```") == ("a\tb\n``` y ```z", True)
    assert extract_tsv_block("x ```tsv\na\tb\n") == ("a\tb", True)
    assert extract_tsv_block("  a\tb  ") == ("a\tb", False)


def test_unordered_matching_with_duplicates():
    # prediction rows: alps (hit), lake (hit), lake (hit), mill-typo (miss) -> precision 3/4
    # reference rows: alps hit, lake hit, lake hit, mill miss -> recall 3/4
    pred = "n\tc\nLake House\tZug\nthe alps inn\tBern CH\nLake House\tZug\nOld Mil\tBaar"
    s = score_tables(pred, REF)
    assert (s.precision, s.recall, s.f1, s.extraction_rate) == (0.75, 0.75, 0.75, 1.0)
    # one copy of a duplicated row recalls both reference copies (no one-to-one matching)
    s = score_tables("n\tc\nLake House\tZug", REF)
    assert (s.precision, s.recall) == (1.0, 0.5)


@pytest.mark.parametrize("pred,error", [
    ("n\tc", "no data rows"), ("", "no data rows"), ("n\tc\td\nA\tB\tC", "columns"),
    ("n\tn\nA\tB", "duplicate header"), ("n\tc\nA\tB\rC", "csv error"), ("n\tc\nonly one cell", "no complete"),
])
def test_failures_score_zero(pred, error):
    s = score_tables(pred, REF)
    assert s.as_dict() == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "extraction_rate": 0.0}
    assert error in s.error


def test_bad_rows_become_na_and_last_short_row_is_dropped():
    t = parse_tsv("a\tb\nx\ny\tz\nw\tv\nThe end.")
    assert t.rows == (("na", "na"), ("y", "z"), ("w", "v")) and t.bad_rows == (0,) and t.dropped_last


def test_metric_plugin_through_the_registry():
    factory = Registry().metric("tsv")
    m = factory(measure="recall")
    recs = [Record(Sample("a", 0, None, REF), p, Generation(p, "stop")) for p in
            ("```tsv\n" + REF + "\n```", "```tsv\nn\tc\nLake House\tZug\n```")]
    res = m.score(recs)
    assert res.per_sample == (1.0, 0.5) and res.value == pytest.approx(75.0)
    assert res.name == "tsv_recall" and "rules:longproc-html_to_tsv" in res.signature
    assert score_answer("no table here", REF).extraction_rate == 0.0
    assert Tsv(target_key="gt").reference(Record(Sample("b", 0, None, {"gt": "x\ty\n1\t2"}), "", Generation("", "stop"))) == "x\ty\n1\t2"
