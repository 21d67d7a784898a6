"""L-CiteEval's correctness metrics, re-implemented from upstream ``script/eval_correct.py``
(ZetangForward/L-CITEEVAL@6e49326; no code copied: the repository declares no license).

Per task family, each sample's score from its generation (stripped) and its reference answer(s):

* QA and dialogue (narrativeqa, natural_questions, hotpotqa, 2wikimultihopqa, locomo, dialsim): the first
  line, citations removed (``[n`` and ``]`` as ALCE, `` |`` too), then LongBench/SQuAD token F1, precision
  and recall after ``normalize_answer``; with several answers each of the three is the maximum over them
  separately (so the best F1 and the best precision may come from different answers); an int answer is
  read as text. Metrics ``answer_f1``, ``answer_precision``, ``answer_recall``.
* Summarisation (gov_report, multi_news, qmsum): when "summary" occurs (any case) in the first 100
  characters, the text after the first ``:`` (anywhere) is kept, and an output with no ``:`` scores 0
  (upstream ``continue``); then the first line, citations removed; empty scores 0; else ROUGE-L F of the
  ``rouge`` package (pltrdy 1.0.1, ``get_scores(avg=True)``). Metric ``rouge_l``.
* niah: the first line, citations removed, ROUGE-1 *recall* (``rouge-1`` ``r``). Metric ``rouge_1_recall``.
* counting_stars: the gold counts are read from the chunks holding "The little penguin counted N ★"; the
  output's JSON object (first ``{`` to first ``}``) gives ``little_penguin``, cut to the number of gold
  counts; score = (number of its entries found among the gold counts) / (number of gold counts), duplicates
  counted each time. Unparseable output scores 0. Metric ``accuracy``.

The value is 100 x the mean over all samples (upstream divides by the number of samples, skipped ones
included); ``details.official`` is it rounded to 2 as upstream prints it and ``details.by_length_bucket``
the per-bucket means. For counting_stars upstream's per-bucket printout leaves out the samples after a
bucket's last parsed one; ``details.by_length_bucket_as_upstream_prints`` reproduces it.

Where upstream crashes we score 0 or take the natural reading, and say so: a ``rouge`` exception (upstream
indexes the 0.0 it returns and stops), a list of reference answers for the ROUGE tasks (upstream compares a
float with a dict and stops; here the best over the answers), a counting_stars object without
``little_penguin`` or with a non-list one (KeyError / TypeError upstream; 0 here).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from typing import Any, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.citation import by_bucket, remove_citations_alce
from evalsuite.types import MetricResult, Record

QA_TASKS = ("narrativeqa", "natural_questions", "hotpotqa", "2wikimultihopqa", "dialsim", "locomo")
SUMMARY_TASKS = ("qmsum", "gov_report", "multi_news")
PENGUIN = re.compile(r"The little penguin counted (\d+) ★")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def metric_names(task: str) -> tuple[str, ...]:
    if task in QA_TASKS:
        return ("answer_f1", "answer_precision", "answer_recall")
    if task in SUMMARY_TASKS:
        return ("rouge_l",)
    if task == "niah":
        return ("rouge_1_recall",)
    return ("accuracy",)


def strip_citations(text: str) -> str:
    """Citation marks out, as upstream's ``remove_citations`` (ALCE's): `` [n`` then ``[n``, `` |``, every ``]``."""
    return remove_citations_alce(text)


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _normalize(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def token_prf(prediction: str, reference: str) -> tuple[float, float, float]:
    """``(f1, precision, recall)`` of normalized bags of tokens; all 0 without overlap."""
    pred, ref = _normalize(prediction).split(), _normalize(reference).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0, 0.0, 0.0
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r), p, r


def _answers(answer: Any) -> list[str]:
    if isinstance(answer, list):
        return [str(a) for a in answer]
    return [str(answer if answer is not None else "")]


def _rouge(prediction: str, reference: str) -> dict[str, Any] | None:
    """``Rouge().get_scores([p], [r], avg=True)`` (all three measures, as upstream), None on any error."""
    from rouge import Rouge

    try:
        return Rouge().get_scores([prediction], [reference], avg=True)
    except Exception:
        return None


def qa_scores(output: str, answer: Any) -> tuple[float, float, float]:
    pred = strip_citations(_first_line(output.strip()))
    best = [0.0, 0.0, 0.0]
    for ref in _answers(answer):
        for k, v in enumerate(token_prf(pred, ref)):
            best[k] = max(best[k], v)
    return best[0], best[1], best[2]


def summary_rouge_l(output: str, answer: Any) -> float:
    text = output.strip()
    if "summary" in text[:100].lower():
        if ":" not in text:
            return 0.0
        text = text[text.index(":") + 1:].strip()
    text = strip_citations(_first_line(text))
    if text == "":
        return 0.0
    scores = [_rouge(text, ref) for ref in _answers(answer)]
    return max((s["rouge-l"]["f"] for s in scores if s is not None), default=0.0)


def niah_rouge_1_recall(output: str, answer: Any) -> float:
    text = strip_citations(_first_line(output.strip()))
    scores = [_rouge(text, ref) for ref in _answers(answer)]
    return max((s["rouge-1"]["r"] for s in scores if s is not None), default=0.0)


def _penguin_json(output: str) -> Any:
    """The output's JSON object (first ``{`` to first ``}``), or raises ValueError."""
    text = output.strip()
    return json.loads(text[text.index("{"):text.index("}") + 1])


def counting_stars_accuracy(output: str, docs: Sequence[Mapping[str, Any]]) -> float:
    gold = [int(m.group(1)) for d in docs if "The little penguin counted" in d["text"]
            for m in [PENGUIN.search(d["text"])] if m]
    if not gold:
        return 0.0
    try:
        counts = _penguin_json(output)["little_penguin"]
        if not isinstance(counts, list):
            return 0.0
    except (ValueError, KeyError, TypeError):
        return 0.0
    return sum(1 for c in counts[:len(gold)] if c in gold) / len(gold)


def upstream_bucket_printout(records: Sequence[Record], values: Sequence[float]) -> dict[str, float]:
    """counting_stars' per-bucket figures as upstream prints them: its bucket value is set after each sample
    whose JSON parsed, so the samples after the bucket's last parsed one (scored 0) are left out of it, and a
    bucket with no parsed sample has no value. (``by_length_bucket`` holds the true means.)"""
    lists: dict[str, list[float]] = {}
    shown: dict[str, float] = {}
    for r, v in sorted(zip(records, values), key=lambda rv: rv[0].sample.index):
        b = r.sample.metadata.get("length_bucket")
        if b is None:
            continue
        lists.setdefault(str(b), []).append(100 * v)
        try:
            _penguin_json(r.prediction if isinstance(r.prediction, str) else str(r.prediction))
        except ValueError:
            continue
        vals = lists[str(b)]
        shown[str(b)] = round(sum(vals) / len(vals), 2)
    return shown


class LCiteEvalCorrect:
    """One of L-CiteEval's correctness metrics (see the module docstring), x100, by length bucket."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str, task: str):
        if name not in metric_names(task):
            raise ValueError(f"lciteeval/{task} has no correctness metric {name!r}")
        self.name, self.task = name, task

    def signature(self) -> str:
        return str(Signature("lciteeval-correct", self.task, self.name, "eval_correct.py@6e49326", v=self.version))

    def sample_value(self, record: Record) -> float:
        t = record.sample.target
        out = record.prediction if isinstance(record.prediction, str) else str(record.prediction)
        if self.task in QA_TASKS:
            f1, p, r = qa_scores(out, t.get("answer"))
            return {"answer_f1": f1, "answer_precision": p, "answer_recall": r}[self.name]
        if self.task in SUMMARY_TASKS:
            return summary_rouge_l(out, t.get("answer"))
        if self.task == "niah":
            return niah_rouge_1_recall(out, t.get("answer"))
        return counting_stars_accuracy(out, t.get("docs") or [])

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = [self.sample_value(r) for r in records]
        value = 100 * sum(per) / len(per) if per else 0.0
        details: dict[str, Any] = {"scale": 100.0, "official": round(value, 2)}
        buckets = by_bucket(records, per)
        if buckets:
            details["by_length_bucket"] = {b: round(v, 2) for b, v in buckets.items()}
            if self.task == "counting_stars":
                details["by_length_bucket_as_upstream_prints"] = upstream_bucket_printout(records, per)
        return MetricResult(self.name, value, self.signature(), tuple(per), True, details)
