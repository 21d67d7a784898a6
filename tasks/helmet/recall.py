"""HELMET Synthetic recall: RULER MK needle (``ruler_niah_mk_2``), MK UUID (``ruler_niah_mk_3``), MV
(``ruler_niah_mv``) and JSON KV (``json_kv``); ``load_ruler`` / ``load_json_kv`` in HELMET's data.py.

RULER rows come from HELMET's released validation files (``ruler/<task>/validation_<length>.jsonl``:
``context``, ``query``, ``type_needle_v``, ``answer`` or ``outputs``); ``-T source=generate`` makes them
instead with evalsuite's RULER generator (tasks/ruler, the same synthetic.yaml configuration), sized with
the model's tokenizer to each length and laid out as HELMET lays out its prompt.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from evalsuite.options import choice
from evalsuite.errors import UserError
from evalsuite.task import Option
from evalsuite.types import Record, Sample

from ._base import HelmetTask, Item
from ._config import specs
from ._data import DataRoot, Rows, archive, fmt, shuffled_first
from ._metrics import QA_METRICS, Analysis, HelmetMetric, best_of_parsed, ruler_recall

RULER_CONFIGS = {"ruler_niah_mk_2": "niah_multikey_2", "ruler_niah_mk_3": "niah_multikey_3",
                 "ruler_niah_mv": "niah_multivalue"}
"""HELMET dataset -> RULER synthetic.yaml task (and HELMET's data/ruler/<folder>)."""


_source = choice("files", "generate",
                 message="source must be 'files' (HELMET's released validation files) or 'generate'")


class RulerRecallTask(HelmetTask):
    category = "recall"
    options: Mapping[str, Option] = {
        **HelmetTask.options,
        "source": Option(_source, "files", "files: HELMET's validation files; generate: evalsuite's RULER "
                         "generator with the model's tokenizer (tasks/ruler)"),
        "essay_file": Option(str, None, "generate + MV: RULER's PaulGrahamEssays.json (or a .txt) for the essay "
                             "haystack (see tasks/ruler)"),
    }

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        if str(options.get("source") or "files") == "generate":
            return []  # RULER's generator: nothing is read (an essay file is -T essay_file=)
        return [archive(specs()[cls.dataset].lengths[L].test_file, "RULER validation file") for L in lengths]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        if self.opts["source"] == "generate":
            return self._generated(length)
        rows = root.rows(self.data_files([length], self.opts)[0], {"context": str, "type_needle_v": None})
        out = []
        for i in shuffled_first(len(rows), self.opts["max_test_samples"], self.opts["seed"]):
            r = rows[i]
            answer = r["answer"] if "answer" in r else r.get("outputs")
            if answer is None:
                raise UserError(f"{self.name}: a RULER row needs 'answer' or 'outputs'")
            fields = {**r, "question": r.get("query", r.get("question", "")),
                      "example": r["example"] + "\n\n" if r.get("example") else "", "answer": answer}
            out.append(Item(key=str(r.get("index", i)), fields=fields, target={"answers": answer},
                            meta={"row": i}))
        return out

    def _generated(self, length: int) -> list[Item]:
        from evalsuite.tasks.ruler import _task_class
        from evalsuite.tasks.ruler._resources import resources

        cfg = RULER_CONFIGS[self.dataset]
        base = _task_class(cfg, resources().tasks[cfg])

        class HelmetLayout(base):  # type: ignore[misc, valid-type]
            # HELMET's layout: the template, a newline, the answer prefix without its leading space.
            def _request(self, text: str, answer_prefix: str) -> Any:
                from evalsuite.types import GenParams, Request

                return Request.new(prompt=text + "\n" + answer_prefix.strip(),
                               params=GenParams(max_tokens=self.opts["tokens_to_generate"]), use_chat_template=False)

        essay = self.opts["essay_file"]
        gen = HelmetLayout(length=length, num_samples=self.opts["max_test_samples"], seed=self.opts["seed"],
                           tokens_to_generate=self.gen_length(length), chat_template=False, data_file=essay)
        gen.prepare(self.ctx)
        out = []
        for s in gen.samples():
            text, prefix = s.input["input"], s.input["answer_prefix"].strip()
            meta = {k: s.metadata[k] for k in ("depths", "positions", "query") if k in s.metadata}
            out.append(Item(key=s.id, fields={"__input": text, "__prefix": prefix}, target={"answers": list(s.target)},
                            meta={**meta, "generated": True}, sized=True))
        return out

    def user_text(self, fields: Mapping[str, Any]) -> str:
        if "__input" in fields:
            return fields["__input"]
        return super().user_text(fields)

    def system_text(self, fields: Mapping[str, Any]) -> str:
        if "__prefix" in fields:
            return fields["__prefix"]
        return super().system_text(fields)

    def gold_answer(self, sample: Sample) -> str:
        ans = sample.target["answers"]
        return ", ".join(ans) if isinstance(ans, list) else str(ans)

    def metrics(self) -> Sequence[Any]:
        def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
            return [{"ruler_recall": ruler_recall(r.prediction, r.sample.target["answers"])} for r in records]

        return [HelmetMetric("ruler_recall", Analysis(fn), "substring_all|case:lower|prefix:prepended")]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["ruler_config"] = RULER_CONFIGS[self.dataset]
        d["source"] = self.opts["source"]
        return d


class JsonKvTask(HelmetTask):
    category = "recall"
    dataset = "json_kv"
    template = "json_kv"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        return [archive(specs()[cls.dataset].lengths[L].test_file, "JSON KV file") for L in lengths]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        rows = root.rows(self.data_files([length], self.opts)[0], {"context": str, "question": None, "answer": None})
        shots = self.opts["shots"]
        out = []
        for i in shuffled_first(len(rows), self.opts["max_test_samples"], self.opts["seed"]):
            r = rows[i]
            demos = "\n\n".join(fmt(self.tmpl["demo"], {}, key=k, value=" " + v) for k, v in (r.get("demos") or [])[:shots])
            demos += "\n\n" if shots > 0 else ""
            fields = {**r, "demos": demos, "k": r.get("num_kvs")}
            out.append(Item(key=str(i), fields=fields, target={"answers": r["answer"]},
                            meta={"row": i, "num_kvs": r.get("num_kvs"), "depth": r.get("depth")}))
        return out

    def metrics(self) -> Sequence[Any]:
        def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
            return [best_of_parsed(r.prediction, r.sample.target["answers"], "corresponding value:") for r in records]

        an = Analysis(fn)
        names = ("substring_exact_match",) + tuple(m for m in QA_METRICS if m != "substring_exact_match")
        return [HelmetMetric(n, an, "max(raw,parsed:'corresponding value:')|norm:squad") for n in names]
