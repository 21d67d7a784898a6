"""L-CiteEval's own citation rules: the rule-based scores of ``niah`` and ``counting_stars`` (no judge), and
how it writes a document as NLI premise (``Passage: {text}``). The NLI citation metrics themselves are the
shared ``evalsuite.metrics.citation.CitationNLI``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.citation import K_MAX, ALCE_CITE, by_bucket, harmonic_f1
from evalsuite.types import MetricResult, Record


def lciteeval_premise(doc: Mapping[str, Any]) -> str:
    """Premise text of one document as L-CiteEval writes it: ``Passage: {text}`` (``Title: ...\nPassage: ...``
    when the document has a title)."""
    return f"Passage: {doc['text']}" if not doc.get("title") else f"Title: {doc['title']}\nPassage: {doc['text']}"


def niah_citation(output: str, docs: Sequence[Mapping[str, Any]], answer: Any, k: int = K_MAX
                  ) -> tuple[float, float, float]:
    """L-CiteEval niah: gold = the first document containing the answer; only the first line of the stripped
    output counts; ids as ALCE (``[\\d+``, duplicates kept, first k, no range check). Recall 1 if the gold
    document is cited, precision 1/#citations then, else both 0. When no document holds the answer upstream
    reuses the previous sample's gold index (a bug); here the sample scores 0."""
    ans = answer if isinstance(answer, str) else (answer[0] if answer else "")
    gold = next((j for j, d in enumerate(docs) if ans and ans in d["text"]), None)
    first = output.strip().split("\n", 1)[0]
    ref = [int(m[1:]) - 1 for m in ALCE_CITE.findall(first)][:k]
    if gold is None or gold not in ref:
        return 0.0, 0.0, 0.0
    p = 1 / len(ref)
    return 1.0, p, harmonic_f1(p, 1.0)


COUNTING_STARS_MARK = "The little penguin counted"


def counting_stars_citation(output: str, docs: Sequence[Mapping[str, Any]]) -> tuple[float, float, float]:
    """L-CiteEval counting_stars: gold = 1-based ids of documents containing "The little penguin counted";
    the answer is the JSON object from the first "{" to the first "}" of the output; predicted ids =
    set(passage_id) compared as JSON values (a string "3" does not match 3, as upstream). Unparseable output
    or no ``passage_id`` scores 0 (recall, precision, F1)."""
    import json

    gold = {j + 1 for j, d in enumerate(docs) if COUNTING_STARS_MARK in d["text"]}
    text = output.strip()
    try:
        obj = json.loads(text[text.index("{"): text.index("}") + 1])
        pred = set(obj["passage_id"])
    except (ValueError, KeyError, TypeError):
        return 0.0, 0.0, 0.0
    hit = sum(1 for x in pred if x in gold)
    p = hit / len(pred) if pred else 0.0
    r = hit / len(gold) if gold else 0.0
    return r, p, harmonic_f1(p, r)


LCITE_RULE_NAMES = ("citation_rec", "citation_prec", "citation_f1_mean")


class LCiteEvalRule:
    """L-CiteEval's rule-based citation scores for ``niah`` and ``counting_stars`` (no judge)."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str, task: str):
        if name not in LCITE_RULE_NAMES or task not in ("niah", "counting_stars"):
            raise ValueError(f"LCiteEvalRule: bad name/task {name!r}/{task!r}")
        self.name, self.task = name, task

    def signature(self) -> str:
        return str(Signature("citation_lciteeval_rule", self.task, self.name, k=K_MAX, scale=100, v=self.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        pos = LCITE_RULE_NAMES.index(self.name)
        per = []
        for r in records:
            t = r.sample.target
            trip = niah_citation(r.prediction, t["docs"], t.get("answer")) if self.task == "niah" \
                else counting_stars_citation(r.prediction, t["docs"])
            per.append(trip[pos])
        value = 100 * sum(per) / len(per) if per else float("nan")
        details: dict[str, Any] = {"scale": 100.0}
        buckets = by_bucket(records, per)
        if buckets:
            details["by_length_bucket"] = buckets
        return MetricResult(self.name, value, self.signature(), tuple(per), True, details)


__all__ = ["COUNTING_STARS_MARK", "LCITE_RULE_NAMES", "LCiteEvalRule", "counting_stars_citation", "lciteeval_premise",
           "niah_citation"]
