"""Metric signatures are built as ``evalsuite.signature.Signature`` objects and render byte for byte as the
hand-written strings did (tests/fixtures/signatures.json, recorded from the f-strings before they became
Signature objects): results already on disk and ``compare`` depend on it. Every metric of every registered
task and every registered metric is rendered (tests/signature_cases.py), judged ones also with a judge, BLEU
and chrF also after scoring (their signature then holds sacrebleu's own)."""

from __future__ import annotations

import json

import pytest

from evalsuite.signature import Signature
from signature_cases import GOLDEN, cases

RECORDED = json.loads(GOLDEN.read_text(encoding="utf-8"))
NOW = cases()


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_recorded_signature_renders_byte_identical(key):
    assert key in NOW, f"{key} is no longer rendered (a task or metric was removed or renamed)"
    assert NOW[key] == RECORDED[key]


def test_every_metric_of_every_task_is_covered():
    assert all(k in RECORDED for k in NOW if k.startswith("metric:") or k.startswith("scored:"))
    assert len([k for k in RECORDED if k.startswith("task:")]) > 300
    assert not [k for k, v in NOW.items() if v.startswith("unbuildable")]


@pytest.mark.parametrize("sig", sorted(set(NOW.values())))
def test_rendered_signature_parses_back_to_itself(sig):
    parsed = Signature.parse(sig)
    assert str(parsed) == sig
    assert Signature(*[v for k, v in parsed if k is None]).parts == [(None, v) for k, v in parsed if k is None]


def test_signature_object():
    s = Signature("deltabench", "strict", "f1", "macro", scale=100.0, v="2")
    assert str(s) == "deltabench|strict|f1|macro|scale:100|v:2"
    assert s == "deltabench|strict|f1|macro|scale:100|v:2" and s.get("v") == "2" and s.get("nope") is None
    nested = Signature("bleu", Signature.parse("nrefs:1|tok:zh"), evalsuite="1")
    assert str(nested) == "bleu|nrefs:1|tok:zh|evalsuite:1"
    assert str(Signature("x", scale=0.5, k=3, flag=True)) == "x|scale:0.5|k:3|flag:True"


@pytest.mark.parametrize("options,expected", [
    ({}, "echo|chat:1|t:0|p:1|seed:0"),
    ({"temperature": "0.7", "top_p": "0.95", "seed": "3", "chat_template": "false", "max_tokens": "64"},
     "echo|chat:0|t:0.7|p:0.95|seed:3|max:64"),
    ({"temperature": "1e-7"}, "echo|chat:1|t:1e-07|p:1|seed:0"),
])
def test_judge_id_renders_as_before(tmp_path, options, expected):
    """The judge's id is part of every judged metric's signature; these are the strings the f-string gave."""
    from evalsuite.judge import Judge, JudgeConfig

    class Backend:
        id = "echo"

    judge = Judge(Backend(), JudgeConfig("echo", options=options), tmp_path / "judge.jsonl", "t")
    assert judge.id == expected
