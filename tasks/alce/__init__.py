"""ALCE ASQA and QAMPARI in HELMET's long-context form (princeton-nlp/HELMET@4526dfb, ``load_alce``).

``register(registry)`` adds ``alce/asqa`` and ``alce/qampari``. Each test question gets its first ``n_docs``
retrieved passages (HELMET: 30/75/165/345/700 at 8K/16K/32K/64K/128K; ``-T length=`` picks the number,
``-T n_docs=`` sets it), numbered from 1 as ``Document [{ID}](Title: {title}): {text}`` and joined by blank
lines, after ``shots`` demos (default 2, drawn with a seeded ``random.sample`` from the 4 in the copied
``prompts/<dataset>_revised.json``). With ``-T max_length=N`` and a tokenizer, documents are removed from the
end until the prompt fits ``N - max_tokens`` tokens (HELMET's rule). One user message, chat template on,
300 new tokens.

Metrics: correctness (ASQA ``str_em``, QAMPARI ``qampari_rec_top5``), the NLI citation numbers of
``evalsuite.metrics.citation`` (judge needed: ``--judge-backend nli_seq2seq --judge-model
<t5_xxl_true_nli_mixture>`` for HELMET parity) and the rule-based citation numbers against gold document ids
when the data carries them (``gold_doc_ids``, or citations inside a row's ``answer``, as in the demo answers).

Data: ``-T data_file=`` a HELMET/ALCE eval file (``{asqa,qampari}_eval_gtr_top2000.json``: a JSON list, or
JSON lines, of ``{question, answer?, docs:[{title,text}], qa_pairs? (ASQA), answers? (QAMPARI)}``) or
``-T data_dir=`` a folder holding it (HELMET's ``data/alce/``). By default the file is read from HELMET's
11.3 GB ``data.tar.gz``, its only release, fetched and unpacked once (the same archive as ``helmet/*``).
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.data import data_path
from evalsuite.datafiles import check_fields, read_records
from evalsuite.sources import Need
from evalsuite.errors import UserError
from evalsuite.citation import CitationConfig, parse_citations, remove_citations_alce
from evalsuite.metrics.citation import NLI_NAMES, RULE_NAMES, CitationNLI, CitationRule
from evalsuite.task import BaseTask, Option
from evalsuite.options import non_negative_int
from evalsuite.types import Generation, MetricResult, Record, Request, GenParams, Sample, sha256_text

PROMPTS = Path(__file__).parent / "prompts"


def _source() -> Any:
    """HELMET's data.tar.gz (tasks/helmet/_data.py, provenance in tasks/helmet/SOURCE.md): the only release of
    the long-context ALCE files; fetched and unpacked once, shared with ``helmet/alce_*``."""
    from evalsuite.tasks.helmet._data import HELMET

    return HELMET


DOCS_BY_LENGTH = {"8k": 30, "16k": 75, "32k": 165, "64k": 345, "128k": 700}
"""HELMET's dataset names encode the number of passages per target length."""


def normalize_answer(s: str) -> str:
    """SQuAD normalization: lower case, drop punctuation and the articles a/an/the, squeeze spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def helmet_output(text: str) -> str:
    """HELMET's output normalization: runs of newlines become one space; ``<|im_end|>`` is removed."""
    return re.sub(r"\n+", " ", text).replace("<|im_end|>", "")


