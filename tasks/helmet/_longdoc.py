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

from typing import Any, Mapping

from evalsuite.errors import UserError
from evalsuite.task import Option
from evalsuite.tokenizer import Tokenizer

from ._base import HelmetTask, hf_offsets, templates


class LongDocTask(HelmetTask):
    options: Mapping[str, Option] = {
        **HelmetTask.options,
        "doc_tokenizer": Option(str, None, "tokenizer folder for HELMET's document length filter and "
                                "pre-truncation (HELMET: meta-llama/Llama-2-7b-hf); default: the model's"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._doc_tok: Tokenizer | None = None
        self._docs: dict[str, tuple[int, dict[int, int]]] = {}

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

    def _doc(self, text: str) -> tuple[int, dict[int, int]]:
        """(tokens with special tokens, {pre-truncation length: character cut}) of a document, from one
        encoding with offsets; cached per text (a document shared by several questions is encoded once)."""
        info = self._docs.get(text)
        if info is None:
            tok = self.doc_tokenizer()
            offsets = hf_offsets(tok, text)
            if offsets is None:
                n, cuts = len(tok.encode(text, add_special_tokens=True)), {}
            else:
                n = len(offsets)
                sep = len(tok.encode(templates()["truncate_postfix"], add_special_tokens=True))
                cuts = {lim: offsets[lim - sep][1] for lim in map(self.doc_limit, self.opts["lengths"]) if n > lim}
            info = self._docs[text] = (n, cuts)
        return info

    def n_tokens(self, text: str) -> int:
        """``len(tokenizer(text)["input_ids"])`` (special tokens included)."""
        return self._doc(text)[0]

    def pretruncate(self, text: str, length: int) -> str:
        """HELMET's ``truncate_llama2`` to ``length`` tokens: cut after the token at ``length - len(postfix
        tokens)`` (offsets with special tokens) and append the postfix."""
        n, cuts = self._doc(text)
        if n <= length:
            return text
        if length not in cuts:
            raise UserError(f"{self.name}: the document tokenizer gives no character offsets (a fast "
                            "tokenizer is needed)")
        return text[:cuts[length]] + templates()["truncate_postfix"]

    def doc_limit(self, length: int) -> int:
        """The pre-truncation length: the number at the end of HELMET's dataset name."""
        return int(self.spec.lengths[length].dataset.split("_")[-1])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        tok = self._doc_tok
        d["doc_tokenizer"] = tok.describe() if tok is not None and tok is not self.ctx.tokenizer else (
            "the model's tokenizer (HELMET: meta-llama/Llama-2-7b-hf)")
        return d
