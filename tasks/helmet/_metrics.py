"""HELMET's metrics and answer post-processing, written from its ``utils.py`` / ``data.py`` (read, not copied).

* Answers are normalised as SQuAD does (lower case, punctuation and a/an/the removed, spaces squeezed).
* ``exact_match``, ``f1`` (0 when exactly one side is yes/no/noanswer and they differ), ``substring_exact_match``
  (the normalised reference inside the normalised prediction): max over the references (a list of lists
  is flattened).
* ``rougeL_*`` / ``rougeLsum_*``: Google's ``rouge_score`` with the Porter stemmer, F1 and recall, max over
  the references.
* Post-processing (``default_post_process``): every metric is computed on the output and on the output
  parsed after its prefix (``parse_output``), and the larger of the two is kept, metric by metric.
* ``ruler_recall``: the share of references found (case-insensitive) in the output.
* ``NDCG@10``: trec_eval's ``ndcg_cut_10`` (what HELMET gets from pytrec_eval) of the ranking parsed from the
  output, rounded to 5 decimals per query as HELMET's averaging does.

Per-sample values are in [0, 1] and reported x100, with a ``by_length`` breakdown (HELMET's input length
of each sample) in the details.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, NeedsJudge, ScoreContext
from evalsuite.signature import Signature
from evalsuite.metrics import Metric, needs_judge, score_metric
from evalsuite.types import MetricResult, Record

_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    p, g = normalize_answer(prediction), normalize_answer(ground_truth)
    special = ("yes", "no", "noanswer")
    if (p in special or g in special) and p != g:
        return 0.0
    pt, gt = p.split(), g.split()
    same = sum((Counter(pt) & Counter(gt)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pt), same / len(gt)
    return 2 * precision * recall / (precision + recall)


def flat_answers(answers: Any) -> list[str]:
    """HELMET's reference list: a string becomes one reference, a list of lists is flattened."""
    if isinstance(answers, str):
        return [answers]
    answers = list(answers)
    if answers and isinstance(answers[0], list):
        return [a for group in answers for a in group]
    return answers


def _rouge_scorer() -> Any:
    """``rouge_score``'s scorer (rougeL + rougeLsum, Porter stemmer), as HELMET builds it; loaded without
    nltk's package ``__init__`` (``evalsuite.text``)."""
    from evalsuite.text import rouge_scorer

    return rouge_scorer(("rougeL", "rougeLsum"), True)


QA_METRICS = ("exact_match", "f1", "substring_exact_match", "rougeL_f1", "rougeL_recall", "rougeLsum_f1",
              "rougeLsum_recall")


def calculate_metrics(prediction: str, answers: Any) -> dict[str, float]:
    refs = flat_answers(answers)
    if not refs:  # upstream raises on an empty reference list; nothing can match it
        return {k: 0.0 for k in QA_METRICS}
    p_norm = normalize_answer(prediction)
    normed = [normalize_answer(a) for a in refs]
    em = max(float(p_norm == a) for a in normed)
    sub = max(float(a in p_norm) for a in normed)
    f1 = max(f1_score(prediction, a) for a in refs)
    scorer = _rouge_scorer()
    rouges = [scorer.score(target=a, prediction=prediction) for a in refs]
    out = {"exact_match": em, "f1": f1, "substring_exact_match": sub}
    for k in ("rougeL", "rougeLsum"):
        out[k + "_f1"] = max(r[k].fmeasure for r in rouges)
        out[k + "_recall"] = max(r[k].recall for r in rouges)
    return out


def parse_output(output: str, prefix: str = "Answer:") -> str | None:
    """The text after the first ``prefix`` on its line (case-insensitive), else the first line; a repeated
    prefix at its start is removed. The prefix is a regular expression, as upstream uses it."""
    patterns = [re.compile(f"(?:{prefix})(.*)(?:\n|$)", flags=re.IGNORECASE), re.compile(r"(?:^)(.*)(?:\n|$)")]
    for pat in patterns:
        m = pat.search(output)
        if m is not None:
            return re.sub(f"^{re.escape(prefix)}", "", m[1].strip(), flags=re.IGNORECASE).strip()
    return None


def best_of_parsed(prediction: str, answers: Any, prefix: str = "Answer:") -> dict[str, float]:
    """``default_post_process``: each metric's max over the output and its parsed form."""
    mets = calculate_metrics(prediction, answers)
    parsed = parse_output(prediction, prefix)
    if parsed is not None:
        new = calculate_metrics(parsed, answers)
        mets = {k: max(v, new[k]) for k, v in mets.items()}
    return mets


def ruler_recall(prediction: str, answers: Any) -> float:
    low = prediction.lower()
    return sum(a.lower() in low for a in answers) / len(answers)


# -- re-ranking ------------------------------------------------------------------------------------
def parse_rankings(output: str) -> dict[str, int]:
    """HELMET's ranking parser: drop ``[``, ``]``, ``:`` and "id", take the longest ``n > n > ...`` run of
    integers; each id scores (run length - position), first occurrence kept. Without digits the whole
    (cleaned) output is one id."""
    out = re.sub(r"[\[\]:]", "", output).lower().replace("id", "")
    longest = ""
    for m in re.finditer(r"(\d+)(?:\s*>\s*(\d+))*", out):
        if len(m.group(0)) > len(longest):
            longest = m.group(0)
    ranks = [n.strip() for n in longest.split(">") if n.strip().isdigit()] if longest else [out]
    res: dict[str, int] = {}
    for i, r in enumerate(ranks):
        if r not in res:
            res[r] = len(ranks) - i
    return res


