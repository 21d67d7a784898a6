"""RULER's substring metrics, as NVIDIA/RULER's ``scripts/eval/synthetic/constants.py`` computes them.

Post-processing (``postprocess_pred`` upstream): strip, replace each control character
``[\\x00-\\x1f]`` by a newline, strip again. Matching is case-insensitive substring containment.

* ``string_match_all``: fraction of references found in the prediction.
* ``string_match_part``: 1 if any reference is found (lm-eval's ``ruler_qa`` computes the fraction
  instead; that is not RULER's number).
"""

from __future__ import annotations

import re
from typing import Any

from ..types import Record
from . import MeanMetric

_CONTROL = re.compile(r"[\x00-\x1f]")


def ruler_postprocess(pred: str) -> str:
    return _CONTROL.sub("\n", pred.strip()).strip()


def _refs(target: Any) -> list[str]:
    if isinstance(target, str):
        return [target]
    return [str(t) for t in target]


class StringMatchAll(MeanMetric):
    name = "string_match_all"

    def sample_score(self, record: Record) -> float:
        refs = _refs(record.sample.target)
        pred = ruler_postprocess(record.prediction).lower()
        return sum(r.lower() in pred for r in refs) / len(refs) if refs else 0.0


class StringMatchPart(MeanMetric):
    name = "string_match_part"

    def sample_score(self, record: Record) -> float:
        refs = _refs(record.sample.target)
        pred = ruler_postprocess(record.prediction).lower()
        return max((float(r.lower() in pred) for r in refs), default=0.0)
