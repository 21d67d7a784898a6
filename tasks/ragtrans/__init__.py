"""RAGtrans (Wang et al., Findings of EMNLP 2025, krystalan/RAGtrans): retrieval-augmented English->Chinese
translation with unstructured documents.

Tasks (``register(registry)``; group ``ragtrans`` = both):

* ``ragtrans/test``: ``RAGtrans_test.jsonl`` lines ``{"src", "tgt", "en_doc", "zh_doc", "de_doc"}``; three
  relevant documents per pair. ``-T docs=none|en|zh|de|all`` picks the documents in the prompt (``all``:
  en, zh, de in that order; ``none``: plain MT baseline). Default ``all``.
* ``ragtrans/dev``: ``RAGtrans_dev.jsonl`` lines ``{"src", "tgt", "doc", "tag"}`` with ``tag`` in
  ``{clean,noisy}_{en,zh,de,fr,cs}`` as released (clean = relevant document, noisy = irrelevant).
  ``-T tags=all|clean|noisy`` filters, ``-T docs=doc|none``; BLEU/chrF are also reported per
  ``doc_kind`` (clean/noisy) and per ``tag``.

Prompt: the official template is unpublished, so this is evalsuite's own (``prompts.json``, versioned with
the task; see README.md). Greedy, max_tokens=1024. Extraction: the reply stripped, a leading
"Translation:"/"译文："-style label and one pair of enclosing quotes removed, first paragraph kept.

Document budget (``-T doc_tokens=N``, default 1024; 0 = never cut): each document keeps at most its first
N token ids of the backend's tokenizer. The cut runs on token ids, never on decoded text: the prompt is
sent as ids (chat-template prefix + the user text's pieces, each document's ids cut, + suffix), the way
:mod:`evalsuite.truncation` cuts prompts; samples with a cut document count as truncated in the run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, Truncating
from evalsuite.data import hash_paths, local_data, resolve
from evalsuite.datafiles import read_records
from evalsuite.errors import UserError
from evalsuite.sources import GITHUB, Need, RemoteFile, Source, resolve_need
from evalsuite.task import BaseTask, Option, TaskContext
from evalsuite.options import non_negative_int
from evalsuite.tokenizer import Tokenizer
from evalsuite.truncation import template_parts
from evalsuite.types import GenParams, Message, Request, Sample, sha256_text

__all__ = ["DocumentBudget", "RAGtransDev", "RAGtransTest", "clean_translation", "register"]

HERE = Path(__file__).resolve().parent
UPSTREAM = "krystalan/RAGtrans@7d974fd7d69b9cbcd48a85eb2180149e01b98d3d"
SOURCE = Source(
    id="ragtrans", host=GITHUB, repo="krystalan/RAGtrans", revision="7d974fd7d69b9cbcd48a85eb2180149e01b98d3d",
    files=(RemoteFile("data/RAGtrans_test.jsonl", git_blob="d955a0989641b6d7522a88b5e262ad0b0d06846c"),
           RemoteFile("data/RAGtrans_dev.jsonl", git_blob="bd6ac87e6e70770e9e457497f9960ecea6b8b003")),
    license="none stated (no LICENSE file, no license line in the README)",
    page="https://github.com/krystalan/RAGtrans",
    note="the validation and test sets are published in the GitHub repository only (commit 7d974fd \"update "
         "data\"); pinned by their git blob ids (the blobs were not available here: sha256 recorded on first use)")
TEST_DOCS = ("en", "zh", "de")
TAGS = tuple(f"{k}_{lang}" for k in ("clean", "noisy") for lang in ("en", "zh", "de", "fr", "cs"))


@lru_cache(maxsize=1)
def prompts() -> dict[str, str]:
    return json.loads((HERE / "prompts.json").read_text(encoding="utf-8"))


_LABEL = re.compile(r"^\s*(?:\*\*)?(?:translation|chinese translation|译文|翻译|中文翻译)(?:\*\*)?\s*[:：]\s*",
                    re.IGNORECASE)
_QUOTES = (("\u201c", "\u201d"), ('"', '"'), ("\u300c", "\u300d"), ("'", "'"))


def clean_translation(text: str) -> str:
    """Post-processing: strip, drop a leading translation label, keep the first paragraph, drop one pair
    of quotes that encloses it all."""
    t = _LABEL.sub("", text.strip(), count=1).strip()
    t = re.split(r"\n\s*\n", t, maxsplit=1)[0].strip()
    for a, b in _QUOTES:
        inner = t[len(a):-len(b)] if len(t) >= len(a) + len(b) and t.startswith(a) and t.endswith(b) else None
        if inner is not None and a not in inner and b not in inner:  # one pair enclosing everything
            return inner.strip()
    return t


@dataclass
class DocumentBudget:
    """Cut each document of a RAGtrans prompt to ``max_doc_tokens`` token ids (keep the head).

    The runner calls :meth:`apply` per request; the task registers the pieces of each prompt text first
    (keyed by that text, so the policy needs nothing else of the request).
    """

    max_doc_tokens: int
    side: str = "right"
    """Which part of a document is kept: its start (the cut removes the end)."""

    def __post_init__(self) -> None:
        # not a dataclass field: the run manifest records the policy's fields, not the documents
        self._pieces: dict[str, tuple[str, tuple[str, ...], str, str]] = {}

    def describe(self) -> dict[str, Any]:
        """The policy as recorded in the manifest: its fields, not the documents."""
        return {"max_doc_tokens": self.max_doc_tokens, "side": self.side}

    def register(self, text: str, head: str, docs: Sequence[str], sep: str, tail: str) -> None:
        self._pieces[text] = (head, tuple(docs), sep, tail)

    def apply(self, req: Request, tok: Tokenizer) -> Request:
        text = req.prompt if isinstance(req.prompt, str) else req.prompt[-1].text
        pieces = self._pieces.get(text)
        if pieces is None or self.max_doc_tokens <= 0:
            return req
        head, docs, sep, tail = pieces
        doc_ids = [tok.encode(d) for d in docs]
        if all(len(ids) <= self.max_doc_tokens for ids in doc_ids):
            return req
        body: list[int] = tok.encode(head)
        sep_ids = tok.encode(sep)
        for k, ids in enumerate(doc_ids):
            if k:
                body += sep_ids
            body += ids[:self.max_doc_tokens]
        body += tok.encode(tail)
        if isinstance(req.prompt, str) and not req.use_chat_template:
            bos = tok.encode("", add_special_tokens=True)
            new = list(bos) + body
        else:
            pre, suf = template_parts(tok, req)
            new = pre + body + suf
        return replace(req, prompt_ids=tuple(new), truncated=True)


def _docs_option(allowed: tuple[str, ...]):
    def parse(v: str) -> str:
        v = v.strip().lower()
        if v not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return v
    return parse


def _options(docs_values: tuple[str, ...], docs_default: str, file_name: str) -> dict[str, Option]:
    from evalsuite.metrics.sacrebleu_metrics import MT_OPTION_HELP

    opts = {
        "data_file": Option(str, None, f"the official {file_name}"),
        "data_dir": Option(str, None, f"a checkout of krystalan/RAGtrans (or its data/ folder) holding {file_name}"),
        "docs": Option(_docs_option(docs_values), docs_default,
                       f"documents in the prompt: {'|'.join(docs_values)} (default {docs_default})"),
        "doc_tokens": Option(non_negative_int, 1024, "keep at most N token ids of each document (0: never cut); "
                                            "needs the backend's tokenizer"),
    }
    for key, help_text in MT_OPTION_HELP.items():
        opts[key] = Option(int if key == "comet_batch_size" else str, None, help_text)
    return opts


class _RAGtransTask(BaseTask, Truncating, DataNeeds):
    split = ""
    file_name = ""
    version = "1"
    options: Mapping[str, Option] = {}

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._source: dict[str, Any] | None = None
        self._budget: DocumentBudget | None = None

    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        n = int(self.opts["doc_tokens"])
        self._budget = None
        if n and self.opts["docs"] != "none":
            if ctx.tokenizer is None:
                raise UserError(f"{self.name}: the document budget (-T doc_tokens={n}) is counted in the model's "
                                f"token ids and this backend has no tokenizer: pass {ctx.tokenizer_hint}, or "
                                "-T doc_tokens=0 to send documents whole")
            self._budget = DocumentBudget(n)

    def truncation(self) -> DocumentBudget | None:
        return self._budget

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [Need(SOURCE, f"data/{cls.file_name}")]

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not local_data(self.opts["data_dir"], self.opts["data_file"]):
            got = resolve_need(self.name, Need(SOURCE, f"data/{self.file_name}"), self.opts["data_dir"])
            path, self._source = got.path, {"kind": "source", **got.record}
        else:
            src = resolve(self.name, self.opts["data_dir"], self.opts["data_file"], None,
                          patterns=(self.file_name,))
            path = src.path
            if src.kind == "dir":
                cands = [p for p in (path / self.file_name, path / "data" / self.file_name) if p.is_file()]
                if not cands:
                    raise UserError(f"{self.name}: no {self.file_name} (or data/{self.file_name}) in {str(path)!r}")
                path = cands[0]
                src = type(src)("file", path, None, hash_paths([path]))
            self._source = {**src.describe(), "upstream": UPSTREAM}
        for i, row in enumerate(read_records(path, self.name, "jsonl")):
            yield i, row

    def _check(self, path_row: int, row: Mapping[str, Any], keys: Sequence[str]) -> None:
        bad = [k for k in keys if not isinstance(row.get(k), str)]
        if bad:
            raise UserError(f"{self.name}: line {path_row + 1} lacks string field(s) {bad} "
                            f"(expected the official {self.file_name} format)")

    def documents(self, sample: Sample) -> list[str]:
        raise NotImplementedError

    def request(self, sample: Sample) -> Request:
        p = prompts()
        docs = self.documents(sample)
        src = sample.input["src"]
        if docs:
            head, rest = p["user_with_docs"].split("{docs}", 1)
            tail = rest.replace("{src}", src)
            text = head + p["doc_separator"].join(docs) + tail
            if self._budget is not None:
                self._budget.register(text, head, docs, p["doc_separator"], tail)
        else:
            text = p["user_no_docs"].replace("{src}", src)
        return Request.new(prompt=(Message("user", text),),
                       params=GenParams(max_tokens=1024, temperature=0.0, top_p=1.0, seed=0))

    def extract(self, sample: Sample, generation: Any) -> str:
        return clean_translation(generation.text)

    def gold(self, sample: Sample) -> str:
        return sample.target

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": f"RAGtrans {self.split} ({UPSTREAM}, data/{self.file_name})",
                  "prompt": "evalsuite's own (the official template is unpublished)",
                  "prompts_sha256": sha256_text((HERE / "prompts.json").read_text(encoding="utf-8")),
                  "doc_budget": {"max_doc_tokens": self._budget.max_doc_tokens, "keep": "head", "on": "token ids"}
                  if self._budget else None,
                  "data": self._source})
        return d


class RAGtransTest(_RAGtransTask):
    """RAGtrans test split: en->zh with en/zh/de documents (-T docs=none|en|zh|de|all)."""

    name = "ragtrans/test"
    split = "test"
    file_name = "RAGtrans_test.jsonl"
    description = "RAGtrans test: en->zh translation with en/zh/de documents (-T docs=none|en|zh|de|all)"
    options = _options(("none", "en", "zh", "de", "all"), "all", "RAGtrans_test.jsonl")

    def samples(self) -> Iterator[Sample]:
        for i, row in self._rows():
            self._check(i, row, ("src", "tgt", "en_doc", "zh_doc", "de_doc"))
            yield Sample(id=f"ragtrans-test-{i}", index=i, input=row, target=row["tgt"],
                         metadata={"source": row["src"], "source_lang": "en", "target_lang": "zh",
                                   "docs": self.opts["docs"]})

    def documents(self, sample: Sample) -> list[str]:
        d = self.opts["docs"]
        langs = TEST_DOCS if d == "all" else () if d == "none" else (d,)
        return [sample.input[f"{lang}_doc"] for lang in langs]

    def metrics(self) -> Sequence[Any]:
        from evalsuite.metrics.sacrebleu_metrics import translation_metrics

        return translation_metrics(self.opts, "zh")


def _tags_option(v: str) -> str:
    v = v.strip().lower()
    if v not in ("all", "clean", "noisy"):
        raise ValueError("expected all, clean or noisy")
    return v


class RAGtransDev(_RAGtransTask):
    """RAGtrans dev split: en->zh with one clean or noisy document per pair (tags as released)."""

    name = "ragtrans/dev"
    split = "dev"
    file_name = "RAGtrans_dev.jsonl"
    description = "RAGtrans dev: en->zh with one clean/noisy document (-T tags=all|clean|noisy, -T docs=doc|none)"
    options = {**_options(("doc", "none"), "doc", "RAGtrans_dev.jsonl"),
               "tags": Option(_tags_option, "all", "which documents: all, clean (relevant) or noisy (irrelevant)")}

    def samples(self) -> Iterator[Sample]:
        want = self.opts["tags"]
        for i, row in self._rows():
            self._check(i, row, ("src", "tgt", "doc", "tag"))
            tag = row["tag"]
            if tag not in TAGS:
                raise UserError(f"{self.name}: line {i + 1} has tag {tag!r}; released tags are {', '.join(TAGS)}")
            kind, lang = tag.split("_", 1)
            if want != "all" and kind != want:
                continue
            yield Sample(id=f"ragtrans-dev-{i}", index=i, input=row, target=row["tgt"],
                         metadata={"source": row["src"], "source_lang": "en", "target_lang": "zh", "tag": tag,
                                   "doc_kind": kind, "doc_lang": lang, "docs": self.opts["docs"]})

    def documents(self, sample: Sample) -> list[str]:
        return [] if self.opts["docs"] == "none" else [sample.input["doc"]]

    def metrics(self) -> Sequence[Any]:
        from evalsuite.metrics.sacrebleu_metrics import translation_metrics

        return translation_metrics(self.opts, "zh", by="doc_kind,tag")


def register(registry: Any) -> None:
    for cls in (RAGtransTest, RAGtransDev):
        registry.add_task(cls.name, cls, cls.description)
    registry.add_group("ragtrans", [RAGtransTest.name, RAGtransDev.name])