def ndcg_cut(run: Mapping[str, float], qrel: Mapping[str, int], k: int) -> float:
    """trec_eval ``ndcg_cut_k`` for one query: documents by score (descending; ties by document id,
    descending), gain = relevance label, discount log2(rank + 1); the ideal ranking sorts the judged
    labels. 0 when no document is relevant."""
    ranked = sorted(run.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    dcg = 0.0
    for i, (doc, _) in enumerate(ranked[:k]):
        g = qrel.get(doc, 0)
        if g > 0:
            dcg += g / math.log2(i + 2)
    ideal_gains = sorted((g for g in qrel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains))
    return dcg / idcg if idcg > 0 else 0.0


# -- metric objects --------------------------------------------------------------------------------
def by_length(records: Sequence[Record], values: Sequence[float | None], scale: float = 100.0) -> dict[str, Any]:
    """Mean x ``scale`` per HELMET input length (``metadata["input_max_length"]``), ascending."""
    groups: dict[int, list[float]] = {}
    for r, v in zip(records, values):
        L = (r.sample.metadata or {}).get("input_max_length")
        if L is None or v is None:
            continue
        groups.setdefault(int(L), []).append(v)
    if not groups:
        return {}
    return {"by_length": {str(L): scale * sum(vs) / len(vs) for L, vs in sorted(groups.items())},
            "n_by_length": {str(L): len(vs) for L, vs in sorted(groups.items())}}


class Analysis:
    """Per-record metric dicts computed once per scoring pass and shared by a task's metrics."""

    def __init__(self, fn: Callable[[Sequence[Record]], list[dict[str, float] | None]]):
        self.fn = fn
        self._memo: tuple[Any, list[dict[str, float] | None]] | None = None

    def __call__(self, records: Sequence[Record]) -> list[dict[str, float] | None]:
        if self._memo is None or self._memo[0] is not records:
            self._memo = (records, self.fn(records))
        return self._memo[1]


class HelmetMetric:
    """One HELMET number: the mean (x100) of a per-sample value from a shared :class:`Analysis`. Samples
    whose analysis is None (no verdict) are left out and counted."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str, analysis: Analysis, signature: str, key: str | None = None):
        self.name = name
        self.key = key or name
        self.analysis = analysis
        self._signature = signature

    def signature(self) -> str:
        return str(Signature("helmet", self.name, self._signature, scale=100, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = self.analysis(records)
        vals = [None if p is None else float(p[self.key]) for p in per]
        kept = [v for v in vals if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        details: dict[str, Any] = {**by_length(records, vals)}
        if len(kept) != len(vals):
            details["n_not_scored"] = len(vals) - len(kept)
        ps = tuple(kept) if len(kept) == len(vals) else None
        if ps is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), ps, True, details)


def qa_analysis(parse_prefix: str = "Answer:") -> Analysis:
    """``default_post_process`` over every record: the metrics of the output (the answer prefix already
    prepended for completion prompts) and of its parsed form, max of each."""

    def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
        return [best_of_parsed(r.prediction, r.sample.target["answers"], parse_prefix) for r in records]

    return Analysis(fn)


def qa_metrics(names: Sequence[str], analysis: Analysis, sig: str) -> list[HelmetMetric]:
    return [HelmetMetric(n, analysis, sig) for n in names]


class WithLengths:
    """Another metric with HELMET's ``by_length`` breakdown added to its details (from its per-sample
    values, or from a ``by_length_bucket`` breakdown keyed by the input length). :func:`with_lengths` picks
    this class or :class:`JudgedWithLengths` (for a judged metric)."""

    def __init__(self, inner: Metric):
        self.inner = inner
        self.name = inner.name
        self.higher_is_better = inner.higher_is_better

    def signature(self) -> str:
        return self.inner.signature()

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        return self._with_lengths(records, score_metric(self.inner, records, ctx))

    @staticmethod
    def _with_lengths(records: Sequence[Record], res: MetricResult) -> MetricResult:
        import dataclasses

        details = dict(res.details or {})
        if res.per_sample is not None:
            details.update(by_length(records, res.per_sample))
        elif isinstance(details.get("by_length_bucket"), dict):
            details["by_length"] = {str(k): v for k, v in sorted(details["by_length_bucket"].items(),
                                                                 key=lambda kv: int(kv[0]))}
        return dataclasses.replace(res, details=details)


class JudgedWithLengths(WithLengths, NeedsJudge):
    """:class:`WithLengths` around a judged metric (scored with the run's judge)."""

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        ctx = ScoreContext(ctx.task, ctx.need_judge(self.name, judge), ctx.options)
        return self._with_lengths(records, score_metric(self.inner, records, ctx))


def with_lengths(inner: Metric) -> WithLengths:
    """``inner`` with HELMET's ``by_length`` breakdown (judged or not, as ``inner`` is)."""
    return JudgedWithLengths(inner) if needs_judge(inner) else WithLengths(inner)