"""HELMET Re-rank: MS MARCO passage re-ranking (``load_msmarco_rerank`` in HELMET's data.py).

100 queries drawn with ``random.Random(seed).sample`` over the sorted query ids; every passage shown as
``[ID: {id}] Document (Title: ...): ...``; two demonstrations (queries of the ``k10`` file with their
passages and gold ranking), shuffled with ``sha256(qid) % 2**31``, the test queries removed from the demo
pool. Completion prompt ending in ``Ranking:``; stop at a newline; 200 new tokens.
Metric: ``NDCG@10`` of the ranking parsed from the output against the passages' labels, trec_eval's
``ndcg_cut_10`` rounded to 5 decimals per query (HELMET via pytrec_eval).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.types import Record, Sample

from ._base import HelmetTask, Item
from ._config import specs
from ._data import DataRoot, Rows, archive, first_unique, fmt, permutation, sample_by_key, sha_seed
from ._metrics import Analysis, HelmetMetric, ndcg_cut, parse_rankings

def _ranking(ctxs: Sequence[dict[str, Any]]) -> str:
    return " > ".join(str(c["id"]) for c in sorted(ctxs, key=lambda c: c["label"], reverse=True))


class MsMarcoTask(HelmetTask):
    category = "rerank"
    dataset = "msmarco_rerank_psg"
    template = "msmarco_rerank_psg"
    primary_metric = "NDCG@10"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        spec = specs()[cls.dataset]
        return [f for L in lengths for f in (archive(spec.lengths[L].test_file, "MS MARCO test file"),
                                             archive(spec.lengths[L].demo_file, "MS MARCO demo file"))]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        test_file, demo_file = self.data_files([length], self.opts)
        fields = {"qid": None, "query": None, "ctxs": list}
        data = root.rows(test_file, fields)
        demos = root.rows(demo_file, fields)
        for r in data + demos:
            if "qid" not in r or not isinstance(r.get("ctxs"), list) or not r["ctxs"]:
                raise UserError(f"{self.name}: an MS MARCO row needs 'qid', 'query' and a non-empty 'ctxs' list")
        key = "qid" if any("qid" in r for r in data) else "query"
        rows = [(i, data[i]) for i in sample_by_key(data, key, self.opts["max_test_samples"], self.opts["seed"])]
        filtered = len(demos) > 2 * len(rows)
        if filtered:
            qids = {r["qid"] for _, r in rows}
            demos = [d for d in demos if d["qid"] not in qids]
        t = self.tmpl
        shots = self.opts["shots"]
        out = []
        for i, r in rows:
            passage = t["passage_title"] if "title" in r["ctxs"][0] else t["passage"]
            context = "\n\n".join(fmt(passage, c) for c in r["ctxs"])
            demo_text = ""
            if shots > 0:
                pool = demos if filtered else [d for d in demos if d["qid"] != r["qid"]]
                h = abs(sha_seed(str(r["qid"])) % 2**31)
                for j in first_unique(permutation(len(pool), h), pool, "qid", shots):
                    d = pool[j]
                    demo_text += ("\n\n".join(fmt(passage, c) for c in d["ctxs"])
                                  + fmt(t["demo_query"], {}, query=d["query"], ranking=_ranking(d["ctxs"])) + "\n\n")
            qrel = {str(c["id"]): int(c["label"]) for c in r["ctxs"]}
            fields = {**r, "context": context, "question": r["query"], "demos": demo_text}
            out.append(Item(key=str(r["qid"]), fields=fields,
                            target={"qid": str(r["qid"]), "qrel": qrel, "answers": _ranking(r["ctxs"])},
                            meta={"row": i, "n_passages": len(r["ctxs"])}))
        return out

    def gold_answer(self, sample: Sample) -> str:
        return sample.target["answers"]

    def metrics(self) -> Sequence[Any]:
        def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
            out = []
            for r in records:
                run = parse_rankings(r.prediction)
                qrel = {k: int(v) for k, v in r.sample.target["qrel"].items()}
                out.append({"NDCG@10": round(ndcg_cut(run, qrel, 10), 5), "num_preds": len(run)})
            return out

        return [HelmetMetric("NDCG@10", Analysis(fn), "trec_eval:ndcg_cut_10|round:5|parse:helmet_rankings")]
