"""HELMET Cite: ALCE ASQA and QAMPARI (``load_alce`` in HELMET's data.py, scored as its ``eval_alce.py``).

Built on tasks/alce: its copies of HELMET's prompt files (``prompts/{asqa,qampari}_revised.json``) and its
metrics (``str_em`` / ``qampari_rec_top5`` and the NLI citation recall / precision of
``evalsuite.metrics.citation`` in ALCE-compatible mode). What HELMET does and ``alce/*`` does not:

* demonstrations: ``random.sample`` of 2 of the 4 prompt-file demos for EVERY row of the eval file in file
  order, from ``random.Random(seed)`` (HELMET's global ``random`` after ``random.seed(seed)``), and only
  then 100 rows are kept, in ``Dataset.shuffle(seed)`` order;
* passages: the first 30/75/165/345/700 (the number in HELMET's dataset name for 8K...128K), and the
  document text is cut by HELMET's context truncation (``alce/*`` removes whole documents instead).

One user message with the chat template; 300 new tokens.
"""

from __future__ import annotations

import json
import random
from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.tasks.alce import PROMPTS, QampariRecTop5, StrEM, helmet_output
from evalsuite.types import Generation, Sample, sha256_text
from evalsuite.citation import CitationConfig
from evalsuite.metrics.citation import CitationNLI

from ._base import HelmetTask, Item
from ._config import specs
from ._data import DataRoot, Rows, archive, fmt, shuffled_first
from ._metrics import with_lengths


class HelmetAlceTask(HelmetTask):
    category = "cite"
    template = "alce"
    alce: str = "asqa"

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self.prompt_file = PROMPTS / f"{self.alce}_revised.json"
        self._prompt = json.loads(self.prompt_file.read_text(encoding="utf-8"))

    def _doc_text(self, docs: Sequence[dict[str, Any]]) -> str:
        return "\n\n".join(fmt(self._prompt["doc_prompt"], d, ID=i + 1) for i, d in enumerate(docs))

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [archive(specs()[cls.dataset].lengths[L].test_file, "ALCE eval file") for L in lengths]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        spec = self.spec.lengths[length]
        num_docs = int(spec.dataset.split("_")[-1])
        data = root.rows(self.data_files([length], self.opts)[0], {"question": None, "docs": list})
        p = self._prompt
        shots = self.opts["shots"]
        if shots > len(p["demos"]):
            raise UserError(f"{self.name}: shots={shots} but the prompt file has {len(p['demos'])} demos")
        rng = random.Random(self.opts["seed"])
        demo_texts = []
        for _ in data:  # one draw per row of the file, in file order
            text = "\n\n\n".join(fmt(p["demo_prompt"], d, instruction=p["instruction"], context=self._doc_text(d["docs"]))
                                 for d in rng.sample(p["demos"], shots))
            demo_texts.append(text + "\n\n\n" if shots > 0 else text)
        out = []
        for i in shuffled_first(len(data), self.opts["max_test_samples"], self.opts["seed"]):
            r = data[i]
            docs = [{"title": d.get("title"), "text": d.get("text")} for d in (r.get("docs") or [])[:num_docs]]
            fields = {**r, "context": self._doc_text(r.get("docs", [])[:num_docs]), "demo_text": demo_texts[i],
                      "instruction": p["instruction"]}
            target: dict[str, Any] = {"question": r["question"], "docs": docs, "answer": r.get("answer") or ""}
            for k in ("qa_pairs", "answers"):
                if r.get(k) is not None:
                    target[k] = r[k]
            out.append(Item(key=str(r.get("sample_id", r.get("id", i))), fields=fields, target=target,
                            meta={"row": i, "n_docs": len(docs), "length_bucket": str(length)}))
        return out

    def extract(self, sample: Sample, generation: Generation) -> str:
        """eval_alce.py: newline runs become one space and ``<|im_end|>`` is removed."""
        return helmet_output(super().extract(sample, generation))

    def gold_answer(self, sample: Sample) -> str:
        return sample.target.get("answer") or ""

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        if self.alce == "qampari":
            cfg = CitationConfig(mode="alce", splitter="qampari", min_chars=0)
            correct: Any = QampariRecTop5()
        else:
            cfg = CitationConfig(mode="alce", splitter="punkt", min_chars=5)
            correct = StrEM()
        return [with_lengths(m) for m in (correct, CitationNLI("citation_rec", cfg, "alce", shared),
                                         CitationNLI("citation_prec", cfg, "alce", shared))]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"prompt_file": f"tasks/alce/prompts/{self.prompt_file.name}",
                  "prompt_sha256": sha256_text(self.prompt_file.read_text(encoding="utf-8"))})
        return d
