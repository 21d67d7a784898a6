"""The LongBench v2 tasks: one class per official protocol of ``pred.py``.

* ``longbench_v2``: zero-shot (``prompts/0shot.txt``), the main setting ("w/o CoT").
* ``longbench_v2/cot``: chain of thought in two passes (``0shot_cot.txt``, then ``0shot_cot_ans.txt``
  with the first answer as ``$COT$`` and the document left out), through ``next_request``.
* ``longbench_v2/no_context``: the question alone (``0shot_no_context.txt``), memorization.
* ``longbench_v2/rag``: retrieved chunks instead of the document (``0shot_rag.txt``); the chunks must be
  in the data rows (``retrieved_context``), as upstream precomputes them with an embedding model.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, MultiPass, OfficialFormat, Truncating
from evalsuite.errors import UserError
from evalsuite.metrics import Metric
from evalsuite.reasoning import split_reasoning
from evalsuite.data import DataSource
from evalsuite.task import BaseTask, Option, parse_bool
from evalsuite.options import non_negative_float, positive_int
from evalsuite.types import GenParams, Generation, Record, Request, Sample
from evalsuite.truncation import Truncation

from . import _data
from ._metric import LongBenchV2Accuracy
from ._prompts import LETTERS, extract_choice, fill, gold_response, render_retrieved, templates

UPSTREAM = "THUDM/LongBench@2e00731f8d0bff23dc4325161044d0ed8af94c1e"
MAX_LENGTH = 120000
"""Upstream's truncation budget for every open model in ``config/model2maxlen.json`` (Claude: 200000)."""
TEMPERATURE = 0.1
"""Upstream's temperature for every call (``query_llm(..., temperature=0.1)``); runs fluctuate by a few
points because of it (THUDM/LongBench#119): ``-T temperature=0`` for greedy decoding."""


COMMON_OPTIONS: Mapping[str, Option] = {
    "data_file": Option(str, None, "the release's data.json (JSON array) or a JSONL file of the same rows"),
    "data_dir": Option(str, None, "a folder with data.json (e.g. a snapshot of the hub dataset)"),
    "max_length": Option(positive_int, None, "truncation budget in tokens of the filled prompt, chat template "
                         f"excluded (default {MAX_LENGTH}, upstream's); the prompt is also kept inside the "
                         "model's context window when it is known"),
    "temperature": Option(non_negative_float, TEMPERATURE, "sampling temperature (upstream 0.1; 0 = greedy)"),
    "max_tokens": Option(positive_int, 128, "max new tokens of the answer (upstream 128)"),
    "chat_template": Option(parse_bool, True, "send the prompt as one user message in the model's chat "
                            "template (upstream); false: the raw prompt text"),
}


