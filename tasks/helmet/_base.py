"""What every HELMET task shares: options, lengths, HELMET's prompt layout and its context truncation.

A task reads its rows for one input length (``_items``), each with the fields HELMET's templates format
(``context``, ``question``, ``demos`` ...), what scoring needs (``target``) and per-sample facts. The base
then does what HELMET's ``model_utils.tokenize`` does:

* prompt: with the chat template, the user template filled in, as one user message (no system message);
  without it, user template + ``join`` + system template (the answer prefix) as raw text, and the prefix
  is put back in front of the output before scoring, as ``eval.py`` does;
* truncation: when the prompt (chat template included; raw prompts with the tokenizer's special tokens)
  is longer than ``length - max_tokens`` tokens, the ``context`` field alone loses the surplus: it is cut
  at the start of its k-th token from the end (k = surplus, offsets of the context encoded on its own), and
  the prompt is rendered again, once (HELMET's text truncation; see README for token-id truncation).

Generation is greedy (temperature 0, top_p 1), recorded explicitly; ``stop_new_line`` stops at ``\\n``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.errors import UserError
from evalsuite.task import BaseTask, Option, TaskContext, parse_bool
from evalsuite.options import non_negative_int, positive_int
from evalsuite.tokenizer import Tokenizer, request_ids
from evalsuite.types import GenParams, Generation, Request, Sample, sha256_text

from ._config import CONFIGS, LENGTHS, DatasetSpec, specs
from ._data import HELMET_COMMIT, DataRoot, Rows, SourceRoot, cached as _cached, fmt, needs_of, open_root

HERE = Path(__file__).parent
STOP_NEW_LINE = ("\n", "\n\n")
"""HELMET's stop strings for ``stop_new_line`` (its vLLM / API paths; its HF path stops at newline tokens)."""


@lru_cache(maxsize=1)
def templates() -> dict[str, Any]:
    return json.loads((HERE / "templates.json").read_text(encoding="utf-8"))


def templates_sha256() -> str:
    return sha256_text((HERE / "templates.json").read_text(encoding="utf-8"))


def parse_lengths(v: str) -> tuple[int, ...]:
    """``8k,32k`` / ``8192,32768`` / ``all`` -> HELMET input lengths (only its five: 8K-128K)."""
    if str(v).strip().lower() == "all":
        return LENGTHS
    from evalsuite.tasks.ruler._base import parse_lengths as parse_any

    out = parse_any(v)
    bad = [n for n in out if n not in LENGTHS]
    if bad:
        raise ValueError(f"{bad[0]}: HELMET's lengths are 8k, 16k, 32k, 64k, 128k")
    return out


@dataclass
class Item:
    """One test row at one length, before truncation."""

    key: str
    """Stable within a length (a row id, or the row's position in its file)."""
    fields: dict[str, Any]
    """What the templates format; ``context`` is the part truncation may shorten."""
    target: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    sized: bool = False
    """Already sized to the length by its generator: no truncation."""


def hf_offsets(tok: Tokenizer, text: str) -> list[tuple[int, int]] | None:
    """``tokenizer(text, return_offsets_mapping=True)["offset_mapping"]``: the tokenizer's own special
    tokens included, at (0, 0). None when the tokenizer gives no offsets."""
    fn = getattr(tok, "encode_offsets", None)
    if fn is None:
        return None
    try:
        _, offsets = fn(text)
    except NotImplementedError:
        return None
    from evalsuite.truncation import added_special_tokens

    lead, trail = added_special_tokens(tok)
    return [(0, 0)] * len(lead) + [tuple(o) for o in offsets] + [(0, 0)] * len(trail)


