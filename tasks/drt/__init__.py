"""DRT (Wang et al., ACL 2025 Findings, krystalan/DRT, formerly DRT-o1): literary English->Chinese translation
of sentences with similes and metaphors, 2,000 test pairs ``{"en", "zh"}``.

Tasks (``register(registry)``; group ``drt`` = both):

* ``drt/long_thought``: the released protocol. System prompt + user prompt from the README (kept byte-exact
  in ``prompts.json``), sampling T=0.1, top_p=0.8, max_tokens=2048 as the README's vLLM example
  (its ``repetition_penalty=1.05`` has no field in evalsuite's generation parameters and is not sent).
* ``drt/direct``: the same user prompt without the system prompt, greedy, max_tokens=1024: plain MT.

Extraction (both tasks; the released convention is ``<thought>...</thought>`` then
``<output>...</output>``): the text inside the last closed ``<output>...</output>``, stripped. A reply with
neither tag is a plain translation and is taken whole (stripped), as the DRT paper scores non-DRT models.
A reply that has a tag but no closed ``<output>`` block (thought without output, an output cut off by
max_tokens) is an **extraction failure**: its hypothesis is empty and the ``extraction_failed`` metric
counts it (value = % of records; details count every outcome).

Metrics: corpus BLEU (sacrebleu, tokenizer zh) and chrF; COMET / CometKiwi with ``-T comet=`` /
``-T cometkiwi=`` (see docs/comet.md). Data: by default ``data/test.jsonl`` of the GitHub repository at the
pinned commit (:data:`SOURCE`: the release is on GitHub only, not on the Hugging Face Hub), downloaded
once, checked against its sha256 and git blob id; or ``-T data_file=<test.jsonl>`` / ``-T data_dir=<repo
checkout or its data/ folder>``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.data import local_data, resolve
from evalsuite.datafiles import check_fields, read_records
from evalsuite.errors import UserError
from evalsuite.sources import GITHUB, Need, RemoteFile, Source, resolve_need
from evalsuite.metrics import MeanMetric
from evalsuite.reasoning import split_reasoning
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Message, MetricResult, Record, Request, Sample, sha256_text

__all__ = ["DRTDirect", "DRTLongThought", "ExtractionFailed", "extract_translation", "register"]

HERE = Path(__file__).resolve().parent
UPSTREAM = "krystalan/DRT@dde638108377df5ff551e305feb9d5d31e1a6086 (data/test.jsonl)"
SOURCE = Source(
    id="drt", host=GITHUB, repo="krystalan/DRT", revision="dde638108377df5ff551e305feb9d5d31e1a6086",
    files=(RemoteFile("data/test.jsonl", sha256="e6bae693ded3d4b9c0c9e52e12134f66da002910754f4774dcdafeb894eb155d",
                      git_blob="ee0c44e94a20e2adde110612fb570b6b27b6245a", size=654788),),
    license="CC-BY-NC-SA-4.0 (repository README)", page="https://github.com/krystalan/DRT",
    note="published on GitHub only; sha256 of shared/data/drt-o1/data/test.jsonl, whose git blob id equals the "
         "repository's at the pinned commit")
NEED = Need(SOURCE, "data/test.jsonl")


@lru_cache(maxsize=1)
def prompts() -> dict[str, str]:
    return json.loads((HERE / "prompts.json").read_text(encoding="utf-8"))


def prompts_sha256() -> str:
    return sha256_text((HERE / "prompts.json").read_text(encoding="utf-8"))


def extract_translation(text: str) -> tuple[str, str]:
    """``(translation, outcome)``; outcome is ``output`` (inside the last closed ``<output>`` block),
    ``untagged`` (no DRT tag at all: the whole reply) or ``failed`` (tags but no closed output: "")."""
    p = prompts()
    o, c = re.escape(p["output_open"]), re.escape(p["output_close"])
    blocks = re.findall(rf"{o}(.*?){c}", text, flags=re.S)
    if blocks:
        return blocks[-1].strip(), "output"
    if any(t in text for t in (p["output_open"], p["output_close"], p["thought_open"], p["thought_close"])):
        return "", "failed"
    return text.strip(), "untagged"


def _common_options() -> dict[str, Option]:
    from evalsuite.metrics.sacrebleu_metrics import MT_OPTION_HELP

    opts = {
        "data_file": Option(str, None, "the DRT test file (data/test.jsonl of krystalan/DRT)"),
        "data_dir": Option(str, None, "a checkout of krystalan/DRT (or its data/ folder) holding test.jsonl"),
    }
    for key, help_text in MT_OPTION_HELP.items():
        opts[key] = Option(int if key == "comet_batch_size" else str, None, help_text)
    return opts


class ExtractionFailed(MeanMetric):
    """DRT: % of records whose reply had DRT tags but no closed <output> block (hypothesis empty)."""

    name = "extraction_failed"
    higher_is_better = False
    version = "1"

    def sample_score(self, record: Record) -> float:
        if not record.generation.ok:
            return 0.0  # a backend error is counted as an error, not as an extraction failure
        answer, _, unterminated = split_reasoning(record.generation.text)
        return 1.0 if unterminated or extract_translation(answer)[1] == "failed" else 0.0

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        res = MeanMetric.score(self, records, ctx)
        outcomes: dict[str, int] = {"output": 0, "untagged": 0, "failed": 0, "error": 0}
        for r in records:
            if not r.generation.ok:
                outcomes["error"] += 1
                continue
            answer, _, unterminated = split_reasoning(r.generation.text)
            outcomes["failed" if unterminated else extract_translation(answer)[1]] += 1
        return MetricResult(name=res.name, value=res.value, signature=self.signature(),
                            per_sample=res.per_sample, higher_is_better=False,
                            details={**res.details, "outcomes": outcomes})

    def signature(self) -> str:
        return str(Signature(self.name, tags="<output>", scale=self.scale, v=self.version))


class _DRTTask(BaseTask, DataNeeds):
    protocol = ""
    version = "1"
    options: Mapping[str, Option] = {}

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._source: dict[str, Any] | None = None

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [NEED]

    def samples(self) -> Iterator[Sample]:
        if local_data(self.opts["data_dir"], self.opts["data_file"]):
            src = resolve(self.name, self.opts["data_dir"], self.opts["data_file"], None,
                          patterns=("test.jsonl",))
            path = src.path
            if src.kind == "dir":
                cands = [p for p in (path / "test.jsonl", path / "data" / "test.jsonl") if p.is_file()]
                if not cands:
                    raise UserError(f"{self.name}: no test.jsonl (or data/test.jsonl) in {str(path)!r}")
                path = cands[0]
                from evalsuite.data import hash_paths

                src = type(src)("file", path, None, hash_paths([path]))
            self._source = {**src.describe(), "upstream": UPSTREAM}
        else:
            got = resolve_need(self.name, NEED, self.opts["data_dir"])
            path, self._source = got.path, {"kind": "source", **got.record}
        rows = read_records(path, self.name, "jsonl")
        check_fields(rows, {"en": str, "zh": str}, f"{self.name}: {path}", unit="line")
        for i, row in enumerate(rows):
            yield Sample(id=f"drt-{i}", index=i, input=row, target=row["zh"],
                         metadata={"source": row["en"], "source_lang": "en", "target_lang": "zh"})

    def user_prompt(self, sample: Sample) -> str:
        return prompts()["user"].replace("{en}", sample.input["en"])

    def extract(self, sample: Sample, generation: Any) -> str:
        return extract_translation(generation.text)[0]

    def metrics(self) -> Sequence[Any]:
        from evalsuite.metrics.sacrebleu_metrics import translation_metrics

        return [*translation_metrics(self.opts, "zh"), ExtractionFailed()]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "DRT test set (" + UPSTREAM + ")", "protocol": self.protocol,
                  "prompts_sha256": prompts_sha256(), "data": self._source,
                  "extraction": "last closed <output>...</output>, stripped; no tags: whole reply; tags "
                                "without a closed output: '' (counted by extraction_failed)"})
        return d


class DRTLongThought(_DRTTask):
    """DRT test set, long-thought protocol (system prompt, T=0.1, top_p=0.8, 2048 tokens, <output> extraction)."""

    name = "drt/long_thought"
    protocol = "long_thought"
    description = "DRT literary en->zh, long-thought protocol (README prompts, T=0.1, top_p=0.8, 2048 tokens)"
    options = _common_options()

    def request(self, sample: Sample) -> Request:
        msgs = (Message("system", prompts()["system"]), Message("user", self.user_prompt(sample)))
        return Request.new(prompt=msgs,
                       params=GenParams(max_tokens=2048, temperature=0.1, top_p=0.8, seed=0))

    def gold(self, sample: Sample) -> str:
        """The reference in the released reply format, so gold runs go through extraction."""
        p = prompts()
        return (f"{p['thought_open']}\n(reference)\n{p['thought_close']}\n"
                f"{p['output_open']}\n{sample.target}\n{p['output_close']}")


class DRTDirect(_DRTTask):
    """DRT test set, direct protocol (user prompt only, greedy, 1024 tokens)."""

    name = "drt/direct"
    protocol = "direct"
    description = "DRT literary en->zh, direct translation (README user prompt, greedy, 1024 tokens)"
    options = _common_options()

    def request(self, sample: Sample) -> Request:
        return Request.new(prompt=(Message("user", self.user_prompt(sample)),),
                       params=GenParams(max_tokens=1024, temperature=0.0, top_p=1.0, seed=0))

    def gold(self, sample: Sample) -> str:
        return sample.target


def register(registry: Any) -> None:
    for cls in (DRTLongThought, DRTDirect):
        registry.add_task(cls.name, cls, cls.description)
    registry.add_group("drt", [DRTLongThought.name, DRTDirect.name])
