"""Citation metrics (benchmark-independent; the parsing and NLI questions are ``evalsuite.citation``):

* :class:`CitationNLI` (metric plugin ``citation``): NLI citation recall / precision / per-sample F1, the
  verdicts asked of the run's judge (ALCE, HELMET, L-CiteEval);
* :class:`CitationRule` (metric plugin ``citation_rule``): document- and sentence-level scores against gold
  supporting-document ids.

docs/citation.md explains both.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..contracts import NO_CONTEXT, NeedsJudge, ScoreContext, judged_once
from ..signature import Signature
from ..citation import (CitationConfig, Premise, SampleCitations, harmonic_f1, analyse_output, analyse_records, by_bucket, format_doc,
                        judge_kind, rule_scores)
from ..types import MetricResult, Record

NLI_NAMES = ("citation_rec", "citation_prec", "citation_f1_mean", "citation_f1_of_means")
"""``citation_f1_mean`` = mean over samples of per-sample F1 (L-CiteEval, LongBench-Cite);
``citation_f1_of_means`` = 2PR/(P+R) of the corpus means (reported by nobody upstream; for comparison)."""


_PICK: dict[str, Callable[[SampleCitations], float]] = {
    "citation_rec": lambda s: s.recall, "citation_prec": lambda s: s.precision, "citation_f1_mean": lambda s: s.f1}
"""The per-sample number each per-sample citation metric reports."""


class CitationNLI(NeedsJudge):
    """One of the NLI citation numbers (see :data:`NLI_NAMES`). Metrics of one task share their analysis
    (``shared``), so the judge is asked once per scoring pass."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str = "citation_rec", config: CitationConfig | None = None, style: str = "alce",
                 shared: dict[str, Any] | None = None, premise: Premise | None = None):
        """``style`` names how documents become premises (in the signature): ``alce`` (ALCE/HELMET's
        :func:`evalsuite.citation.format_doc`) unless ``premise`` gives another benchmark's layout."""
        if name not in NLI_NAMES:
            raise ValueError(f"unknown citation metric {name!r}; one of {NLI_NAMES}")
        self.name = name
        self.config = config or CitationConfig()
        self.style = style
        if premise is None and style != "alce":
            raise ValueError(f"citation style {style!r} needs its premise function")
        self.premise: Premise = premise or format_doc
        self._shared = shared if shared is not None else {}
        self._judge_id = "none"
        self._judge_kind = "none"

    def signature(self) -> str:
        return str(Signature("citation", self.name, self.config.signature(), doc=self.style,
                             judge_kind=self._judge_kind, judge=self._judge_id, scale=100, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        self._judge_id, self._judge_kind = judge.id, judge_kind(judge)
        an = judged_once(self._shared, records, judge,
                         lambda: analyse_records(records, judge, self.config, self.premise))
        kept = [s for s in an.per if not s.skipped]
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        r, p = mean([s.recall for s in kept]), mean([s.precision for s in kept])
        if self.name == "citation_f1_of_means":
            value, per_sample = 100 * harmonic_f1(p, r), None
        else:
            pick = _PICK[self.name]
            value = 100 * mean([pick(s) for s in kept])
            per_sample = None if len(kept) != len(an.per) else tuple(pick(s) for s in an.per)
        details = {"n_samples_scored": len(kept), "n_skipped_no_sentence": len(an.per) - len(kept),
                   "n_pairs_judged": an.n_pairs, "n_invalid_verdicts": an.n_invalid,
                   "n_sentences": sum(s.n_sentences for s in an.per),
                   "n_citations": sum(s.n_citations for s in an.per)}
        if self.name != "citation_f1_of_means":
            buckets = by_bucket(records, [None if s.skipped else pick(s) for s in an.per])
            if buckets:
                details["by_length_bucket"] = buckets
        if per_sample is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), per_sample, True, details)


# ------------------------------------------------------------------------------------------ rule-based
RULE_NAMES = ("cite_doc_prec", "cite_doc_rec", "cite_doc_f1", "cite_sent_rec")


class CitationRule:
    """Rule-based citation scores against gold supporting-document ids (``sample.target["gold_doc_ids"]``,
    0-based); samples without gold ids are left out and counted. Citations are parsed in strict mode."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str = "cite_doc_f1", config: CitationConfig | None = None):
        if name not in RULE_NAMES:
            raise ValueError(f"unknown rule-based citation metric {name!r}; one of {RULE_NAMES}")
        self.name = name
        self.config = config or CitationConfig(mode="strict")

    def signature(self) -> str:
        return str(Signature("citation_rule", self.name, self.config.signature(), scale=100, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        vals: list[float | None] = []
        for r in records:
            t = r.sample.target
            gold = t.get("gold_doc_ids")
            if gold is None:
                vals.append(None)
                continue
            sents = analyse_output(r.prediction, len(t["docs"]), self.config, t.get("question", ""))
            # out-of-range ids stay in the cited set (they hurt precision); strict mode marks them invalid
            vals.append(rule_scores(sents, set(gold))[self.name])
        kept = [v for v in vals if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        per = tuple(kept) if len(kept) == len(vals) else None
        details: dict[str, Any] = {"n_with_gold": len(kept), "n_without_gold": len(vals) - len(kept)}
        buckets = by_bucket(records, vals)
        if buckets:
            details["by_length_bucket"] = buckets
        if per is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), per, True, details)


__all__ = ["CitationNLI", "CitationRule", "NLI_NAMES", "RULE_NAMES"]
