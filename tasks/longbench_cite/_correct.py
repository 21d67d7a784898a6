"""LongBench-Cite correctness (``LongBench-Cite/eval_correct.py`` of THUDM/LongCite@d7d772e, re-implemented;
the judge prompts are kept byte-exact in ``prompts/correct_*.txt``, see SOURCE.md).

Per sample: the answer with every ``<cite>…</cite>`` and the ``<statement>`` tags removed is rated by the
judge against each reference answer, and the best rating counts:

* multifieldqa_en / _zh, hotpotqa, dureader: the QA prompt (question, reference, answer), rating 1-3,
  score ``(rating - 1) / 2``;
* gov_report: the summary prompt (reference, answer), rating 1-5, score ``(rating - 1) / 4``;
* longbench-chat: the few-shot prompt (question, reference, the row's three rated ``few_shot_scores``
  answers in shuffled order, then the answer with newlines turned into spaces), rating 1-10, score
  ``rating / 10``, judge reply cut at the first blank line (upstream's ``stop=["\\n\\n"]``).

Each prompt goes as a system message ("You're a good assistant at evaluating the quality of texts.") and a
user message, greedy, up to 1024 tokens (upstream: GPT-4o-2024-05-13, temperature 0). The rating is the
first number inside the last ``[[...]]`` of the reply. A reply without one counts 0.5, upstream's value once
its retries (at temperature 0, so the same reply) run out. The dataset value is the mean x100.

Differences: upstream shuffles the few-shot answers with the unseeded global ``random``; here the order comes
from ``random.Random(<sample id>)`` (reproducible; the rating may depend on it, as upstream's does). A rating
that is not an integer (``[[2.5]]``) makes upstream raise; here it counts as unparseable (0.5). A failed judge
call is left out of the mean and counted (``n_judge_errors``), so that re-scoring once the judge answers gives
the full number; upstream retries and falls back to 0.5.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Sequence

from evalsuite.contracts import NO_CONTEXT, NeedsJudge, ScoreContext
from evalsuite.signature import Signature
from evalsuite.types import Message, MetricResult, Record

PROMPTS = Path(__file__).resolve().parent / "prompts"
QA_DATASETS = ("multifieldqa_en", "multifieldqa_zh", "hotpotqa", "dureader")
JUDGE_MAX_TOKENS = 1024
"""upstream ``query_llm``'s ``max_new_tokens`` default, which ``eval_correct.py`` leaves as is."""
_RATING = re.compile(r"\[\[([^\]]+)\]\]")
_NUMBER = re.compile(r"\d+\.\d+|\d+")


def _read(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8")


def clean_answer(prediction: str) -> str:
    """The answer without its citations: ``<cite>…</cite>`` blocks and the ``<statement>`` tags removed."""
    text = re.sub(r"<cite>.*?</cite>", "", prediction, flags=re.DOTALL)
    return text.replace("<statement>", "").replace("</statement>", "")


def rating(reply: str) -> int | None:
    """The first number inside the last ``[[...]]``, when it is an integer; None otherwise."""
    found = _RATING.findall(reply)
    if not found:
        return None
    nums = _NUMBER.findall(found[-1])
    if not nums or "." in nums[0]:
        return None
    return int(nums[0])


def rating_to_score(dataset: str, value: int) -> float:
    if dataset == "gov_report":
        return (value - 1.0) / 4
    if dataset == "longbench-chat":
        return value / 10
    return (value - 1.0) / 2


def judge_prompt(dataset: str, question: str, reference: str, answer: str,
                 few_shots: Sequence[dict[str, Any]] | None = None, seed: str = "") -> str:
    """The user message upstream sends for one (answer, reference) pair."""
    if dataset == "gov_report":
        return _read("correct_summ_prompt_template.txt").replace("$A$", reference).replace("$P$", answer)
    if dataset == "longbench-chat":
        shots = [(s["answer"], s["score"]) for s in (few_shots or [])]
        if len(shots) != 3:
            from evalsuite.errors import UserError

            raise UserError(f"longbench_cite/longbench-chat: sample {seed} has {len(shots)} few_shot_scores; "
                            "the judge prompt takes 3 (as in LongBench-Cite.json)")
        random.Random(seed).shuffle(shots)
        flat = [x for pair in shots for x in pair]
        return _read("correct_fewshot_prompt_template.txt").format(question, reference, *flat,
                                                                  answer.replace("\n", " ").strip())
    return (_read("correct_qa_prompt_template.txt").replace("$Q$", question).replace("$A$", reference)
            .replace("$P$", answer))


class LongBenchCiteCorrectness(NeedsJudge):
    """Judged answer correctness (``correctness``, x100), beside the citation metrics."""

    higher_is_better = True
    version = "1"
    name = "correctness"

    def __init__(self, dataset: str):
        self.dataset = dataset
        self._judge_id = "none"

    def signature(self) -> str:
        return str(Signature("longbench_cite", "correctness", self.dataset, judge=self._judge_id, scale=100,
                             v=self.version))

    def queries(self, records: Sequence[Record]) -> list[list[Any]]:
        """Per record, one judge query per reference answer."""
        from evalsuite.judge import JudgeQuery

        system = _read("correct_system_prompt.txt")
        stop = ("\n\n",) if self.dataset == "longbench-chat" else ()
        out = []
        for r in records:
            t = r.sample.target
            refs = t.get("answer")
            refs = refs if isinstance(refs, list) else [refs if refs is not None else ""]
            answer = clean_answer(r.prediction if isinstance(r.prediction, str) else str(r.prediction))
            qs = []
            for j, ref in enumerate(refs):
                user = judge_prompt(self.dataset, t["question"], str(ref), answer, t.get("few_shot_scores"),
                                    seed=str(r.sample.id))
                qs.append(JudgeQuery(f"{r.sample.id}/correct/{j}", (Message("system", system), Message("user", user)),
                                     max_tokens=JUDGE_MAX_TOKENS, stop=stop))
            out.append(qs)
        return out

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        self._judge_id = judge.id
        per_record = self.queries(records)
        flat = [q for qs in per_record for q in qs]
        gens = judge.generate(flat) if flat else []
        pos, per, errors, unparseable = 0, [], 0, 0
        for qs in per_record:
            got = gens[pos:pos + len(qs)]
            pos += len(qs)
            if any(not g.ok for g in got):
                errors += 1
                per.append(None)
                continue
            best = 0.0
            for q, g in zip(qs, got):
                text = g.text
                for st in q.stop:  # also when a judge backend does not honour stop strings
                    text = text.split(st)[0]
                v = rating(text)
                if v is None:
                    unparseable += 1
                    s = 0.5  # upstream's value when no rating can be read
                else:
                    s = rating_to_score(self.dataset, v)
                best = max(best, s)
            per.append(best)
        kept = [v for v in per if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        details: dict[str, Any] = {"n_scored": len(kept), "n_judge_errors": errors,
                                   "n_unparseable_rating": unparseable}
        per_sample = tuple(kept) if len(kept) == len(per) else None
        if per_sample is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), per_sample, True, details)
