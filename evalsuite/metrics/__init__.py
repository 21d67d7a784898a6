"""Benchmark-independent metrics, the Metric contract and the one way a metric is called.

A metric scores the whole set of records at once (corpus level: BLEU and COMET are not means of
sentence scores) and returns a value, a signature naming everything that moves the number, and
per-sample values where they exist: ``metric.score(records, ctx)``, ``ctx`` carrying the run's judge and
the task's options (``evalsuite.contracts.ScoreContext``). Metrics that belong to one benchmark live with
its task (``tasks/<bench>/``).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Sequence

from ..contracts import NO_CONTEXT, Metric, NeedsJudge, ScoreContext
from ..signature import Signature
from ..types import MetricResult, Record


class MeanMetric:
    """A metric whose corpus value is the mean of per-sample values, reported x100 (RULER, LongBench)."""

    name = "mean"
    higher_is_better = True
    scale = 100.0
    version = "1"

    def sample_score(self, record: Record) -> float:
        raise NotImplementedError

    def signature(self) -> str:
        return str(Signature(self.name, scale=self.scale, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = tuple(float(self.sample_score(r)) for r in records)
        value = self.scale * sum(per) / len(per) if per else float("nan")
        return MetricResult(name=self.name, value=value, signature=self.signature(), per_sample=per,
                            higher_is_better=self.higher_is_better, details={"scale": self.scale})


@lru_cache(maxsize=None)
def _takes_context(cls: type) -> bool:
    """Whether ``cls.score`` takes the context: a second positional parameter after the records that is not
    the old ``judge`` keyword."""
    try:
        params = list(inspect.signature(cls.score).parameters.values())[1:]  # without self
    except (TypeError, ValueError):
        return True
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].name != "judge"


def score_metric(metric: Metric, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
    """``metric.score(records, ctx)``. A third-party metric written for the old signature (``score(records)``,
    or ``score(records, judge=...)`` for a judged one) is called that way."""
    if _takes_context(type(metric)):
        return metric.score(records, ctx)
    if isinstance(metric, NeedsJudge) and metric.needs_judge:
        return metric.score(records, judge=ctx.judge)  # type: ignore[call-arg]
    return metric.score(records)


def needs_judge(metric: Metric) -> bool:
    """Whether the metric is scored with the run's judge (it declares :class:`~evalsuite.contracts.NeedsJudge`)."""
    return isinstance(metric, NeedsJudge) and bool(metric.needs_judge)


__all__ = ["MeanMetric", "Metric", "NO_CONTEXT", "ScoreContext", "needs_judge", "score_metric"]
