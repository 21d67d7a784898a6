"""One LongBench v1 / LongBench-E dataset as an evalsuite task, following the official ``pred.py``.

Prompt: ``dataset2prompt[dataset].format(**row)``. Requests are the raw prompt text; for every dataset but
trec, triviaqa, samsum, lsht, lcc and repobench-p the backend wraps it as one user message in the
model's chat template (``-T chat_template=`` forces either way).

Truncation (``truncation()``, applied by the runner): the prompt is encoded *with* the tokenizer's
special tokens (BOS counts, as ``tokenizer(prompt)`` in pred.py) and, when longer than ``max_length``,
cut to its first and last ``int(max_length / 2)`` token ids. The ids go to the backend as they are (no
decode and re-encode); the chat template, when used, wraps the cut ids after truncation, the
tokenizer-added BOS dropped from them because the template spells its own. See
:class:`evalsuite.truncation.Truncation` (``budget="content"``, ``equal_halves=True``).

Generation: greedy, ``max_tokens = dataset2maxlen[dataset]``, no stop strings. samsum, where pred.py
also ends at the "\\n" *token* and forbids it (and EOS) as the first new token (``min_length``), does the
same with ``GenParams.stop_token_ids`` = the last id of ``tokenizer.encode("\\n")`` and ``min_tokens=1``
whenever the model's tokenizer is known (``-T token_stop=false`` turns it off). ``-T newline_stop=true``
adds a "\\n" stop string, which ends a generation that starts with "\\n" empty.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, OfficialFormat, OfficialSummary, Truncating
from evalsuite.errors import UserError
from evalsuite.metrics import Metric
from evalsuite.task import BaseTask, Option, TaskContext, parse_bool
from evalsuite.truncation import Truncation, added_special_tokens, template_parts
from evalsuite.types import GenParams, Record, Request, Sample

from ._config import DATASETS, HUB_ID, NO_CHAT_TEMPLATE, config
from ._data import load_rows, need


TOKEN_STOP_OPTION = Option(
    parse_bool, True,
    "samsum only: as pred.py, end at the \"\\n\" token and forbid it (and EOS) as the first new token "
    "(stop_token_ids + min_tokens=1; needs the model's tokenizer)")

NEWLINE_STOP_OPTION = Option(
    parse_bool, False,
    "samsum only: stop at the first \"\\n\" (faster; pred.py stops at the \"\\n\" token but forbids it as "
    "the first new token, which a stop string cannot do, so a generation starting with \"\\n\" ends empty)")


def _max_length(v: str) -> int | str:
    if v == "official" or v.startswith("official:"):
        return v
    n = int(v)
    if n < 0 or n == 1:
        raise ValueError("must be 0 (no truncation), >= 2, official or official:<model2maxlen name>")
    return n


class LongBenchTask(BaseTask, Truncating, OfficialFormat, OfficialSummary, DataNeeds):
    """Base for ``longbench/<dataset>`` and ``longbench_e/<dataset>``; subclasses set ``dataset`` and
    ``edition``."""

    dataset: str = ""
    """The v1 dataset id (``qasper``), the key in the config files and the metric."""
    edition: str = "v1"
    """``v1`` (hub config ``<dataset>``) or ``e`` (LongBench-E, hub config ``<dataset>_e``)."""
    version = "1"

    options: Mapping[str, Option] = {
        "data_dir": Option(str, None, "folder of the official JSONL files (<dataset>.jsonl, <dataset>_e.jsonl; "
                           "also under data/ as in data.zip)"),
        "data_file": Option(str, None, "one JSONL file of this dataset in the official format (or .parquet "
                            "with pyarrow)"),
        "chat_template": Option(parse_bool, None, "wrap the prompt in the model's chat template (default as "
                                "pred.py: false for trec, triviaqa, samsum, lsht, lcc, repobench-p, else true)"),
        "max_length": Option(_max_length, None, "middle-truncation budget in tokens of the raw prompt incl. "
                             "BOS; default: model context - max_tokens - chat template tokens; 0: never "
                             "truncate; official: pred.py's config/model2maxlen.json entry for this model "
                             "(official:<name> picks the entry)"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        cfg = config()
        self.template: str = cfg.prompts[self.dataset]
        self.max_new_tokens: int = int(cfg.max_new_tokens[self.dataset])
        if self.opts["chat_template"] is None:
            self.opts["chat_template"] = self.dataset not in NO_CHAT_TEMPLATE
        self._policy: Truncation | None = None
        self._max_length: int | None = None
        self._official: dict[str, Any] | None = None
        self._newline_id: int | None = None
        self._source: dict[str, Any] | None = None

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Any]:
        """The member of the official data.zip this task reads (``evalsuite data status/fetch``)."""
        return [need(cls.dataset + ("_e" if cls.edition == "e" else ""))]

    @property
    def config_name(self) -> str:
        """The hub config / official file stem: ``qasper`` or ``qasper_e``."""
        return self.dataset + ("_e" if self.edition == "e" else "")

    # -- protocol -----------------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        self._max_length = self._resolve_max_length(ctx)
        self._newline_id = None
        if self.opts.get("token_stop") and ctx.tokenizer is not None:
            # pred.py: tokenizer.encode("\n", add_special_tokens=False)[-1] (sentencepiece spells "\n" as
            # a prefix-space piece plus <0x0A>: the last id is the newline)
            ids = ctx.tokenizer.encode("\n", add_special_tokens=False)
            self._newline_id = int(ids[-1]) if ids else None
        self._policy = None
        if self._max_length:
            self._policy = Truncation(max_tokens=self._max_length, side="middle", budget="content",
                                      equal_halves=True)

    def truncation(self) -> Truncation | None:
        """The runner's truncation policy (None: ``max_length=0``)."""
        return self._policy

    def samples(self) -> Iterator[Sample]:
        loaded = load_rows(self.name, self.config_name, self.dataset, self.opts["data_dir"],
                           self.opts["data_file"])
        self._source = loaded.source
        for i, row in enumerate(loaded.rows):
            sid = row.get("_id")
            yield Sample(id=str(sid) if sid not in (None, "") else f"{self.name}-{i}", index=i, input=row,
                         target=[str(a) for a in row["answers"]],
                         metadata={"all_classes": row.get("all_classes"), "length": row.get("length"),
                                   "language": row.get("language"), "dataset": row.get("dataset")})

    def prompt(self, sample: Sample) -> str:
        """pred.py's ``prompt_format.format(**json_obj)`` (extra row keys are ignored)."""
        return self.template.format(**sample.input)

    def request(self, sample: Sample) -> Request:
        nl = self._newline_id
        params = GenParams(max_tokens=self.max_new_tokens, temperature=0.0, top_p=1.0, stop=self._stop(),
                           stop_token_ids=(nl,) if nl is not None else (), min_tokens=1 if nl is not None else 0)
        return Request.new(prompt=self.prompt(sample),
                       params=params, use_chat_template=bool(self.opts["chat_template"]))

    def metrics(self) -> Sequence[Metric]:
        from ._metric import LongBench

        return [LongBench(dataset=self.dataset)]

    def gold(self, sample: Sample) -> str:
        """The first reference answer: the class label (trec, lsht), "Paragraph N" / "段落N" (retrieval),
        the count (passage_count), the next code line (lcc, repobench-p). Each scores 1 against itself
        under the dataset's metric (for trec/lsht unless another class label is a substring of it)."""
        return sample.target[0] if sample.target else ""

    def official_records(self, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Records from pred.py's output lines (``{"pred", "answers", "all_classes", "length"}``), scored
        as eval.py scores them."""
        from ._metric import records_from_official

        return records_from_official(self.dataset, rows)

    def official_summary(self, result: Any) -> Any:
        """This file's entry in eval.py's result.json: the rounded score, or for LongBench-E (``eval.py
        --e``) the per-length-bucket scores (None where a bucket is empty: NaN upstream)."""
        details = result.details or {}
        if self.edition == "e":
            return dict(details.get("buckets") or {})
        return details.get("official")

    def describe(self) -> dict[str, Any]:
        cfg = config()
        d = super().describe()
        info = DATASETS[self.dataset]
        d.update({
            "benchmark": "LongBench (THUDM/LongBench@2e00731f, LongBench/)" if self.edition == "v1"
            else "LongBench-E (THUDM/LongBench@2e00731f, LongBench/, pred.py --e)",
            "dataset": self.dataset, "hub": {"id": HUB_ID, "config": self.config_name, "split": "test"},
            "category": info.category, "language": info.language,
            "config_sha256": dict(cfg.sha256),
            "max_new_tokens": self.max_new_tokens,
            "chat_template": bool(self.opts["chat_template"]),
            "stop": list(self._stop()),
            "stop_token_ids": [self._newline_id] if self._newline_id is not None else [],
            "min_tokens": 1 if self._newline_id is not None else 0,
            "max_length": self._max_length,
            "max_length_official": self._official,
            "truncation": "middle on token ids of tokenizer(prompt) incl. special tokens: ids[:int(L/2)] + "
                          "ids[-int(L/2):] when longer than L=max_length; chat template wraps the cut ids "
                          "(tokenizer-added BOS dropped); no decode/re-encode",
            "data": self._source,
        })
        return d

    # -- internals ----------------------------------------------------------------------------------
    def _stop(self) -> tuple[str, ...]:
        """samsum: no stop string unless ``-T newline_stop=true`` (see NEWLINE_STOP_OPTION)."""
        return ("\n",) if self.opts.get("newline_stop") else ()

    def _official_max_length(self, ctx: TaskContext, spec: str) -> int:
        """``official`` / ``official:<name>``: pred.py's ``model2maxlen`` entry for the model."""
        from ._config import config, official_budget

        key = spec.partition(":")[2].strip() or None
        try:
            found = official_budget(ctx.model, key)
        except KeyError:
            names = ", ".join(sorted(config().model_max_length))
            what = f"entry {key!r}" if key else f"model {ctx.model!r}"
            raise UserError(f"{self.name}: -T max_length={spec}: {what} is not in LongBench's "
                            f"config/model2maxlen.json ({names}); name an entry with "
                            "-T max_length=official:<name>, or give the budget in tokens") from None
        self._official = {"model2maxlen": found.key, "matched_by": found.matched, "model": ctx.model}
        return found.max_length

    def _resolve_max_length(self, ctx: TaskContext) -> int:
        """``-T max_length``, else the model's context minus max_tokens minus the chat template's tokens
        (so prompt + max_tokens always fits); 0 means no truncation."""
        explicit = self.opts["max_length"]
        if explicit == 0:
            return 0
        self._official = None
        if isinstance(explicit, str):
            explicit = self._official_max_length(ctx, explicit)
        tok = ctx.tokenizer
        if tok is None:
            raise UserError(f"{self.name}: LongBench middle-truncates prompts on the model's token ids, and "
                            f"this backend has no tokenizer: pass {ctx.tokenizer_hint}, or -T max_length=0 to send "
                            "prompts untruncated")
        overhead = 0
        if self.opts["chat_template"]:
            probe = Request.new(prompt="probe",
                            params=GenParams(max_tokens=1))
            pre, suf = template_parts(tok, probe)  # also fails early when there is no chat template
            lead, trail = added_special_tokens(tok)
            overhead = len(pre) + len(suf) - len(lead) - len(trail)
        if explicit is not None:
            return int(explicit)
        if ctx.max_model_len is None:
            raise UserError(f"{self.name}: the model's context length is unknown; pass the truncation budget "
                            "-T max_length=<tokens> (LongBench's model2maxlen uses context - 500, e.g. 3500 "
                            "for a 4K model)")
        budget = int(ctx.max_model_len) - self.max_new_tokens - overhead
        if budget < 2:
            raise UserError(f"{self.name}: the model's context ({ctx.max_model_len} tokens) leaves no room for "
                            f"a prompt after {self.max_new_tokens} new tokens; pass -T max_length=<tokens>")
        return budget
