"""LongBench's table aggregates (EN/ZH category means and Avg) against the official README rows."""

from __future__ import annotations

import pytest

from evalsuite.registry import Registry

# LongBench v1 README, zero-shot table (%): dataset scores and the published EN / ZH averages.
ORDER = ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique",
         "dureader", "gov_report", "qmsum", "multi_news", "vcsum", "trec", "triviaqa", "samsum", "lsht",
         "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc", "repobench-p"]
README = {
    "Llama2-7B-chat-4k": ([18.7, 19.2, 36.8, 11.9, 25.4, 32.8, 9.4, 5.2, 27.3, 20.8, 25.8, 0.2, 61.5, 77.8,
                           40.7, 19.8, 2.1, 9.8, 0.5, 52.4, 43.8], 31.0, 14.3),
    "GPT-3.5-Turbo-16k": ([23.6, 43.3, 52.3, 61.2, 51.6, 37.7, 26.9, 28.7, 29.5, 23.4, 26.7, 16.0, 68.0, 91.4,
                           41.7, 29.2, 4.5, 71.0, 77.5, 54.7, 53.6], 44.0, 44.5),
}


def _scores(values):
    return {f"longbench/{d}": {"metrics": [{"name": "longbench", "value": v, "details": {"official": v}}]}
            for d, v in zip(ORDER, values)}


@pytest.mark.parametrize("model", sorted(README))
def test_en_zh_averages_match_the_readme(model):
    values, en, zh = README[model]
    rows = {r["name"]: r["value"] for r in Registry().summarize(_scores(values))}
    assert round(rows["longbench EN Avg"], 1) == en
    assert round(rows["longbench ZH Avg"], 1) == zh
    assert rows["longbench EN Code Completion"] == round((values[-2] + values[-1]) / 2, 2)


def test_incomplete_table_is_not_reported():
    values = README["GPT-3.5-Turbo-16k"][0]
    scores = _scores(values)
    del scores["longbench/qmsum"]
    names = {r["name"] for r in Registry().summarize(scores)}
    assert "longbench EN Avg" not in names and "longbench ZH Avg" in names