class LongBenchV2Task(BaseTask, Truncating, OfficialFormat, DataNeeds):
    """What every protocol shares: data, samples, requests, extraction, metric, truncation."""

    version = "1"
    protocol = ""
    template = ""
    """Prompt file stem of the (first) request."""
    needs_context = True
    options: Mapping[str, Option] = COMMON_OPTIONS

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Any]:
        return [_data.NEED]

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._samples: list[Sample] | None = None
        self._source: DataSource | dict[str, Any] | None = None
        self._path: Any = None
        self._spans: dict[str, tuple[int, int]] = {}
        """sample id -> the row's byte span in the data file: documents are read when a request is built and
        not kept (the release's 503 documents are 700 MB of text)."""

    # -- protocol ---------------------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        if self._samples is None:
            self._samples = self._load()
        yield from self._samples

    def request(self, sample: Sample) -> Request:
        return self._request(sample, templates().text[self.template], self._first_max_tokens())

    def extract(self, sample: Sample, generation: Generation) -> str:
        return extract_choice(generation.text) or ""

    def metrics(self) -> Sequence[Metric]:
        return [LongBenchV2Accuracy()]

    def gold(self, sample: Sample) -> str:
        return gold_response(sample.target)

    def truncation(self) -> Truncation:
        """Upstream's middle cut, kept inside the model's window when the backend knows it."""
        window, new_tokens = self.ctx.max_model_len, self._first_max_tokens()
        if window is not None and window <= new_tokens:
            raise UserError(f"{self.name}: the model's context window ({window} tokens) leaves no room for a "
                            f"prompt next to {new_tokens} new tokens")
        # pred.py: the filled prompt encoded with the tokenizer's special tokens, ids[:L//2] + ids[-L//2:]
        # (the tail the larger half), the chat template around the cut ids
        return Truncation(max_tokens=self.opts["max_length"] or MAX_LENGTH, side="middle", budget="content",
                          max_prompt_tokens=window - new_tokens if window else None, low_memory=True)

    def official_records(self, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Records from upstream ``pred.py`` result files (one row per answered item: the data fields with
        ``context`` cut to 1000 characters, plus ``response``, ``pred``, ``judge``, and ``response_cot``
        for CoT). The answer is re-extracted from ``response`` with the official rule."""
        records = []
        for i, row in enumerate(rows):
            missing = [k for k in ("response", "answer") if k not in row]
            if missing:
                raise UserError(f"line {i + 1}: a LongBench v2 result row needs 'response' and 'answer' "
                                f"(missing {missing})")
            response = str(row["response"] or "")
            meta = {k: row[k] for k in ("difficulty", "length", "domain", "sub_domain") if k in row}
            sample = Sample(id=str(row.get("_id", i)), index=i, input=None, target=row["answer"], metadata=meta)
            records.append(Record(sample, extract_choice(response) or "", Generation(response, "stop")))
        return records

    def describe(self) -> dict[str, Any]:
        tpl = templates()
        d = super().describe()
        d.update({
            "benchmark": f"LongBench v2 ({UPSTREAM})",
            "protocol": self.protocol,
            "prompt_files_sha256": {k: tpl.sha256[k] for k in self._template_files()},
            "max_length": self.opts["max_length"] or MAX_LENGTH,
            "extraction": "remove '*'; 'The correct answer is \\(([A-D])\\)' else 'The correct answer is ([A-D])'",
            "data": (self._source.describe() if isinstance(self._source, DataSource) else self._source),
        })
        return d

    # -- internals --------------------------------------------------------------------------------
    def _template_files(self) -> tuple[str, ...]:
        return (self.template,)

    def _first_max_tokens(self) -> int:
        return self.opts["max_tokens"]

    def _params(self, max_tokens: int) -> GenParams:
        return GenParams(max_tokens=max_tokens, temperature=self.opts["temperature"], top_p=1.0,
                         seed=self.ctx.seed)

    def _request(self, sample: Sample, template: str, max_tokens: int, cot: str | None = None) -> Request:
        inp = sample.input
        document = self.document(sample) if "$DOC$" in template else ""
        text = fill(template, document, inp["question"], inp["choices"], cot=cot)
        return Request.new(prompt=text,
                       params=self._params(max_tokens), use_chat_template=self.opts["chat_template"])

    def document(self, sample: Sample) -> str:
        """The sample's document: ``input["document"]`` when the sample carries one, else read from the data
        file (the row at its recorded byte span)."""
        if "document" in sample.input:
            return sample.input["document"]
        span = self._spans.get(sample.id)
        if span is None:
            raise UserError(f"{self.name}: sample {sample.id!r} has no document and is not from this task's data")
        row = _data.load_row(self._path, span)
        return self._document(_data.check_row(self.name, f"{self._path.name} (_id {sample.id})", row,
                                              self.needs_context), sample.id)

    def _document(self, row: Mapping[str, Any], where: str) -> str:
        return row["context"]

    def _load(self) -> list[Sample]:
        self._source, path = _data.locate(self.name, self.opts["data_dir"], self.opts["data_file"])
        self._path, self._spans = path, {}
        out = []
        for n, row, span in _data.read_rows_at(path, self.name):
            where = f"{path.name}:{n}"
            row = _data.check_row(self.name, where, row, self.needs_context)
            self._document(row, where)  # checks the protocol's field (RAG: retrieved_context) now
            self._spans[str(row["_id"])] = span
            out.append(Sample(
                id=str(row["_id"]), index=len(out),
                input={"question": row["question"], "choices": [row[f"choice_{x}"] for x in LETTERS]},
                target=row["answer"],
                metadata={k: row[k] for k in ("difficulty", "length", "domain", "sub_domain")}))
        if not out:
            raise UserError(f"{self.name}: no rows in {path}")
        return out


class ZeroShot(LongBenchV2Task):
    name = "longbench_v2"
    protocol = "zero-shot (w/o CoT)"
    template = "0shot"
    description = "LongBench v2: 503 long-context multiple-choice questions, zero-shot (official prompt)"


class NoContext(LongBenchV2Task):
    name = "longbench_v2/no_context"
    protocol = "zero-shot without the document (w/o context)"
    template = "0shot_no_context"
    needs_context = False
    description = "LongBench v2 without the document: the question and choices alone (memorization)"

    def _document(self, row: Mapping[str, Any], where: str) -> str:
        return ""  # the template has no $DOC$; keeping megabytes of context in memory would be waste


class Rag(LongBenchV2Task):
    name = "longbench_v2/rag"
    protocol = "retrieval-augmented (+RAG): retrieved chunks instead of the document"
    template = "0shot_rag"
    needs_context = False
    description = "LongBench v2 +RAG: precomputed retrieved chunks (row field retrieved_context) as the text"
    options: Mapping[str, Option] = {
        **COMMON_OPTIONS,
        "rag_top_k": Option(positive_int, None, "use the first N retrieved chunks of each row (upstream "
                            "--rag N); default: all chunks the row has"),
    }

    def _document(self, row: Mapping[str, Any], where: str) -> str:
        chunks = row.get("retrieved_context")
        if chunks is None:
            raise UserError(
                f"{self.name}: {where} (_id {row['_id']}) has no 'retrieved_context'. The RAG protocol needs "
                "each row's retrieved chunks, precomputed as upstream does with an embedding model: a list of "
                "{\"c_idx\": <chunk position in the context>, \"content\": <text>} in retrieval order "
                "(THUDM/LongCite utils/retrieve.py writes this shape); see tasks/longbench_v2/README.md")
        if not isinstance(chunks, list) or not all(
                isinstance(c, dict) and isinstance(c.get("content"), str) and isinstance(c.get("c_idx"), int)
                for c in chunks):
            raise UserError(f"{self.name}: {where} (_id {row['_id']}): 'retrieved_context' must be a list of "
                            "{\"c_idx\": int, \"content\": str}")
        return render_retrieved(chunks, self.opts["rag_top_k"])


class ChainOfThought(LongBenchV2Task, MultiPass):
    """Two passes per item, as upstream's ``--cot``.

    Pass 1: ``0shot_cot.txt`` with up to ``cot_max_tokens`` new tokens. Pass 2: ``0shot_cot_ans.txt`` --
    the document replaced by "The text is too long and omitted here." -- with ``$COT$`` = the pass-1
    response stripped, up to ``max_tokens``. The answer is extracted from pass 2. When pass 1 fails or
    returns an empty text there is no pass 2 and the item scores wrong (upstream drops it).
    """

    name = "longbench_v2/cot"
    protocol = "chain of thought, two passes (w/ CoT)"
    template = "0shot_cot"
    answer_template = "0shot_cot_ans"
    description = "LongBench v2 with chain of thought: a reasoning pass, then an answer pass given the reasoning"
    options: Mapping[str, Option] = {
        **COMMON_OPTIONS,
        "cot_max_tokens": Option(positive_int, 1024, "max new tokens of the reasoning pass (upstream 1024)"),
    }

    def next_request(self, sample: Sample, history: Sequence[tuple[Request, Generation]]) -> Request | None:
        if len(history) != 1:
            return None
        gen = history[-1][1]
        if not gen.ok or gen.text == "":
            return None
        answer, _, unterminated = split_reasoning(gen.text)
        if unterminated:
            return None  # only reasoning, cut off: no response to build on (scores as an empty answer)
        return self._request(sample, templates().text[self.answer_template], self.opts["max_tokens"],
                             cot=answer.strip())

    def _first_max_tokens(self) -> int:
        return self.opts["cot_max_tokens"]

    def _template_files(self) -> tuple[str, ...]:
        return (self.template, self.answer_template)


TASKS: tuple[type[LongBenchV2Task], ...] = (ZeroShot, ChainOfThought, NoContext, Rag)

