"""HELMET Summ: InfiniteBench Sum and Multi-LexSum (``load_infbench`` / ``load_multi_lexsum`` in HELMET's
data.py), judged as ``scripts/eval_gpt4_summ.py`` does (``_judge.SummJudge``) with the expert key points
of HELMET's release (``infbench/longbook_sum_eng_keypoints.jsonl``, ``multi_lexsum/multi_lexsum_val.jsonl``).

* InfiniteBench Sum (``longbook_sum_eng``): as InfiniteBench QA, demonstrations ``[story text]\\nSummary: ...``;
  1200 new tokens; the expert summary for precision is the reference answer.
* Multi-LexSum (v20230518): rows with a short summary; the sources joined by blank lines; validation rows
  with at least 65536 tokens, 100 of them in ``shuffle(seed)`` order; two example short summaries from the
  train split per row, drawn as HELMET draws them (``Dataset.map`` over train, then validation, each row
  an unseeded ``shuffle()``: :class:`._data.GlobalNumpyShuffles`); 400 new tokens; the expert summary for
  precision is ``summary/long``.

Also reported: HELMET's ROUGE / EM / F1 numbers (max over the output and its parse after ``Answer:`` for
InfiniteBench, ``Summary:`` for Multi-LexSum).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.types import Sample

from ._base import Item
from ._data import HUB, DataRoot, GlobalNumpyShuffles, Rows, archive, fmt, permutation
from ._judge import SummJudge, prompts_sha256
from ._longdoc import LongDocTask
from ._metrics import QA_METRICS, qa_analysis, qa_metrics
from .longqa import InfBenchTask

MULTI_LEXSUM_MIN_TOKENS = 65536
JUDGE_NAMES = ("judge_f1", "judge_recall", "judge_precision", "judge_fluency")


def _keypoints(root: DataRoot, rel: str, field: str) -> dict[str, list[str]]:
    return {str(r["id"]): r[field] for r in root.rows(archive(rel, "key points file"), {"id": None, field: list})}


class InfBenchSumTask(InfBenchTask):
    category = "summ"
    dataset = "infbench_sum_eng"
    template = "infbench_sum_eng"
    split = "longbook_sum_eng"
    primary_metric = "judge_f1"
    KEYPOINTS = "infbench/longbook_sum_eng_keypoints.jsonl"

    def _demo(self, x: dict[str, Any]) -> str:
        return fmt(self.tmpl["demo"], {}, summary=x["answer"][0].strip())

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [archive(cls.KEYPOINTS, "key points file"), HUB["infbench"][cls.split]]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        self._kp = _keypoints(root, self.KEYPOINTS, "keypoints")
        return super()._items(length, root)

    def _target(self, r: dict[str, Any]) -> dict[str, Any]:
        kp = self._kp.get(str(r["id"]))
        if kp is None:
            raise UserError(f"{self.name}: no key points for InfiniteBench Sum id {r['id']} in {self.KEYPOINTS}")
        return {"answers": r["answer"], "keypoints": kp, "expert_summary": r["answer"][0]}

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        return [*(SummJudge(n, shared, book=True) for n in JUDGE_NAMES),
                *qa_metrics(QA_METRICS, qa_analysis(), "max(raw,parsed:'Answer:')|norm:squad")]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["judge_prompts_sha256"] = {k: v for k, v in prompts_sha256().items() if k.endswith("_book.txt")}
        return d


class MultiLexSumTask(LongDocTask):
    category = "summ"
    dataset = "multi_lexsum"
    template = "multi_lexsum"
    primary_metric = "judge_f1"
    KEYPOINTS = "multi_lexsum/multi_lexsum_val.jsonl"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [*HUB["multi_lexsum"].values(), archive(cls.KEYPOINTS, "key points file")]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        fields = {"id": None, "sources": list, "summary/short": (str, None)}
        splits = {k: [r for r in root.rows(v, fields) if r.get("summary/short") is not None]
                  for k, v in HUB["multi_lexsum"].items()}
        train, val = splits["train"], splits["validation"]
        kp = _keypoints(root, self.KEYPOINTS, "summary/short_keypoints")
        shots, seed = self.opts["shots"], self.opts["seed"]
        demos: list[str] = [""] * len(val)
        if shots > 0:
            draws = GlobalNumpyShuffles(seed)
            for _ in train:  # Dataset.map runs over the train split first
                draws.next_seed()
            t = self.tmpl
            for j in range(len(val)):
                picks = draws.permutation(len(train))[:shots]
                demos[j] = t["demo_head"] + "\n\n".join(t["demo"].format(train[p]["summary/short"]) for p in picks) \
                    + t["demo_tail"]
        contexts = ["\n\n".join(r["sources"]) for r in val]
        kept = [j for j in range(len(val)) if self.n_tokens(contexts[j]) >= MULTI_LEXSUM_MIN_TOKENS]
        n = self.opts["max_test_samples"]
        if n is not None and len(kept) > n:
            kept = [kept[i] for i in permutation(len(kept), seed)[:n]]
        limit = self.doc_limit(length)
        out = []
        for j in kept:
            r = val[j]
            keypoints = kp.get(str(r["id"]))
            if keypoints is None:
                raise UserError(f"{self.name}: no key points for Multi-LexSum id {r['id']} in {self.KEYPOINTS}")
            fields = {**r, "context": self.pretruncate(contexts[j], limit), "demo": demos[j],
                      "answer": r["summary/short"], "question": ""}
            out.append(Item(key=str(r["id"]), fields=fields,
                            target={"answers": r["summary/short"], "keypoints": keypoints,
                                    "expert_summary": r.get("summary/long") or ""},
                            meta={"row": j}))
        return out

    def gold_answer(self, sample: Sample) -> str:
        return sample.target["answers"]

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        return [*(SummJudge(n, shared, book=False) for n in JUDGE_NAMES),
                *qa_metrics(QA_METRICS, qa_analysis(parse_prefix="Summary:"), "max(raw,parsed:'Summary:')|norm:squad")]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["judge_prompts_sha256"] = {k: v for k, v in prompts_sha256().items()
                                     if k.startswith("summ_") and not k.endswith("_book.txt")}
        d["demo_draws"] = "unseeded Dataset.shuffle() over train then validation rows, replayed from " \
                          "np.random.RandomState(seed)"
        return d
