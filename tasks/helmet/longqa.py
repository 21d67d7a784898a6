"""HELMET LongQA: NarrativeQA, InfiniteBench QA and InfiniteBench MC (``load_narrativeqa`` / ``load_infbench``
in HELMET's data.py). One user message with the chat template; documents pre-truncated to the number in
HELMET's dataset name (``_longdoc``), then cut to the length like every HELMET context.

* NarrativeQA: the test split in ``Dataset.shuffle(seed)`` order, documents of more than 131072 tokens only,
  the first 100; two demonstrations (question and first answer) from the train split, drawn as HELMET
  draws them (an unseeded ``shuffle()`` per question, replayed from NumPy's global generator seeded with
  ``seed``: :class:`._data.GlobalNumpyShuffles`). 100 new tokens. Metric: the judged ``judge_score``
  (HELMET's ``gpt-4-score``), plus HELMET's QA metrics.
* InfiniteBench QA (``longbook_qa_eng``) / MC (``longbook_choice_eng``): two demonstrations from the same
  split without the question itself (``shuffle(seed)``), shown with ``[story text]`` in place of their
  story; documents of at least 65536 tokens; 100 in ``shuffle(seed)`` order. 10 new tokens. Metrics:
  ``rougeL_f1`` (QA) and ``exact_match`` (MC: the letter, or the letter with its option text found in the
  output).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.types import Record

from ._base import Item, templates
from ._data import HUB, DataRoot, GlobalNumpyShuffles, Rows, fmt, permutation, shuffled_first
from ._judge import LongQaJudge, prompts_sha256
from ._longdoc import LongDocTask
from ._metrics import QA_METRICS, Analysis, HelmetMetric, calculate_metrics, parse_output, qa_analysis, qa_metrics

NARRATIVEQA_MIN_TOKENS = 131072
INFBENCH_MIN_TOKENS = 65536


class NarrativeQaTask(LongDocTask):
    category = "longqa"
    dataset = "narrativeqa"
    template = "narrativeqa"
    primary_metric = "judge_score"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [HUB["narrativeqa"]["test"], HUB["narrativeqa"]["train"]]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        test = root.rows(HUB["narrativeqa"]["test"], {"document": dict, "question": dict, "answers": list})
        train = root.rows(HUB["narrativeqa"]["train"], {"question": dict, "answers": list})
        try:
            order = [i for i in permutation(len(test), self.opts["seed"])
                     if self.n_tokens(test[i]["document"]["text"]) > NARRATIVEQA_MIN_TOKENS]
        except (KeyError, TypeError):
            raise UserError(f"{self.name}: NarrativeQA rows need document.text, question.text and answers[].text "
                            "(the Hub dataset's rows)") from None
        n = self.opts["max_test_samples"]
        order = order[:n] if n is not None else order
        shots = self.opts["shots"]
        draws = GlobalNumpyShuffles(self.opts["seed"])
        t = self.tmpl
        limit = self.doc_limit(length)
        out = []
        for i in order:
            r = test[i]
            demo = ""
            if shots > 0:
                picks = draws.permutation(len(train))[:shots]
                demo = t["demo_head"] + "\n\n".join(
                    fmt(t["demo"], {}, question=train[j]["question"]["text"], answer=train[j]["answers"][0]["text"])
                    for j in picks) + t["demo_tail"]
            answers = [a["text"] for a in r["answers"]]
            context = self.pretruncate(r["document"]["text"], limit)
            fields = {"context": context, "question": r["question"]["text"], "answer": answers, "demo": demo}
            out.append(Item(key=str(i), fields=fields, target={"answers": answers, "question": r["question"]["text"]},
                            meta={"row": i, "document_id": r["document"].get("id")}))
        return out

    def metrics(self) -> Sequence[Any]:
        return [LongQaJudge("judge_score"), *qa_metrics(QA_METRICS, qa_analysis(), "max(raw,parsed:'Answer:')|norm:squad")]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["judge_prompts_sha256"] = {k: v for k, v in prompts_sha256().items() if k.startswith("longqa")}
        d["demo_draws"] = "unseeded Dataset.shuffle() replayed from np.random.RandomState(seed)"
        return d


class InfBenchTask(LongDocTask):
    category = "longqa"
    split = ""
    min_tokens = INFBENCH_MIN_TOKENS

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [HUB["infbench"][cls.split]]

    def _rows(self, root: DataRoot) -> list[dict[str, Any]]:
        return root.rows(HUB["infbench"][self.split], {"id": None, "context": str, "input": None, "answer": None})

    def _process(self, r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "question": r["input"], "demo": ""}

    def _demo(self, x: dict[str, Any]) -> str:
        return fmt(self.tmpl["demo"], x)

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        rows = [self._process(r) for r in self._rows(root)]
        shots, seed = self.opts["shots"], self.opts["seed"]
        kept = [i for i in range(len(rows)) if self.n_tokens(rows[i]["context"]) >= self.min_tokens]
        kept = [kept[j] for j in shuffled_first(len(kept), self.opts["max_test_samples"], seed)]
        limit = self.doc_limit(length)
        out = []
        for i in kept:
            r = rows[i]
            demo = ""
            if shots > 0:  # the other rows of the split (before the length filter), shuffle(seed), the first shots
                pool = [x for x in rows if x["id"] != r["id"]]
                demo = "\n\n".join(self._demo(pool[j]) for j in permutation(len(pool), seed)[:shots])
                demo = fmt(self.tmpl_demos(), {}, demo=demo)
            fields = {**r, "context": self.pretruncate(r["context"], limit), "demo": demo}
            out.append(Item(key=str(r["id"]), fields=fields, target=self._target(r), meta={"row": i}))
        return out

    def tmpl_demos(self) -> str:
        return templates()["infbench_demos"]

    def _target(self, r: dict[str, Any]) -> dict[str, Any]:
        return {"answers": r["answer"], "question": r["question"]}


class InfBenchQaTask(InfBenchTask):
    dataset = "infbench_qa_eng"
    template = "infbench_qa_eng"
    split = "longbook_qa_eng"
    primary_metric = "rougeL_f1"

    def metrics(self) -> Sequence[Any]:
        names = ("rougeL_f1",) + tuple(m for m in QA_METRICS if m != "rougeL_f1")
        return qa_metrics(names, qa_analysis(), "max(raw,parsed:'Answer:')|norm:squad|rouge_score:stemmer")


class InfBenchChoiceTask(InfBenchTask):
    dataset = "infbench_choice_eng"
    template = "infbench_choice_eng"
    split = "longbook_choice_eng"
    primary_metric = "exact_match"

    def _process(self, r: dict[str, Any]) -> dict[str, Any]:
        opts = r.get("options") or []
        if len(opts) < 4 or not r["answer"] or r["answer"][0] not in opts:
            raise UserError(f"{self.name}: row {r.get('id')}: a choice row needs 4 options and its answer among them")
        letter = chr(ord("A") + opts.index(r["answer"][0]))
        return {**r, "question": r["input"], "demo": "", "options": self.tmpl["options"].format(*opts),
                "answer": [letter, f"{letter}. {r['answer'][0]}"]}

    def metrics(self) -> Sequence[Any]:
        def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
            out = []
            for r in records:
                ans, pred = r.sample.target["answers"], r.prediction
                mets = calculate_metrics(pred, ans)
                mets.pop("substring_exact_match")
                parsed = parse_output(pred)
                if parsed is not None:
                    new = calculate_metrics(parsed, ans)
                    mets = {k: max(v, new[k]) for k, v in mets.items()}
                mets["substring_exact_match"] = 0.0
                if ans[1].lower() in pred.lower():
                    mets["substring_exact_match"] = mets["exact_match"] = 1.0
                out.append(mets)
            return out

        an = Analysis(fn)
        names = ("exact_match",) + tuple(m for m in QA_METRICS if m != "exact_match")
        return [HelmetMetric(m, an, "choice:max(raw,parsed)|letter_with_option_substring") for m in names]

