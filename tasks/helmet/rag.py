"""HELMET RAG: KILT NQ, TriviaQA, HotpotQA and PopQA (``load_qa`` in HELMET's data.py).

Each question comes with the retrieved passages of its ``kilt/*-multikilt_1000_k<N>_dep*.jsonl`` row (N
grows with the length) as ``Document (Title: ...): ...`` blocks. 100 questions are drawn with
``random.Random(seed).sample`` over the sorted question keys; every row of a drawn question is kept (a
question can come at several gold-passage depths). Two demonstrations per question come from the ``k3``
train file, shuffled with a seed made from the question (``sha256 % 2**31``), repeated questions dropped.
PopQA keeps questions with ``log10(s_pop) < 3`` and draws its demos from its own k3 file, minus the
question itself. Completion prompt ending in ``Answer:``; stop at a newline; 20 new tokens.
Metric: ``substring_exact_match`` (and HELMET's other QA metrics), max over the output and its parse.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError

from ._base import HelmetTask, Item
from ._config import specs
from ._data import DataRoot, Rows, archive, first_unique, fmt, permutation, sample_by_key, sha_seed
from ._metrics import QA_METRICS, qa_analysis, qa_metrics


class KiltTask(HelmetTask):
    category = "rag"
    template = "kilt"
    popularity_threshold: float | None = None
    primary_metric = "substring_exact_match"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        spec = specs()[cls.dataset]
        return [f for L in lengths for f in (archive(spec.lengths[L].test_file, "KILT test file"),
                                             archive(spec.lengths[L].demo_file, "KILT demo file"))]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        test_file, demo_file = self.data_files([length], self.opts)
        fields = {"question": None, "answers": None, "ctxs": list}
        data = root.rows(test_file, fields)
        demos = root.rows(demo_file, fields)
        if self.popularity_threshold is not None:
            try:
                data = [r for r in data if math.log10(r["s_pop"]) < self.popularity_threshold]
                demos = [r for r in demos if math.log10(r["s_pop"]) < self.popularity_threshold]
            except (KeyError, TypeError, ValueError):
                raise UserError(f"{self.name}: PopQA rows need a positive 's_pop'") from None
        key = "id" if any("id" in r for r in data) else "question"
        rows = [(i, data[i]) for i in sample_by_key(data, key, self.opts["max_test_samples"], self.opts["seed"])]
        t = self.tmpl
        shots = self.opts["shots"]
        out = []
        for i, r in rows:
            demo_text = ""
            if shots > 0:
                pool = [d for d in demos if d.get(key) != r.get(key)] if self.popularity_threshold is not None else demos
                h = sha_seed(str(r.get(key))) % 2**31
                picked = first_unique(permutation(len(pool), h), pool, key, shots)
                demo_text = t["demo_sep"].join(
                    fmt(t["demo"], pool[j], documents=t["passage_sep"].join(fmt(t["passage"], c) for c in pool[j]["ctxs"]),
                        answer=pool[j]["answers"][0]) for j in picked) + "\n\n"
            context = t["passage_sep"].join(fmt(t["passage"], c) for c in r.get("ctxs") or [])
            fields = {**r, "demos": demo_text, "context": context, "answer": r["answers"]}
            meta = {"row": i, "n_passages": len(r.get("ctxs") or [])}
            if "depth" in r:
                meta["depth"] = r["depth"]
            out.append(Item(key=str(i), fields=fields, target={"answers": r["answers"]}, meta=meta))
        return out

    def metrics(self) -> Sequence[Any]:
        names = ("substring_exact_match",) + tuple(m for m in QA_METRICS if m != "substring_exact_match")
        return qa_metrics(names, qa_analysis(), "max(raw,parsed:'Answer:')|norm:squad")


class PopQaTask(KiltTask):
    popularity_threshold = 3.0
