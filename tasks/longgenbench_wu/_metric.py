"""LongGenBench (Wu et al.) scoring: the ``#*#`` block parser, completion rate and the judged STIC metrics.

Rules as in the repository's ``Evalution/eval.py`` (mozhu621/LongGenBench@62c0e86), re-implemented:

* the output (the record's ``prefix`` + the completion) is split on ``#*#``;
* a block belongs to unit ``n`` when ``"<type> <n>"`` occurs in it (first match anywhere, case-sensitive);
  the first block seen for a unit wins;
* completion rate of a sample = share of units ``1..number`` with a block (x100); CR = mean over samples;
* each check (``checks_once`` / ``checks_range`` / ``checks_periodic``: unit -> description) whose unit has
  a block is put to the judge with the official question; checks whose unit has no block are not judged.

Verdicts differ from upstream on purpose: a one-token budget and exact ``yes``/``no`` (upstream: 50 tokens at
T=0.95 and the substring ``yes`` anywhere). Aggregates (pooled over all checks of all samples):

* STIC-1 = yes / judged checks; STIC-2 = yes / all checks; per type (once / range / periodic) STIC-1-style
  accuracies and their mean (the repo's CSV columns);
* wAvg, two readings: ``wavg`` = CR x STIC-2 of the aggregates (``product_of_means``, most paper rows) and
  ``wavg_mean_of_products`` = mean over samples of CR_i x STIC-2_i.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, NeedsJudge, ScoreContext, judged_once
from evalsuite.signature import Signature
from evalsuite.judge import JudgeQuery
from evalsuite.types import MetricResult, Record

KINDS = ("once", "range", "periodic")
JUDGE_TEMPLATE = ("Context: {block}### Instruction: Does this context include the {desc}? "
                  "Please answer with 'yes' or 'no' only.")


def parse_blocks(text: str, unit_type: str) -> dict[int, str]:
    """Unit number -> its block (first block per unit wins)."""
    pattern = re.compile(re.escape(unit_type) + r" (\d+)")
    out: dict[int, str] = {}
    for block in text.split("#*#"):
        m = pattern.search(block)
        if m:
            out.setdefault(int(m.group(1)), block)
    return out


def completion_rate(blocks: Mapping[int, str], number: int) -> float:
    return 100.0 * len(set(range(1, number + 1)) & set(blocks)) / number


def judge_prompt(block: str, desc: str) -> str:
    return JUDGE_TEMPLATE.format(block=block, desc=desc)


@dataclass(frozen=True)
class SampleChecks:
    cr: float
    n_checks: dict[str, int]
    judged: dict[str, int]
    yes: dict[str, int]
    invalid: int


def queries_for(record: Record) -> tuple[float, int, dict[str, int], list[tuple[str, JudgeQuery]]]:
    """(completion rate, total checks, checks per kind, [(kind, query)] for checks whose unit has a block)."""
    meta = record.sample.metadata
    blocks = parse_blocks(record.prediction, meta["type"])
    checks = record.sample.target
    n_checks = {k: len(checks.get(f"checks_{k}") or {}) for k in KINDS}
    qs = []
    for kind in KINDS:
        for unit, desc in (checks.get(f"checks_{kind}") or {}).items():
            block = blocks.get(int(unit))
            if block is not None:
                qs.append((kind, JudgeQuery(id=f"{record.sample.id}/{kind}/{unit}",
                                            prompt=judge_prompt(block, desc))))
    return completion_rate(blocks, int(meta["number"])), sum(n_checks.values()), n_checks, qs


def analyse(records: Sequence[Record], judge: Any) -> list[SampleChecks]:
    per = [queries_for(r) for r in records]
    flat = [q for _, _, _, qs in per for _, q in qs]
    verdicts = judge.yes_no(flat) if flat else []
    out = []
    pos = 0
    for cr, _total, n_checks, qs in per:
        judged = {k: 0 for k in KINDS}
        yes = {k: 0 for k in KINDS}
        invalid = 0
        for kind, _q in qs:
            v = verdicts[pos]
            pos += 1
            judged[kind] += 1
            yes[kind] += v is True
            invalid += v is None
        out.append(SampleChecks(cr, n_checks, judged, yes, invalid))
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def summarize(per: Sequence[SampleChecks]) -> dict[str, float]:
    yes = sum(sum(s.yes.values()) for s in per)
    judged = sum(sum(s.judged.values()) for s in per)
    total = sum(sum(s.n_checks.values()) for s in per)
    cr = sum(s.cr for s in per) / len(per) if per else 0.0
    stic2 = 100 * _ratio(yes, total)
    out = {"completion_rate": cr, "stic1": 100 * _ratio(yes, judged), "stic2": stic2,
           "wavg": cr * stic2 / 100,
           "wavg_mean_of_products": sum(s.cr * _ratio(sum(s.yes.values()), sum(s.n_checks.values()))
                                        for s in per) / len(per) if per else 0.0,
           "n_checks": total, "n_judged": judged, "n_yes": yes, "n_invalid": sum(s.invalid for s in per)}
    accs = []
    for k in KINDS:
        a = 100 * _ratio(sum(s.yes[k] for s in per), sum(s.judged[k] for s in per))
        out[f"acc_{k}"] = a
        accs.append(a)
    out["acc_mean"] = sum(accs) / 3
    return out


class CompletionRate:
    """Share of required units written (x100), mean over samples; no judge needed."""

    name = "completion_rate"
    higher_is_better = True

    def signature(self) -> str:
        return str(Signature("longgenbench_wu", "completion_rate").add("blocks", "#*#").add(None, "first_match")
                   .extend(v=1))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = tuple(queries_for(r)[0] / 100 for r in records)
        return MetricResult(self.name, 100 * sum(per) / len(per), self.signature(), per_sample=per,
                            details={"scale": 100.0})


class JudgedMetric(NeedsJudge):
    """One of the judged aggregates (``stic1``, ``stic2``, ``wavg``, ``wavg_mean_of_products``,
    ``acc_once``, ``acc_range``, ``acc_periodic``, ``acc_mean``)."""

    higher_is_better = True

    def __init__(self, name: str, shared: dict[str, Any] | None = None):
        self.name = name
        self._judge_id = "none"
        self._shared = shared if shared is not None else {}
        """Metrics of one task share their analysis of the same records (parsed and judged once)."""

    def signature(self) -> str:
        return str(Signature("longgenbench_wu", self.name, verdict="exact_yes_no", judge=self._judge_id, v=1))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        self._judge_id = judge.id
        per = judged_once(self._shared, records, judge, lambda: analyse(records, judge))
        summary = summarize(per)
        per_sample = None
        if self.name == "stic2":
            per_sample = tuple(_ratio(sum(s.yes.values()), sum(s.n_checks.values())) for s in per)
        elif self.name == "wavg_mean_of_products":
            per_sample = tuple(s.cr / 100 * _ratio(sum(s.yes.values()), sum(s.n_checks.values())) for s in per)
        details: dict[str, Any] = {k: summary[k] for k in ("n_checks", "n_judged", "n_yes", "n_invalid")}
        if self.name in ("wavg", "wavg_mean_of_products"):
            details["reading"] = "product_of_means" if self.name == "wavg" else "mean_of_products"
        if per_sample is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, summary[self.name], self.signature(), per_sample=per_sample,
                            details=details)


JUDGED = ("stic1", "stic2", "wavg", "wavg_mean_of_products", "acc_once", "acc_range", "acc_periodic", "acc_mean")
