"""HELMET's model-based evaluation through the run's judge (``--judge-backend``; docs/judge.md), as its
``scripts/eval_gpt4_longqa.py`` and ``scripts/eval_gpt4_summ.py`` do it with GPT-4o. The prompts are
byte-exact copies in ``judge_prompts/`` (SOURCE.md).

* NarrativeQA (``judge_score``, HELMET's ``gpt-4-score``): one prompt per answer with the question, the
  correct answers (a Python list, as HELMET formats it) and the output parsed after ``Answer:`` (newlines
  made spaces); the judge's last ``{...}`` is read as JSON; score = fluency x correctness (0-3), reported x
  100/3 as HELMET's results table does. Answers without a parseable verdict are left out.
* Summaries (``judge_f1``, HELMET's ``gpt-4-f1``, plus ``judge_recall``, ``judge_precision``,
  ``judge_fluency``): three prompts per summary (fluency; recall of the expert key points; precision of
  the summary's sentences against the expert summary), the book variants for InfiniteBench Sum.
  recall = found / #key points, precision = supported / #sentences, f1 = fluency x F1(recall, precision);
  a summary with any failed or unparseable verdict is left out, as upstream skips it.

HELMET asked GPT-4o with temperature 0.1, top_p 0.9, seed 42; the judge here is greedy unless told
otherwise (``-J temperature=0.1 -J top_p=0.9 -J seed=42`` restores it). Budgets: 2048 tokens (LongQA),
4096 (Summ), as HELMET's judge model had.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from evalsuite.contracts import NO_CONTEXT, NeedsJudge, ScoreContext, judged_once
from evalsuite.signature import Signature
from evalsuite.types import MetricResult, Record, sha256_text

from ._metrics import by_length

PROMPTS = Path(__file__).parent / "judge_prompts"
LONGQA_TOKENS = 2048
SUMM_TOKENS = 4096


@lru_cache(maxsize=None)
def prompt(name: str) -> str:
    return (PROMPTS / f"{name}.txt").read_text(encoding="utf-8")


def prompts_sha256() -> dict[str, str]:
    return {p.name: sha256_text(p.read_text(encoding="utf-8")) for p in sorted(PROMPTS.glob("*.txt"))}


def parse_json_longqa(text: str) -> Any:
    """eval_gpt4_longqa.py: the last ``{...}`` (non-greedy) as JSON, else None."""
    matches = re.findall(r"\{.*?\}", text, re.DOTALL)
    if not matches:
        return None
    try:
        return json.loads(matches[-1])
    except ValueError:
        return None


def parse_json_summ(text: str) -> Any:
    """eval_gpt4_summ.py: the last ``{...}``; if that is not JSON, the last ```json fenced block."""
    if not re.search(r"\{.*?\}", text, re.DOTALL):
        return None
    parsed = parse_json_longqa(text)
    if parsed is not None:
        return parsed
    fenced = re.findall(r"(?:```json)(.+)(?:```)", text, re.DOTALL)
    try:
        return json.loads(fenced[-1])
    except (ValueError, IndexError):
        return None


def parse_output_longqa(output: str, prefix: str = "Answer:") -> str | None:
    """eval_gpt4_longqa.py's ``parse_output``: newlines become spaces first."""
    from ._metrics import parse_output

    return parse_output(output.replace("\n", " "), prefix)


class _Judged(NeedsJudge):
    higher_is_better = True
    version = "1"
    kind = ""
    keys: tuple[str, ...] = ()

    def __init__(self, name: str, shared: dict[str, Any] | None = None):
        if name not in self.keys:
            raise ValueError(name)
        self.name = name
        self._shared = shared if shared is not None else {}
        self._judge_id = "none"

    def signature(self) -> str:
        return str(Signature("helmet", self.name, self.kind, judge=self._judge_id, scale=100, v=self.version))

    def _analyse(self, records: Sequence[Record], judge: Any) -> tuple[list[dict[str, float] | None], dict[str, int]]:
        raise NotImplementedError

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        self._judge_id = judge.id
        per, counts = judged_once(self._shared, records, judge, lambda: self._analyse(records, judge))
        vals = [None if p is None else p[self.name] for p in per]
        kept = [v for v in vals if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        details: dict[str, Any] = {"n_scored": len(kept), "n_not_scored": len(vals) - len(kept), **counts,
                                   **by_length(records, vals)}
        ps = tuple(kept) if len(kept) == len(vals) else None
        if ps is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), ps, True, details)


class LongQaJudge(_Judged):
    """NarrativeQA's judged score (fluency x correctness / 3 per answer)."""

    kind = "longqa_judge_prompt|score:fluency*correctness/3"
    keys = ("judge_score",)

    def _analyse(self, records: Sequence[Record], judge: Any) -> tuple[list[dict[str, float] | None], dict[str, int]]:
        from evalsuite.judge import JudgeQuery

        template = prompt("longqa_judge_prompt")
        queries = [JudgeQuery(f"{r.sample.id}/judge", template.format(
            question=r.sample.target["question"], correct_answers=r.sample.target["answers"],
            parsed_output=parse_output_longqa(r.prediction)), max_tokens=LONGQA_TOKENS) for r in records]
        gens = judge.generate(queries)
        per: list[dict[str, float] | None] = []
        counts = {"n_judge_failed": 0, "n_unparseable": 0}
        for g in gens:
            if not g.ok:
                counts["n_judge_failed"] += 1
                per.append(None)
                continue
            s = parse_json_longqa(g.text)
            try:
                per.append({"judge_score": float(s["fluency"]) * float(s["correctness"]) / 3.0})
            except (TypeError, KeyError, ValueError):
                counts["n_unparseable"] += 1
                per.append(None)
        return per, counts


class SummJudge(_Judged):
    """Summaries: fluency, key-point recall, sentence precision and their F1 (x fluency)."""

    kind = "summ_judge_prompts|f1:fluency*F1(recall,precision)"
    keys = ("judge_f1", "judge_recall", "judge_precision", "judge_fluency")

    def __init__(self, name: str, shared: dict[str, Any] | None = None, book: bool = False):
        super().__init__(name, shared)
        self.book = book

    def _analyse(self, records: Sequence[Record], judge: Any) -> tuple[list[dict[str, float] | None], dict[str, int]]:
        from evalsuite.judge import JudgeQuery

        sfx = "_book" if self.book else ""
        fp, rp, pp = (prompt(f"summ_{k}_prompt{sfx}") for k in ("fluency", "recall", "precision"))
        queries = []
        for r in records:
            t = r.sample.target
            out = r.prediction.strip()
            keypoints = "\n".join(f"{i + 1}. {kp}" for i, kp in enumerate(t["keypoints"]))
            queries += [JudgeQuery(f"{r.sample.id}/fluency", fp.format(text=out), max_tokens=SUMM_TOKENS),
                        JudgeQuery(f"{r.sample.id}/recall", rp.format(keypoints=keypoints, summary=out),
                                   max_tokens=SUMM_TOKENS),
                        JudgeQuery(f"{r.sample.id}/precision", pp.format(expert_summary=t["expert_summary"], summary=out),
                                   max_tokens=SUMM_TOKENS)]
        gens = judge.generate(queries)
        per: list[dict[str, float] | None] = []
        counts = {"n_judge_failed": 0, "n_unparseable": 0}
        for i, r in enumerate(records):
            trio = gens[3 * i:3 * i + 3]
            if any(not g.ok for g in trio):
                counts["n_judge_failed"] += 1
                per.append(None)
                continue
            f, rr, p = (parse_json_summ(g.text) for g in trio)
            try:
                n_kp = len(r.sample.target["keypoints"])
                rec = float(rr["recall"]) / n_kp if n_kp > 0 else 0.0
                prec = float(p["precision"]) / float(p["sentence_count"]) if float(p["sentence_count"]) > 0 else 0.0
                flu = float(f["fluency"])
            except (TypeError, KeyError, ValueError):
                counts["n_unparseable"] += 1
                per.append(None)
                continue
            f1 = flu * 2 * rec * prec / (rec + prec) if rec + prec > 0 else 0.0
            per.append({"judge_f1": f1, "judge_recall": rec, "judge_precision": prec, "judge_fluency": flu})
        return per, counts