class StrEM:
    """ASQA STR-EM: per sample, the fraction of ``qa_pairs`` with any short answer (normalized) inside the
    normalized citation-free output; mean x100."""

    name = "str_em"
    higher_is_better = True

    def signature(self) -> str:
        return str(Signature("alce", "str_em", norm="squad", cites="removed", scale=100, v=1))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = []
        for r in records:
            pairs = r.sample.target.get("qa_pairs") or []
            out = normalize_answer(remove_citations_alce(r.prediction))
            hits = [any(normalize_answer(a) in out for a in qa["short_answers"]) for qa in pairs]
            per.append(sum(hits) / len(hits) if hits else None)
        kept = [v for v in per if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        ps = tuple(kept) if len(kept) == len(per) else None
        return MetricResult(self.name, value, self.signature(), ps, True,
                            {"scale": 100.0, "n_without_qa_pairs": len(per) - len(kept)} if ps else
                            {"n_without_qa_pairs": len(per) - len(kept)})


class QampariRecTop5:
    """QAMPARI recall@5: min(5, #gold answers hit by an exact normalized comma item) / min(5, #gold)."""

    name = "qampari_rec_top5"
    higher_is_better = True

    def signature(self) -> str:
        return str(Signature("alce", "qampari_rec_top5", norm="squad", cites="removed", scale=100, v=1))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = []
        for r in records:
            answers = r.sample.target.get("answers") or []
            out = remove_citations_alce(r.prediction)
            preds = [normalize_answer(x.strip()) for x in out.rstrip().rstrip(".").rstrip(",").split(",")]
            preds = [p for p in preds if p]
            gold = [[normalize_answer(x) for x in a] for a in answers]
            hit = sum(any(x in preds for x in a) for a in gold)
            per.append(min(5, hit) / min(5, len(gold)) if gold else None)
        kept = [v for v in per if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        ps = tuple(kept) if len(kept) == len(per) else None
        return MetricResult(self.name, value, self.signature(), ps, True,
                            {"scale": 100.0} if ps else {"n_without_answers": len(per) - len(kept)})


class AlceTask(BaseTask, DataNeeds):
    dataset = "asqa"
    version = "1"
    primary_metric = "citation_rec"
    options: Mapping[str, Option] = {
        "data_file": Option(str, None, "HELMET/ALCE eval file (JSON list or JSON lines)"),
        "data_dir": Option(str, None, "a folder holding <dataset>_eval_gtr_top2000.json (HELMET's data/alce/)"),
        "length": Option(str, "128k", "HELMET length setting: 8k, 16k, 32k, 64k, 128k (sets n_docs)"),
        "n_docs": Option(non_negative_int, None, "passages per question (overrides length)"),
        "shots": Option(non_negative_int, 2, "demos drawn from the 4 in the prompt file (HELMET: 2)"),
        "seed": Option(int, 42, "demo sampling seed (HELMET default 42)"),
        "max_tokens": Option(int, 300, "generation budget (HELMET: 300)"),
        "max_length": Option(int, None, "token budget of the whole input + generation; docs are removed from "
                             "the end to fit (needs the backend's tokenizer)"),
        "limit_samples": Option(int, None, "first N questions only"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        if self.opts["length"] not in DOCS_BY_LENGTH:
            raise UserError(f"{self.name}: length must be one of {sorted(DOCS_BY_LENGTH)}")
        if self.opts["n_docs"] is None:
            self.opts["n_docs"] = DOCS_BY_LENGTH[self.opts["length"]]
        self.prompt_file = PROMPTS / f"{self.dataset}_revised.json"
        self._prompt = json.loads(self.prompt_file.read_text(encoding="utf-8"))
        self._source: dict[str, Any] | None = None

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [Need(_source(), "data.tar.gz", member=f"data/alce/{cls.dataset}_eval_gtr_top2000.json")]

    def _rows(self) -> list[dict[str, Any]]:
        name = f"{self.dataset}_eval_gtr_top2000.json"
        path, self._source = data_path(self.name, self.data_needs(self.opts)[0], self.opts["data_dir"],
                                       self.opts["data_file"], name)
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip()
        rows = read_records(path, self.name, "json" if head[:1] == b"[" else "jsonl")
        check_fields(rows, {"question": str, "docs": list}, f"{self.name}: {path}", unit="record")
        return rows

    def _doc_text(self, docs: Sequence[Mapping[str, Any]]) -> str:
        return "\n\n".join(self._prompt["doc_prompt"].format(ID=i + 1, title=d["title"], text=d["text"])
                           for i, d in enumerate(docs))

    def _demo_text(self, rng: random.Random) -> str:
        p = self._prompt
        demos = rng.sample(p["demos"], self.opts["shots"])
        return "".join(p["demo_prompt"].format(instruction=p["instruction"], question=d["question"],
                                               context=self._doc_text(d["docs"]), answer=d["answer"]) + "\n\n\n"
                       for d in demos)

    def render(self, demo_text: str, question: str, docs: Sequence[Mapping[str, Any]]) -> str:
        """HELMET's user turn: ``{demos}{instruction}\\n\\nQuestion: {question}\\n\\n{docs}``."""
        return f"{demo_text}{self._prompt['instruction']}\n\nQuestion: {question}\n\n{self._doc_text(docs)}"

    def samples(self) -> Iterator[Sample]:
        rows = self._rows()
        if self.opts["limit_samples"] is not None:
            rows = rows[: self.opts["limit_samples"]]
        rng = random.Random(self.opts["seed"])
        for i, row in enumerate(rows):
            docs = [{"title": d.get("title", ""), "text": d.get("text", "")} for d in row["docs"][: self.opts["n_docs"]]]
            demo_text = self._demo_text(rng)
            docs = self._fit(demo_text, row["question"], docs)
            target: dict[str, Any] = {"question": row["question"], "docs": docs,
                                      "answer": row.get("answer") or ""}
            for key in ("qa_pairs", "answers"):
                if row.get(key) is not None:
                    target[key] = row[key]
            gold = row.get("gold_doc_ids")
            if gold is None and isinstance(row.get("answer"), str) and "[" in row["answer"]:
                ids = parse_citations(row["answer"], len(docs), "strict", None).ids
                gold = sorted(set(ids)) if ids else None
            if gold is not None:
                target["gold_doc_ids"] = [int(x) for x in gold]
            yield Sample(id=str(row.get("id", f"{self.dataset}-{i}")), index=i,
                         input={"demo_text": demo_text, "question": row["question"]}, target=target,
                         metadata={"n_docs": len(docs), "length": self.opts["length"]})

    def _fit(self, demo_text: str, question: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        budget = self.opts["max_length"]
        tok = self.ctx.tokenizer
        if budget is None or tok is None:
            return docs
        from evalsuite.tokenizer import request_ids

        limit = budget - self.opts["max_tokens"]

        def n_tok(k: int) -> int:  # the prompt as the model sees it, chat template included
            req = Request.new(prompt=self.render(demo_text, question, docs[:k]),
                          params=GenParams(max_tokens=self.opts["max_tokens"]), use_chat_template=True)
            return len(request_ids(tok, req))

        if n_tok(len(docs)) <= limit:
            return docs
        lo, hi = 0, len(docs)  # largest k with n_tok(k) <= limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if n_tok(mid) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return docs[:lo]

    def request(self, sample: Sample) -> Request:
        prompt = self.render(sample.input["demo_text"], sample.input["question"], sample.target["docs"])
        return Request.new(prompt=prompt,
                       params=GenParams(max_tokens=self.opts["max_tokens"]), use_chat_template=True)

    def extract(self, sample: Sample, generation: Generation) -> str:
        return helmet_output(generation.text)

    def citation_config(self) -> CitationConfig:
        if self.dataset == "qampari":
            return CitationConfig(mode="alce", splitter="qampari", min_chars=0)
        return CitationConfig(mode="alce", splitter="punkt", min_chars=5)

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        cfg = self.citation_config()
        correct = StrEM() if self.dataset == "asqa" else QampariRecTop5()
        rule_cfg = CitationConfig(mode="strict", splitter=cfg.splitter, min_chars=cfg.min_chars)
        return [*(CitationNLI(n, cfg, "alce", shared) for n in NLI_NAMES), correct,
                *(CitationRule(n, rule_cfg) for n in RULE_NAMES)]

    def gold(self, sample: Sample) -> str:
        return sample.target.get("answer") or ""

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "ALCE in HELMET's long-context form (princeton-nlp/HELMET@4526dfb)",
                  "dataset": self.dataset, "data": self._source,
                  "prompt_file": self.prompt_file.name,
                  "prompt_sha256": sha256_text(self.prompt_file.read_text(encoding="utf-8"))})
        return d


def configs() -> dict[str, dict[str, Any]]:
    return {ds: {"dataset": ds, "description": f"ALCE {ds.upper()} (HELMET long-context form): citation "
                 f"recall/precision (NLI judge) + {'STR-EM' if ds == 'asqa' else 'recall@5'}"}
            for ds in ("asqa", "qampari")}


def register(registry: Any) -> None:
    registry.add_family("alce", AlceTask, configs())
