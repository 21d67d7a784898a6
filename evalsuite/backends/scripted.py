"""Scripted backends, registered like any other: for tests, smoke runs and replaying outputs.

* ``echo``: returns a fixed text (``-B text=...``) or the tail of the prompt (``-B tail=N`` chars),
  optionally after ``-B delay=<seconds>`` per request.
* ``replay``: answers from a JSONL file (``-B file=...``) whose lines carry ``output`` and either
  ``sample_id`` or ``task`` + ``index`` (the sample's 0-based position in its source data). A line that
  is not such an object (a bad ``index`` such as ``"zero"`` or ``1e400``, a ``task`` that is not a string,
  a file that is not UTF-8) stops the run with one line naming the file and line. An ``output`` that is
  not a string (``123``, ``null``, a list) answers that request with an error. ``-B missing=`` says what
  a request without a line gets (``error``: a failed request, the default; ``empty``: an empty answer)
  and, with ``ignore``, lets lines name samples this run does not have; by default such lines are an
  error (a typo in an id or the wrong file would otherwise go unnoticed) for the run's tasks that run
  whole: with ``--limit``, ``--samples`` or task options (``-T tags=...``, ``-T n=...``) a task may run a
  subset, and lines outside it are not checked.
* ``gold``: answers every request with the task's reference answer, so a task's extraction and metrics
  are proven end to end (gold must reach each task's maximum).

All three accept ``--model <local tokenizer folder>`` to give tasks a tokenizer (RULER fits prompts to
a token length with it); they never load model weights.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import UserError
from ..options import Option
from ..store import valid_text
from ..tokenizer import load_tokenizer, render_request, request_token_count
from ..types import Generation, Request, sha256_text
from ..contracts import ChecksModel, PlanBound, PlanView, Scripted, ValidatesOptions
from . import BaseBackend, parse_options


class _Scripted(BaseBackend, Scripted, ValidatesOptions, ChecksModel):
    kind = "scripted"
    scripted = True
    """Answers come from a script, not a model: such runs are labelled so and kept out of rankings."""
    extra_options: dict[str, Option] = {}

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """``-B`` keys and values, checked before anything is built (``evalsuite.validate``)."""
        opts = parse_options(cls.kind, {"delay": Option(float, 0.0, "seconds to wait per batch"), **cls.extra_options}, options)
        if cls.kind == "replay" and opts.get("file"):
            p = Path(opts["file"])
            if not p.is_file() or not os.access(p, os.R_OK):
                raise UserError(f"backend replay: cannot read {opts['file']}: "
                                f"{'No such file or directory' if not p.exists() else 'not a readable file'}")

    @classmethod
    def validate_model(cls, model: str | None) -> None:
        """``--model`` is a local tokenizer folder (scripted backends never load weights)."""
        if model and not Path(model).exists():
            raise UserError(f"tokenizer path {model!r} does not exist (hub ids need a local folder offline)")

    def __init__(self, model: str | None = None, **options: Any):
        spec = {"delay": Option(float, 0.0, "seconds to wait per batch"), **self.extra_options}
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
            # counted on the valid text; the runner repairs (and records) the stored one
            completion_tokens = (len(self.tokenizer.encode(valid_text(g.text)[0]))
                                 if self.tokenizer and g.ok and isinstance(g.text, str) else None)
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
    extra_options = {"text": Option(str, None, "answer this text to every request"),
                     "tail": Option(int, 200, "otherwise echo the prompt's last N characters")}

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


class _NotText:
    """A replay line whose ``output`` is not a string: answered as a per-request error."""

    def __init__(self, value: Any):
        self.kind = "null" if value is None else "bool" if isinstance(value, bool) else \
            "object" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__


def _whole_number(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


class ReplayBackend(_Scripted, PlanBound):
    """Scripted: answers from a JSONL file (-B file=...) keyed by sample_id or task + index."""

    kind = "replay"
    extra_options = {"file": Option(str, None, "the JSONL file of outputs to replay"),
                     "missing": Option(str, "error", "a request without an output: error, empty or ignore")}

    def __init__(self, model: str | None = None, **options: Any):
        super().__init__(model, **options)
        path = self.opts["file"]
        if not path:
            raise UserError("backend replay needs -B file=<outputs.jsonl>")
        if self.opts["missing"] not in {"error", "empty", "ignore"}:
            raise UserError("backend replay: -B missing= must be 'error', 'empty' or 'ignore'")
        self.path = path
        self.by_id: dict[tuple[str | None, str], Any] = {}
        self.by_index: dict[tuple[str, int], Any] = {}
        self._lines: list[tuple[int, str | None, str | None, int | None]] = []
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise UserError(f"backend replay: cannot read {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"backend replay: {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                            f"{exc.start})") from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as read_text did: the identity hash is kept
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                self._add_line(path, n, line)
        self.file_hash = sha256_text(text)

    def _add_line(self, path: str, n: int, line: str) -> None:
        where = f"backend replay: {path}:{n}"
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"{where}: not valid JSON ({str(exc)[:80]})") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object with 'output', got {type(row).__name__}")
        if "output" not in row:
            raise UserError(f"{where}: expected a JSON object with 'output'")
        out = row["output"]
        out = out if isinstance(out, str) else _NotText(out)
        task = row.get("task")
        if task is not None and not isinstance(task, str):
            raise UserError(f"{where}: task must be a string, got {json.dumps(task)[:60]}")
        if "sample_id" in row:
            sid = row["sample_id"]
            if isinstance(sid, bool) or not isinstance(sid, (str, int)):
                raise UserError(f"{where}: sample_id must be a string, got {json.dumps(sid)[:60]}")
            self.by_id[(task, str(sid))] = out
            self._lines.append((n, task, str(sid), None))
        elif task is not None and "index" in row:
            idx = _whole_number(row["index"])
            if idx is None:
                raise UserError(f"{where}: index must be a whole number, got {json.dumps(row['index'])[:60]}")
            self.by_index[(task, idx)] = out
            self._lines.append((n, task, None, idx))
        else:
            raise UserError(f"{where}: needs 'sample_id' or 'task' + 'index'")

    def bind(self, plan: PlanView) -> None:
        """Check the file against the run: a line for one of the run's tasks (or without a task) that
        names no sample of the run is an error, unless ``-B missing=ignore`` or a selection (``--limit``,
        ``--samples``, task options: ``plan.partial``) may leave that task's samples out on purpose."""
        if self.opts["missing"] == "ignore":
            return
        tasks, samples, partial = plan.tasks, plan.samples, plan.partial
        ids = {sid for _, sid in samples}
        pairs = set(samples)
        positions = {(t, s.index) for (t, _), s in samples.items()}
        unknown = []
        for n, task, sid, idx in self._lines:
            if task is not None and task not in tasks:
                continue  # another task's answers (one file for several runs)
            if (task in partial) or (task is None and partial):
                continue  # a selection leaves samples out: an unmatched line may be one of them
            if sid is not None:
                ok = (task, sid) in pairs if task is not None else sid in ids
            else:
                ok = (task, idx) in positions
            if not ok:
                unknown.append(f"line {n}: {task or '*'} " + (f"sample {sid!r}" if sid is not None else f"index {idx}"))
        if unknown:
            raise UserError(f"backend replay: {self.path}: {len(unknown)} line{'s' if len(unknown) != 1 else ''} "
                            f"name samples this run does not have ({'; '.join(unknown[:3])}"
                            f"{'; ...' if len(unknown) > 3 else ''}); fix the file, or pass -B missing=ignore")

    def _identity(self) -> str:
        # The id has always been made before the file is read, so it names no content ("file="); the keys of
        # every recorded replay run depend on it. The file's sha256 is recorded by describe().
        return "file="

    def _answer(self, req: Request) -> Generation:
        out: Any = None
        found = False
        for key in ((req.task, req.sample_id), (None, req.sample_id)):
            if key in self.by_id:
                out, found = self.by_id[key], True
                break
        if not found and (req.task, req.index) in self.by_index:
            out, found = self.by_index[(req.task, req.index)], True
        if found:
            if isinstance(out, _NotText):
                return Generation.failed(f"replay: the output for {req.task} sample {req.sample_id} is "
                                         f"{out.kind}, not text")
            return Generation(out, "stop")
        if self.opts["missing"] == "empty":
            return Generation("", "stop")
        return Generation.failed(f"replay: no output for {req.task} sample {req.sample_id} (index {req.index})")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file_sha256": self.file_hash}


class GoldBackend(_Scripted, PlanBound):
    """Scripted: answers with each task's reference answer (every task must reach its maximum)."""

    kind = "gold"
    _gold: Mapping[tuple[str, str], str] = {}

    def bind(self, plan: PlanView) -> None:
        self._gold = {key: plan.tasks[key[0]].gold(s) for key, s in plan.samples.items()}

    def _answer(self, req: Request) -> Generation:
        gold = self._gold.get((req.task, req.sample_id))
        if gold is None:
            return Generation.failed(f"gold: no reference for {req.task} sample {req.sample_id}")
        return Generation(gold, "stop")
