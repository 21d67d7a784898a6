"""PunchBench metrics: accuracy with parse-failure rate (closed formats) and judged accuracy
(Generation QA, through the judge plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from evalsuite.contracts import NO_CONTEXT, NeedsJudge, ScoreContext
from evalsuite.signature import Signature
from evalsuite.metrics import MeanMetric
from evalsuite.types import MetricResult, Record

PARSE_VERSION = "1"


class Accuracy(MeanMetric):
    """Exact match of the parsed answer with the reference; an unparsed reply is wrong."""

    name = "accuracy"
    version = PARSE_VERSION

    def sample_score(self, record: Record) -> float:
        return float(record.prediction != "" and record.prediction == record.sample.target)

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        res = super().score(records, ctx)
        n_fail = sum(1 for r in records if r.prediction == "")
        return MetricResult(res.name, res.value, res.signature, res.per_sample, True,
                            {**res.details, "n_parse_failures": n_fail})


class ParseFailureRate(MeanMetric):
    name = "parse_failure_rate"
    higher_is_better = False
    version = PARSE_VERSION

    def sample_score(self, record: Record) -> float:
        return float(record.prediction == "")


JUDGE_PROMPT = (Path(__file__).resolve().parent / "judge_prompt.txt")


class JudgedAccuracy(NeedsJudge):
    """Generation QA: the judge says whether the model's explanation matches the reference one
    (yes = correct). An invalid verdict counts as incorrect and is reported as ``n_invalid``."""

    name = "judged_accuracy"
    higher_is_better = True
    version = "1"

    def __init__(self) -> None:
        self.template = JUDGE_PROMPT.read_text(encoding="utf-8")

    def signature(self, judge: Any = None) -> str:
        from evalsuite.types import sha256_text
        jid = judge.id if judge is not None else "none"
        return str(Signature(self.name, judge=jid, prompt=sha256_text(self.template)[:12], v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        from evalsuite.judge import JudgeQuery
        queries = [JudgeQuery(id=f"{r.sample.id}/explanation",
                              prompt=self.template.replace("{reference}", str(r.sample.target))
                              .replace("{prediction}", r.prediction.strip()))
                   for r in records]
        verdicts = judge.yes_no(queries) if queries else []
        per = tuple(1.0 if v else 0.0 for v in verdicts)
        value = 100.0 * sum(per) / len(per) if per else float("nan")
        return MetricResult(self.name, value, self.signature(judge), per, True,
                            {"n_invalid": sum(v is None for v in verdicts), "scale": 100.0})
