"""The long-document steps HELMET applies to LongQA and Summ rows before the model sees them
(``filter_length`` and ``truncate_llama2`` in its data.py), with one tokenizer for all models.

* ``filter_length(rows, n)``: keep rows whose context has at least ``n`` tokens;
* ``truncate_llama2``: a context longer than ``n`` tokens (``n`` = the number in HELMET's dataset name,
  e.g. 130772 for ``narrativeqa_130772``) is cut after the token at position ``n - len(postfix tokens)``
  and ``" ... [the rest of the text is omitted]"`` is appended.

Counts include the tokenizer's own special tokens (``tokenizer(text)["input_ids"]``). HELMET uses the
Llama-2 tokenizer so every model sees the same text; ``-T doc_tokenizer=<folder>`` gives it here, and
without it the model's own tokenizer is used (recorded in ``describe``).
"""

from __future__ import annotations

from array import array
from typing import Any, Iterator, Mapping

from evalsuite.errors import UserError
from evalsuite.task import Option
from evalsuite.tokenizer import Tokenizer
from evalsuite.types import Sample, sha256_text

from ._base import HelmetTask, hf_offsets, templates

SHARED_DOCS = 16
_SHARED: dict[tuple[str, str], tuple[int, Any]] = {}
"""(tokenizer, sha256 of a document) -> (tokens, token end offsets): the last ``SHARED_DOCS`` documents."""


class LongDocTask(HelmetTask):
    options: Mapping[str, Option] = {
        **HelmetTask.options,
        "doc_tokenizer": Option(str, None, "tokenizer folder for HELMET's document length filter and "
                                "pre-truncation (HELMET: meta-llama/Llama-2-7b-hf); default: the model's"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._doc_tok: Tokenizer | None = None
        self._counts: dict[str, int] = {}

    def samples(self) -> Iterator[Sample]:
        try:
            yield from super().samples()
        finally:
            self._counts.clear()  # it holds the documents' texts

    def doc_tokenizer(self) -> Tokenizer:
        if self._doc_tok is None:
            if self.opts["doc_tokenizer"]:
                from evalsuite.tokenizer import load_tokenizer

                self._doc_tok = load_tokenizer(self.opts["doc_tokenizer"])
            elif self.ctx.tokenizer is not None:
                self._doc_tok = self.ctx.tokenizer
            else:
                raise UserError(f"{self.name}: HELMET selects and pre-truncates documents by token count: pass "
                                "-T doc_tokenizer=<Llama-2 tokenizer folder> (HELMET's) or a backend with a "
                                "tokenizer (--model <folder> / -B tokenizer=<folder>)")
        return self._doc_tok

    def _doc(self, text: str) -> tuple[int, Any]:
        """(tokens with special tokens, end offset of every token or None) of a document, from one encoding
        with offsets, kept for the last ``SHARED_DOCS`` documents in a cache shared by the tasks of a run
        (InfiniteBench QA, MC and Sum read the same books); token counts are kept per task for all."""
        tok = self.doc_tokenizer()
        key = (str(getattr(tok, "tokenizer_hash", id(tok))), sha256_text(text))
        info = _SHARED.pop(key, None)
        if info is None:
            offsets = hf_offsets(tok, text)
            if offsets is None:
                info = (len(tok.encode(text, add_special_tokens=True)), None)
            else:
                info = (len(offsets), array("l", (e for _, e in offsets)))
        _SHARED[key] = info  # most recent last
        while len(_SHARED) > SHARED_DOCS:
            _SHARED.pop(next(iter(_SHARED)))
        self._counts[text] = info[0]
        return info

    def n_tokens(self, text: str) -> int:
        """``len(tokenizer(text)["input_ids"])`` (special tokens included)."""
        n = self._counts.get(text)
        return n if n is not None else self._doc(text)[0]

    def pretruncate(self, text: str, length: int) -> str:
        """HELMET's ``truncate_llama2`` to ``length`` tokens: cut after the token at ``length - len(postfix
        tokens)`` (offsets with special tokens) and append the postfix."""
        if self.n_tokens(text) <= length:
            return text
        _, ends = self._doc(text)
        if ends is None:
            raise UserError(f"{self.name}: the document tokenizer gives no character offsets (a fast "
                            "tokenizer is needed)")
        postfix = templates()["truncate_postfix"]
        sep = len(self.doc_tokenizer().encode(postfix, add_special_tokens=True))
        return text[:ends[length - sep]] + postfix

    def doc_limit(self, length: int) -> int:
        """The pre-truncation length: the number at the end of HELMET's dataset name."""
        return int(self.spec.lengths[length].dataset.split("_")[-1])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        tok = self._doc_tok
        d["doc_tokenizer"] = tok.describe() if tok is not None and tok is not self.ctx.tokenizer else (
            "the model's tokenizer (HELMET: meta-llama/Llama-2-7b-hf)")
        return d
