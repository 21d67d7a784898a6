"""DeltaBench scoring: the official critic parser and section-level precision / recall / F1.

Official rules (``evaluation.py`` of OpenStellarTeam/DeltaBench@6b67c64, re-implemented):

* gold ``G`` = ``reason_error_section_numbers`` ∪ ``reason_unuseful_section_numbers``;
* the critic says "errors" when ``yes`` occurs (any case) in the text before the first
  ``Error Section Number:`` and after the last ``Conclusion:`` in it;
* each chunk after an ``Error Section Number:`` gives the first integer before its ``Explanation:``
  (``-1`` when it has none);
* predictions greater than ``max(G)`` are dropped (neither right nor wrong); TP/FP/FN on sets;
  P, R, F1 are 0 when their denominator is 0;
* an empty critic output is excluded from the means (upstream writes it without metric fields);
* a record whose gold set is empty is excluded too: upstream's ``max(G)`` raises inside the per-line
  processing, which then writes the line without metric fields (whatever the critic said);
* macro = mean of per-sample values, micro = from summed TP/FP/FN; overall and per ``task_l1``.

The strict variant keeps every prediction (those past ``max(G)``, past the last real section, and
``-1`` all count as false positives) and scores an empty output as 0; a record with an empty gold set is
scored like any other (P = R = F1 = 0, since there is nothing to find) and counted. The trivial baseline
predicts every section ``1..n_sections`` of every sample and is scored with the official rules (so an
empty gold set excludes the record there too).

A future PRM mode only needs to produce predicted section sets per sample: the set scoring below is
independent of how the sets were obtained.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.types import MetricResult, Record

SECTION_TAG = "Error Section Number:"
_INT = re.compile(r"\d+")
VARIANTS = ("official", "strict", "trivial")
MEASURES = ("f1", "precision", "recall")


def parse_critic(text: str) -> tuple[bool, list[int]]:
    """``(has_errors, predicted section numbers in order)`` by the official rules."""
    head = text.split(SECTION_TAG)[0].split("Conclusion:")[-1].strip()
    if "yes" not in head.lower():
        return False, []
    preds = []
    for chunk in text.split(SECTION_TAG)[1:]:
        m = _INT.search(chunk.split("Explanation:")[0].strip())
        preds.append(int(m.group()) if m else -1)
    return True, preds


@dataclass(frozen=True)
class SectionScore:
    tp: int
    fp: int
    fn: int
    kept: tuple[int, ...]

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_sections(preds: Iterable[int], gold: Iterable[int], drop_above_max_gold: bool = True) -> SectionScore:
    """Set scoring of predicted sections against gold (official: predictions > max(gold) dropped)."""
    g = set(int(x) for x in gold)
    kept = [int(p) for p in preds]
    if drop_above_max_gold and g:
        top = max(g)
        kept = [p for p in kept if p <= top]
    ps = set(kept)
    return SectionScore(tp=len(ps & g), fp=len(ps - g), fn=len(g - ps), kept=tuple(kept))


def exclusion(critic: str, gold: Sequence[int], variant: str) -> str | None:
    """Why the variant leaves a sample out of every mean (``"empty_output"``, ``"empty_gold"``), or None.

    Upstream tests the empty output first (before parsing), then fails on ``max(G)`` of an empty gold set."""
    if variant == "strict":
        return None
    if variant == "official" and critic.strip() == "":
        return "empty_output"
    if not gold:
        return "empty_gold"
    return None


def sample_score(critic: str, gold: Sequence[int], n_sections: int | None, variant: str) -> SectionScore | None:
    """One sample under a variant; ``None`` when the variant excludes it (see ``exclusion``)."""
    if exclusion(critic, gold, variant) is not None:
        return None
    if variant == "trivial":
        return score_sections(range(1, int(n_sections or 0) + 1), gold)
    if critic.strip() == "":
        return SectionScore(0, 0, len(set(gold)), ())
    _, preds = parse_critic(critic)
    return score_sections(preds, gold, drop_above_max_gold=(variant == "official"))


def aggregate(scores: Sequence[SectionScore]) -> dict[str, float]:
    """Macro (mean of per-sample values) and micro (summed counts) precision / recall / F1, as fractions."""
    if not scores:
        return {k: math.nan for k in ("macro_precision", "macro_recall", "macro_f1",
                                      "micro_precision", "micro_recall", "micro_f1")}
    n = len(scores)
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    micro = SectionScore(tp, fp, fn, ())
    return {"macro_precision": sum(s.precision for s in scores) / n,
            "macro_recall": sum(s.recall for s in scores) / n,
            "macro_f1": sum(s.f1 for s in scores) / n,
            "micro_precision": micro.precision, "micro_recall": micro.recall, "micro_f1": micro.f1}


class DeltaBenchMetric:
    """Macro precision / recall / F1 over sections (x100), overall and per domain (``task_l1``).

    ``variant``: ``official`` (headline, comparable with the leaderboard), ``strict`` or ``trivial``
    (the "flag every section" baseline, independent of the model's output)."""

    higher_is_better = True
    version = "2"

    def __init__(self, variant: str = "official", measure: str = "f1"):
        if variant not in VARIANTS or measure not in MEASURES:
            raise ValueError(f"deltabench metric: variant in {VARIANTS}, measure in {MEASURES}")
        self.variant = variant
        self.measure = measure
        self.name = {"official": "", "strict": "strict_", "trivial": "trivial_all_sections_"}[variant] + \
            f"macro_{measure}"

    def signature(self) -> str:
        return str(Signature("deltabench", self.variant, self.measure, "macro", scale=100, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per: list[SectionScore | None] = []
        excluded: dict[str, int] = {"empty_output": 0, "empty_gold": 0}
        for r in records:
            meta = r.sample.metadata
            why = exclusion(r.prediction, r.sample.target, self.variant)
            if why is not None:
                excluded[why] += 1
            per.append(sample_score(r.prediction, r.sample.target, meta.get("n_sections"), self.variant))
        kept = [s for s in per if s is not None]
        overall = aggregate(kept)
        domains: dict[str, list[SectionScore]] = {}
        for r, s in zip(records, per):
            if s is not None:
                domains.setdefault(str(r.sample.metadata.get("domain")), []).append(s)
        per_domain = {d: {k: 100 * v for k, v in aggregate(v).items()} | {"n": len(v)}
                      for d, v in sorted(domains.items())}
        value = 100 * overall[f"macro_{self.measure}"]
        per_sample = None
        if self.variant != "official" and len(kept) == len(per):  # a mean over all samples
            per_sample = tuple(getattr(s, self.measure) for s in per)  # type: ignore[union-attr]
        details: dict[str, Any] = {"variant": self.variant, **{k: 100 * v for k, v in overall.items()},
                                   "per_domain": per_domain, "n_scored": len(kept),
                                   "n_excluded_empty": excluded["empty_output"],
                                   "n_excluded_empty_gold": excluded["empty_gold"]}
        if per_sample is not None:
            details["scale"] = 100.0
        return MetricResult(name=self.name, value=value, signature=self.signature(), per_sample=per_sample,
                            higher_is_better=True, details=details)
