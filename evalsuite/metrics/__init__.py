"""The Metric protocol and a base for metrics that average a per-sample value.

A metric scores the whole set of records at once (corpus level: BLEU and COMET are not means of
sentence scores) and returns a value, a signature naming everything that moves the number, and
per-sample values where they exist.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ..types import MetricResult, Record


@runtime_checkable
class Metric(Protocol):
    name: str
    higher_is_better: bool

    def score(self, records: Sequence[Record]) -> MetricResult: ...

    def signature(self) -> str: ...


class MeanMetric:
    """A metric whose corpus value is the mean of per-sample values, reported x100 (RULER, LongBench)."""

    name = "mean"
    higher_is_better = True
    scale = 100.0
    version = "1"

    def sample_score(self, record: Record) -> float:
        raise NotImplementedError

    def signature(self) -> str:
        return f"{self.name}|scale:{self.scale:g}|v:{self.version}"

    def score(self, records: Sequence[Record]) -> MetricResult:
        per = tuple(float(self.sample_score(r)) for r in records)
        value = self.scale * sum(per) / len(per) if per else float("nan")
        return MetricResult(name=self.name, value=value, signature=self.signature(), per_sample=per,
                            higher_is_better=self.higher_is_better, details={"scale": self.scale})
