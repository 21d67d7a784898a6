"""LongBench v2 accuracy with the official breakdowns, and the official way of counting next to ours.

Headline: every planned item counts; a failed or empty generation and a response with no extractable
answer are wrong. Upstream's ``pred.py`` instead *drops* an item whose API call failed or returned ""
(THUDM/LongBench#100), so its ``result.py`` divides by the answered items only; that number is in the
details as ``official`` with ``n_dropped_by_official``. Breakdowns follow ``result.py``: by difficulty
(easy / hard) and by length (short / medium / long). ``compensated`` is ``result.py``'s
``compensated=True`` variant: an item without an answer counts 0.25 (chance), here failed items
included. Values are x100 and unrounded (``result.py`` prints them rounded to one decimal).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.types import MetricResult, Record

DIFFICULTIES = ("easy", "hard")
LENGTHS = ("short", "medium", "long")


def answered(record: Record) -> bool:
    """Whether upstream would have kept the item: the call succeeded and returned a non-empty text."""
    return record.generation.ok and record.generation.text != ""


def _order(values: Iterable[str], canonical: Sequence[str]) -> list[str]:
    seen = set(values)
    return [v for v in canonical if v in seen] + sorted(seen - set(canonical))


def _mean100(values: Sequence[float]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def _breakdown(records: Sequence[Record], score: Callable[[Record], float], key: str,
               canonical: Sequence[str]) -> dict[str, float | None]:
    groups = _order((str(r.sample.metadata.get(key)) for r in records), canonical)
    return {g: _mean100([score(r) for r in records if str(r.sample.metadata.get(key)) == g]) for g in groups}


def _counts(records: Sequence[Record], key: str, canonical: Sequence[str]) -> dict[str, int]:
    vals = [str(r.sample.metadata.get(key)) for r in records]
    return {g: vals.count(g) for g in _order(vals, canonical)}


class LongBenchV2Accuracy:
    """Accuracy (x100) over all items; failed generations are wrong."""

    name = "accuracy"
    higher_is_better = True
    scale = 100.0
    version = "1"

    def signature(self) -> str:
        return str(Signature(self.name, "longbench_v2", failed="wrong", none="wrong", scale=self.scale, v=self.version))

    @staticmethod
    def correct(record: Record) -> float:
        return float(record.prediction != "" and record.prediction == record.sample.target)

    @staticmethod
    def compensated(record: Record) -> float:
        return 0.25 if record.prediction == "" else float(record.prediction == record.sample.target)

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = tuple(self.correct(r) for r in records)
        kept = [r for r in records if answered(r)]

        def view(rs: Sequence[Record], fn: Callable[[Record], float]) -> dict[str, Any]:
            return {"accuracy": _mean100([fn(r) for r in rs]),
                    "by_difficulty": _breakdown(rs, fn, "difficulty", DIFFICULTIES),
                    "by_length": _breakdown(rs, fn, "length", LENGTHS)}

        main = view(records, self.correct)
        details: dict[str, Any] = {
            "scale": self.scale,
            "n": len(records),
            "by_difficulty": main["by_difficulty"],
            "by_length": main["by_length"],
            "n_by_difficulty": _counts(records, "difficulty", DIFFICULTIES),
            "n_by_length": _counts(records, "length", LENGTHS),
            "n_no_answer": sum(r.prediction == "" for r in records),
            "n_dropped_by_official": len(records) - len(kept),
            "official": {**view(kept, self.correct), "n": len(kept)},
            "compensated": view(records, self.compensated),
        }
        value = main["accuracy"]
        return MetricResult(name=self.name, value=float("nan") if value is None else value,
                            signature=self.signature(), per_sample=per, higher_is_better=True,
                            details=details)

