"""Local NLI judge backends for citation metrics (``evalsuite.citation``), used as ``--judge-backend``:

* ``nli_seq2seq``: a T5-style NLI model (ALCE/HELMET: ``google/t5_xxl_true_nli_mixture``);
* ``nli_classifier``: a sequence-pair classifier (L-CiteEval: ``tasksource/deberta-base-long-nli``).

Each receives a question as two user messages ``(premise, hypothesis)`` and answers ``"1"`` (entailed) or
``"0"``; they declare :class:`evalsuite.contracts.NLIPairs` so the citation metrics ask them pairs instead
of yes/no questions. torch and transformers are imported when a model loads.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..contracts import NLIPairs
from ..errors import UserError
from ..options import Option, positive_int
from ..types import Generation, Request
from . import BaseBackend, parse_options

NLI_OPTIONS = {
    "batch_size": Option(positive_int, 16, "premise/claim pairs per forward pass"),
    "device": Option(str, "cpu", "torch device (cpu, cuda, cuda:1, ...)"),
    "max_length": Option(positive_int, 512, "tokens of one premise/claim pair (cut beyond)"),
}


class _NLIBackend(BaseBackend, NLIPairs):
    """Base of the local NLI judge backends: one ``generate`` call gets every question of a scoring pass
    (the judge plugin hands all uncached questions over at once) and runs them in forward batches."""

    kind = "nli"
    options = NLI_OPTIONS

    def __init__(self, model: str | None = None, **options: Any):
        opts = parse_options(self.kind, self.options, options)
        if not model:
            raise UserError(f"backend {self.kind}: pass --judge-model <local folder or hub id>")
        self.model_path = model
        self.forward_batch = opts["batch_size"]
        self.batch_size = 1 << 30  # the judge plugin must not split a scoring pass
        self.device = opts["device"]
        self.max_length = opts["max_length"]
        self.n_generate_calls = 0
        self.n_forward_calls = 0
        self._load()
        self.id = f"{self.kind}:{self._identity()}|maxlen:{self.max_length}"

    def _identity(self) -> str:
        """The model: a hub id as given, a local folder by its content fingerprint (the one every local model
        gets: configs whole, weight files by size and their first and last MiB, never read whole)."""
        from pathlib import Path

        from .models import folder_fingerprint

        p = Path(self.model_path)
        if p.is_dir():
            return f"{p.name}@sha256:{folder_fingerprint(p)[:16]}"
        return self.model_path

    @staticmethod
    def _pair(req: Request) -> tuple[str, str]:
        msgs = req.messages()
        if len(msgs) != 2:
            raise ValueError("NLI backends answer (premise, hypothesis) message pairs only")
        return msgs[0].text, msgs[1].text

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.n_generate_calls += 1
        pairs = [self._pair(r) for r in requests]
        out: list[Generation] = []
        for start in range(0, len(pairs), self.forward_batch):
            self.n_forward_calls += 1
            out.extend(Generation(t, "stop") for t in self._verdicts(pairs[start:start + self.forward_batch]))
        return out

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "generate_calls": self.n_generate_calls,
                "forward_calls": self.n_forward_calls}

    def close(self) -> None:
        self._model = None


class NLIClassifierBackend(_NLIBackend):
    """A sequence-pair classifier (L-CiteEval: ``tasksource/deberta-base-long-nli``): entailed iff the
    arg-max label is ``entailment`` (case-insensitive)."""

    kind = "nli_classifier"

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.model_path).to(self.device).eval()
        labels = {i: str(l).lower() for i, l in self._model.config.id2label.items()}
        ent = [i for i, l in labels.items() if l == "entailment"]
        if len(ent) != 1:
            raise UserError(f"nli_classifier: model labels {labels} have no single 'entailment' label")
        self._entail_id = ent[0]
        # never feed more positions than the model has (an over-long pair is truncated, as the HF pipeline does)
        limits = [self.max_length, getattr(self._model.config, "max_position_embeddings", None),
                  getattr(self._tok, "model_max_length", None)]
        self.max_length = min(int(x) for x in limits if isinstance(x, int) and x > 0)

    def _verdicts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        import torch

        enc = self._tok([p for p, _ in pairs], [c for _, c in pairs], truncation=True,
                        max_length=self.max_length, padding=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self._model(**enc).logits
        return ["1" if int(i) == self._entail_id else "0" for i in logits.argmax(-1).tolist()]


class NLISeq2SeqBackend(_NLIBackend):
    """A T5-style NLI model (ALCE/HELMET: ``google/t5_xxl_true_nli_mixture``): input
    ``premise: {p} hypothesis: {c}``, greedy up to 10 new tokens, entailed iff the decoded text is ``1``."""

    kind = "nli_seq2seq"

    def _load(self) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_path).to(self.device).eval()

    def _verdicts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        import torch

        texts = [f"premise: {p} hypothesis: {c}" for p, c in pairs]
        enc = self._tok(texts, return_tensors="pt", padding=True, truncation=True,
                        max_length=self.max_length).to(self.device)
        with torch.inference_mode():
            outs = self._model.generate(**enc, max_new_tokens=10, do_sample=False)
        return ["1" if self._tok.decode(o, skip_special_tokens=True) == "1" else "0" for o in outs]


__all__ = ["NLIClassifierBackend", "NLISeq2SeqBackend"]
