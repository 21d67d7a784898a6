"""RULER's substring metrics, as NVIDIA/RULER's ``scripts/eval/synthetic/constants.py`` computes them.

Post-processing (``postprocess_pred`` upstream): strip, replace each control character
``[\\x00-\\x1f]`` by a newline, strip again. Matching is case-insensitive substring containment.

* ``string_match_all``: fraction of references found in the prediction.
* ``string_match_part``: 1 if any reference is found (lm-eval's ``ruler_qa`` computes the fraction
  instead; that is not RULER's number).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

from ..contracts import NO_CONTEXT, ScoreContext
from ..types import MetricResult, Record
from . import MeanMetric

_CONTROL = re.compile(r"[\x00-\x1f]")


def ruler_postprocess(pred: str) -> str:
    return _CONTROL.sub("\n", pred.strip()).strip()


def _refs(target: Any) -> list[str]:
    if isinstance(target, str):
        return [target]
    return [str(t) for t in target]


def _key(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def ruler_breakdowns(records: Sequence[Record], per_sample: Sequence[float], scale: float = 100.0) -> dict[str, Any]:
    """RULER's per-length table cells from per-sample values: ``by_length`` = {max_seq_length: mean x
    scale}, and for samples with exactly one needle depth ``by_depth_length`` = {max_seq_length: {depth:
    mean x scale}} (needle-in-a-haystack heat maps). Lengths and depths in ascending order; keys are
    strings (JSON). Records without ``max_seq_length`` metadata are left out; {} when none has it."""
    by_len: dict[int, list[float]] = {}
    by_depth: dict[int, dict[Any, list[float]]] = {}
    for rec, v in zip(records, per_sample):
        meta = rec.sample.metadata or {}
        L = meta.get("max_seq_length")
        if L is None:
            continue
        by_len.setdefault(int(L), []).append(v)
        depths = meta.get("depths")
        if isinstance(depths, (list, tuple)) and len(depths) == 1:
            by_depth.setdefault(int(L), {}).setdefault(depths[0], []).append(v)
    out: dict[str, Any] = {}
    if by_len:
        out["by_length"] = {str(L): scale * sum(vs) / len(vs) for L, vs in sorted(by_len.items())}
        out["n_by_length"] = {str(L): len(vs) for L, vs in sorted(by_len.items())}
    if by_depth:
        out["by_depth_length"] = {str(L): {_key(d): scale * sum(vs) / len(vs) for d, vs in sorted(ds.items())}
                                  for L, ds in sorted(by_depth.items())}
    return out


class _RulerMean(MeanMetric):
    """A mean with RULER's per-length (and per-depth) breakdowns in ``details``."""

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        res = super().score(records, ctx)
        extra = ruler_breakdowns(records, res.per_sample or (), self.scale)
        if extra:
            res = dataclasses.replace(res, details={**res.details, **extra})
        return res


class StringMatchAll(_RulerMean):
    name = "string_match_all"

    def sample_score(self, record: Record) -> float:
        refs = _refs(record.sample.target)
        pred = ruler_postprocess(record.prediction).lower()
        return sum(r.lower() in pred for r in refs) / len(refs) if refs else 0.0


class StringMatchPart(_RulerMean):
    name = "string_match_part"

    def sample_score(self, record: Record) -> float:
        refs = _refs(record.sample.target)
        pred = ruler_postprocess(record.prediction).lower()
        return max((float(r.lower() in pred) for r in refs), default=0.0)