class HelmetTask(BaseTask):
    dataset: str = ""
    """Key of :func:`._config.specs` (HELMET's dataset name without its length suffix)."""
    template: str = ""
    """Key of templates.json."""
    category: str = ""
    version = "1"
    group = "helmet"

    options: Mapping[str, Option] = {
        "lengths": Option(parse_lengths, (131072,), "HELMET input lengths: 8k,16k,32k,64k,128k or all (HELMET's "
                          "main table: 128k); each length reads its own files and is scored on its own"),
        "data_dir": Option(str, None, "HELMET's data/ folder (Hub princeton-nlp/HELMET data.tar.gz), plus the "
                           "Hub rows HELMET loads at run time as JSON lines (layout: tasks/helmet/README.md), or a "
                           "folder written by `evalsuite data fetch --to`; default: the declared sources, fetched "
                           "and cached on first use (`evalsuite data status helmet`)"),
        "max_test_samples": Option(non_negative_int, None, "test questions per length (default: HELMET's config)"),
        "shots": Option(non_negative_int, None, "demonstrations (default: HELMET's config)"),
        "seed": Option(int, 42, "HELMET's --seed"),
        "chat_template": Option(parse_bool, None, "use the chat template (default: HELMET's config); without it "
                                "the prompt ends with the answer prefix, which is put back before scoring"),
        "stop_new_line": Option(parse_bool, None, "stop at a newline (default: HELMET's config)"),
        "max_tokens": Option(positive_int, None, "generation budget (default: HELMET's config per length)"),
        "truncate": Option(parse_bool, True, "cut the context so prompt + max_tokens fit the length (HELMET); "
                           "needs the backend's tokenizer"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self.spec: DatasetSpec = specs()[self.dataset]
        o = self.opts
        if o["max_test_samples"] is None:
            o["max_test_samples"] = self.spec.max_test_samples
        if o["shots"] is None:
            o["shots"] = self.spec.shots
        if o["chat_template"] is None:
            o["chat_template"] = self.spec.use_chat_template
        if o["stop_new_line"] is None:
            o["stop_new_line"] = self.spec.stop_new_line
        o["lengths"] = list(o["lengths"])
        self.tmpl: dict[str, str] = templates()[self.template]
        self._root: DataRoot | None = None
        self._n_truncated = 0

    # -- subclass hooks ----------------------------------------------------------------------------
    def _items(self, length: int, root: DataRoot) -> list[Item]:
        raise NotImplementedError

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        """The files the task reads at ``lengths``, in the order it reads them."""
        raise NotImplementedError

    def gold_answer(self, sample: Sample) -> str:
        """The answer text a perfect model writes (after the answer prefix)."""
        ans = sample.target["answers"]
        return ans if isinstance(ans, str) else ans[0]

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def _files(cls, options: Mapping[str, Any]) -> list[Rows]:
        """:meth:`data_files` for ``options`` (raw ``-T`` strings or parsed values); every length when they
        name none (``evalsuite data fetch`` gets all of them)."""
        v = options.get("lengths")
        if v is None:
            lengths: Sequence[int] = LENGTHS
        elif isinstance(v, (list, tuple)):
            lengths = [int(x) for x in v]
        else:
            try:
                lengths = parse_lengths(str(v))
            except ValueError as exc:
                raise UserError(f"{cls.name}: -T lengths={v}: {exc}") from None
        return list(dict.fromkeys(cls.data_files(lengths, options)))

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Any]:
        """What the task reads by default (``evalsuite data status|fetch``, ``list tasks``)."""
        return needs_of(cls._files(options))

    @classmethod
    def data_layout(cls, options: Mapping[str, Any]) -> list[str]:
        """The files a ``-T data_dir`` folder in HELMET's layout holds for the task, relative to it, in the order
        the task reads them."""
        return [r.local for r in cls._files(options)]

    def check_data(self) -> None:
        """Before anything loads (the validate phase): a local folder exists; a manual source without one is
        its exact step; offline, every file is in the cache (or the fetched folder) -- else one line naming
        ``evalsuite data fetch`` and ``-T data_dir=``. Nothing is hashed or downloaded here."""
        root = open_root(self.name, self.opts["data_dir"])
        if not isinstance(root, SourceRoot):
            return
        from evalsuite import sources

        for need in self.data_needs(self.opts):
            if isinstance(need.source, sources.ManualSource) or (
                    sources.offline() and not _cached(need, self.opts["data_dir"])):
                sources.resolve_need(self.name, need, self.opts["data_dir"])  # raises: the step / offline error

    # -- protocol ----------------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        if self.opts["truncate"] and ctx.tokenizer is None:
            raise UserError(f"{self.name}: HELMET truncates the context to fit each length with the model's "
                            "tokenizer, and this backend has none: pass --model <local model or tokenizer folder>"
                            " or -B tokenizer=<folder>, or -T truncate=false")

    def gen_length(self, length: int) -> int:
        return self.opts["max_tokens"] or self.spec.lengths[length].generation_max_length

    def samples(self) -> Iterator[Sample]:
        self._root = open_root(self.name, self.opts["data_dir"])
        self._n_truncated = 0
        index = 0
        for L in self.opts["lengths"]:
            try:
                items = self._items(L, self._root)
            except UserError:
                raise
            except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
                raise UserError(f"{self.name}: the {L} data rows are not in HELMET's format "
                                f"({type(exc).__name__}: {str(exc)[:120]}); layout: tasks/helmet/README.md") from None
            for item in items:
                if not isinstance(item.fields.get("context", ""), str):
                    raise UserError(f"{self.name}: row {item.key}: the context must be text")
                if item.sized:
                    fields, n_tokens, truncated = item.fields, None, False
                else:
                    fields, n_tokens, truncated = self._fit(item.fields, L)
                self._n_truncated += truncated
                prompt = self.user_text(fields) if self.opts["chat_template"] else self.completion_text(fields)
                prefix = "" if self.opts["chat_template"] else self.system_text(fields)
                meta = {"input_max_length": L, "dataset": self.spec.lengths[L].dataset, **item.meta}
                if n_tokens is not None:
                    meta["input_tokens"] = n_tokens
                if truncated:
                    meta["context_truncated"] = True
                yield Sample(id=f"{L}-{item.key}", index=index, input={"prompt": prompt, "truncated": truncated},
                             target={**item.target, "prefix": prefix}, metadata=meta)
                index += 1

    def request(self, sample: Sample) -> Request:
        L = int(sample.metadata["input_max_length"])
        stop = STOP_NEW_LINE if self.opts["stop_new_line"] else ()
        params = GenParams(max_tokens=self.gen_length(L), temperature=0.0, top_p=1.0, stop=stop)
        n = sample.metadata.get("input_tokens")  # what the fit counted: backends need not encode it again
        return Request.new(prompt=sample.input["prompt"],
                       params=params, use_chat_template=bool(self.opts["chat_template"]),
                       truncated=bool(sample.input.get("truncated")), token_count=n if isinstance(n, int) else None)

    def extract(self, sample: Sample, generation: Generation) -> str:
        """HELMET's ``output``: the answer prefix put back in front of a completion."""
        return (sample.target.get("prefix") or "") + generation.text

    def gold(self, sample: Sample) -> str:
        ans = self.gold_answer(sample)
        return " " + ans if sample.target.get("prefix") else ans

    # -- prompts -----------------------------------------------------------------------------------
    def user_text(self, fields: Mapping[str, Any]) -> str:
        return fmt(self.tmpl["user"], dict(fields))

    def system_text(self, fields: Mapping[str, Any]) -> str:
        return fmt(self.tmpl["system"], dict(fields))

    def completion_text(self, fields: Mapping[str, Any]) -> str:
        return self.user_text(fields) + self.tmpl["join"] + self.system_text(fields)

    def _prompt_ids(self, fields: Mapping[str, Any]) -> list[int]:
        tok = self.ctx.tokenizer
        assert tok is not None
        if self.opts["chat_template"]:
            req = Request.new(prompt=self.user_text(fields),
                          params=GenParams(max_tokens=1), use_chat_template=True)
            return request_ids(tok, req)
        return tok.encode(self.completion_text(fields), add_special_tokens=True)

    def _fit(self, fields: dict[str, Any], length: int) -> tuple[dict[str, Any], int | None, bool]:
        """HELMET's truncation of ``context`` (module docstring): (fields, prompt tokens, truncated?)."""
        tok = self.ctx.tokenizer
        if not self.opts["truncate"] or tok is None:
            return fields, None, False
        n = len(self._prompt_ids(fields))
        budget = length - self.gen_length(length)
        if n <= budget:
            return fields, n, False
        k = n - budget
        context = fields["context"]
        offsets = hf_offsets(tok, context)
        if offsets is not None:
            new = context[:offsets[-k][0]] if k <= len(offsets) else ""
        else:  # slow tokenizers: HELMET decodes the kept ids (special tokens included)
            ids = tok.encode(context, add_special_tokens=True)
            new = tok.decode(ids[:-k]) if k < len(ids) else ""
        fields = {**fields, "context": new}
        return fields, len(self._prompt_ids(fields)), True

    # -- records -----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({
            "benchmark": f"HELMET (princeton-nlp/HELMET@{HELMET_COMMIT[:7]})",
            "category": self.category, "dataset": self.dataset,
            "helmet_datasets": {str(L): self.spec.lengths[L].dataset for L in self.opts["lengths"]},
            "config_files": {f: sha256_text((CONFIGS / f).read_text(encoding="utf-8")) for f in self.spec.config_files},
            "template": self.template, "templates_sha256": templates_sha256(),
            "generation": {"greedy": True, "temperature": 0.0, "top_p": 1.0,
                           "stop": list(STOP_NEW_LINE) if self.opts["stop_new_line"] else []},
            "truncation": "context text cut at token offsets (HELMET model_utils.tokenize)"
                          if self.opts["truncate"] else "none",
            "n_context_truncated": self._n_truncated,
            "data": self._root.describe() if self._root else None,
        })
        return d
