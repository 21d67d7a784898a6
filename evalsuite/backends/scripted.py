"""Scripted backends, registered like any other: for tests, smoke runs and replaying outputs.

* ``echo``: returns a fixed text (``-B text=...``) or the tail of the prompt (``-B tail=N`` chars),
  optionally after ``-B delay=<seconds>`` per request.
* ``replay``: answers from a JSONL file (``-B file=...``) whose lines carry ``output`` and either
  ``sample_id`` or ``task`` + ``index`` (the sample's 0-based position in its source data).
* ``gold``: answers every request with the task's reference answer, so a task's extraction and metrics
  are proven end to end (gold must reach each task's maximum).

All three accept ``--model <local tokenizer folder>`` to give tasks a tokenizer (RULER fits prompts to
a token length with it); they never load model weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import UserError
from ..tokenizer import load_tokenizer, render_request, request_token_count
from ..types import Generation, Request, Sample, sha256_text
from . import BaseBackend, parse_options


class _Scripted(BaseBackend):
    kind = "scripted"
    extra_options: dict[str, tuple[Any, Any]] = {}

    def __init__(self, model: str | None = None, **options: Any):
        spec = {"delay": (float, 0.0), **self.extra_options}
        self.opts = parse_options(self.kind, spec, options)
        self.model = model
        self.tokenizer = load_tokenizer(model) if model else None
        self.max_model_len = None
        if self.tokenizer is not None:
            mml = self.tokenizer.config.get("model_max_length")
            self.max_model_len = int(mml) if isinstance(mml, (int, float)) and mml < 1e9 else None
        tok_id = f"@{self.tokenizer.tokenizer_hash[:12]}" if self.tokenizer else ""
        self.id = f"{self.kind}{tok_id}:{self._identity()}"

    def _identity(self) -> str:
        return ""

    def _answer(self, req: Request) -> Generation:
        raise NotImplementedError

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [g for _, g in self.generate_iter(requests)]

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        # one at a time, so the runner persists each answer as soon as it exists
        for pos, req in enumerate(requests):
            t0 = time.perf_counter()
            if self.opts["delay"]:
                time.sleep(self.opts["delay"])
            g = self._answer(req)
            # the count planning made (RULER) or the carried ids: no second encoding of a long prompt
            prompt_tokens = request_token_count(self.tokenizer, req) if self.tokenizer else None
            completion_tokens = len(self.tokenizer.encode(g.text)) if self.tokenizer and g.ok else None
            yield pos, Generation(text=g.text, finish_reason=g.finish_reason, error=g.error,
                                  prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                  latency_s=time.perf_counter() - t0)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "backend": self.kind, "options": dict(self.opts)}
        if self.tokenizer is not None:
            d.update(self.tokenizer.describe())
        return d


class EchoBackend(_Scripted):
    """Scripted: a fixed text (-B text=...) or the prompt's tail (-B tail=N chars); -B delay=seconds."""

    kind = "echo"
    extra_options = {"text": (str, None), "tail": (int, 200)}

    def _identity(self) -> str:
        t = self.opts["text"]
        return f"text={sha256_text(t)[:12]}" if t is not None else f"tail={self.opts['tail']}"

    def _answer(self, req: Request) -> Generation:
        if self.opts["text"] is not None:
            return Generation(self.opts["text"], "stop")
        if self.tokenizer is not None:
            prompt = render_request(self.tokenizer, req)
        else:
            prompt = req.prompt if isinstance(req.prompt, str) else "\n".join(m.text for m in req.prompt)
        n = self.opts["tail"]
        return Generation(prompt[-n:] if n > 0 else "", "stop")


class ReplayBackend(_Scripted):
    """Scripted: answers from a JSONL file (-B file=...) keyed by sample_id or task + index."""

    kind = "replay"
    extra_options = {"file": (str, None), "missing": (str, "error")}

    def __init__(self, model: str | None = None, **options: Any):
        super().__init__(model, **options)
        path = self.opts["file"]
        if not path:
            raise UserError("backend replay needs -B file=<outputs.jsonl>")
        if self.opts["missing"] not in {"error", "empty"}:
            raise UserError("backend replay: -B missing= must be 'error' or 'empty'")
        self.by_id: dict[tuple[str | None, str], str] = {}
        self.by_index: dict[tuple[str, int], str] = {}
        p = Path(path)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"backend replay: cannot read {path}: {exc.strerror}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out = row["output"]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"backend replay: {path}:{n}: expected a JSON object with 'output'") from None
            if "sample_id" in row:
                self.by_id[(row.get("task"), str(row["sample_id"]))] = out
            elif "task" in row and "index" in row:
                self.by_index[(row["task"], int(row["index"]))] = out
            else:
                raise UserError(f"backend replay: {path}:{n}: needs 'sample_id' or 'task' + 'index'")
        self.file_hash = sha256_text(p.read_text(encoding="utf-8"))

    def _identity(self) -> str:
        return f"file={getattr(self, 'file_hash', '')[:12]}"

    def _answer(self, req: Request) -> Generation:
        for key in ((req.task, req.sample_id), (None, req.sample_id)):
            if key in self.by_id:
                return Generation(self.by_id[key], "stop")
        if (req.task, req.index) in self.by_index:
            return Generation(self.by_index[(req.task, req.index)], "stop")
        if self.opts["missing"] == "empty":
            return Generation("", "stop")
        return Generation.failed(f"replay: no output for {req.task} sample {req.sample_id} (index {req.index})")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file_sha256": self.file_hash}


class GoldBackend(_Scripted):
    """Scripted: answers with each task's reference answer (every task must reach its maximum)."""

    kind = "gold"

    def bind(self, tasks: Mapping[str, Any], samples: Mapping[tuple[str, str], Sample]) -> None:
        self._gold = {key: tasks[key[0]].gold(s) for key, s in samples.items()}

    def _answer(self, req: Request) -> Generation:
        gold = getattr(self, "_gold", {}).get((req.task, req.sample_id))
        if gold is None:
            return Generation.failed(f"gold: no reference for {req.task} sample {req.sample_id}")
        return Generation(gold, "stop")
