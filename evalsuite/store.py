"""The results store: ``results/<run-id>/``.

Layout (every file is read and written here, typed by ``evalsuite.rows``)::

    manifest.json                  what moves a number: versions, backend, params, data hashes, timings
    <task>/plan.json               the request keys the run plans (PlanDoc)
    <task>/samples.jsonl           append-only log, one row per completed request, written per batch (SampleRow)
    <task>/prompts.jsonl           full prompts, only with --log-prompts (PromptRow)
    <task>/judge.jsonl             the judge's answers, cached and resumed (JudgeRow)
    <task>/per_sample.jsonl        per-sample predictions, flags and metric values (PerSampleRow)
    <task>/scores.json             corpus scores, written last (TaskScores)

Each JSON file carries a top-level ``schema_version``, each JSONL line its own (``rows.SCHEMA_VERSION``);
files written before versions existed read as version 1. Task names map to folders
(``ruler/niah_single_1`` -> ``ruler/niah_single_1/``). Prompts are stored by hash and length, never inline
(long-context inputs are hundreds of KB each). Rows are appended with a flush + fsync per batch; a row torn
by a crash is dropped when the log is next opened.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from .errors import UserError
from .redact import redact_obj, redact_text
from .rows import (SCHEMA_VERSION, JudgeRow, PerSampleRow, PlanDoc, PromptRow, SampleRow, TaskScores,
                   file_version)

MANIFEST = "manifest.json"
PLAN = "plan.json"
SAMPLES = "samples.jsonl"
PROMPTS = "prompts.jsonl"
JUDGE_LOG = "judge.jsonl"
PER_SAMPLE = "per_sample.jsonl"
SCORES = "scores.json"

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StoreWriteError(UserError):
    """The results folder cannot be written (disk full, quota, read-only, I/O error): one line, exit 2."""


def write_error(path: Path | str, exc: OSError) -> StoreWriteError:
    """The one-line error for a failed write; what was durable before it stays (logs are append-only and
    every other file is replaced atomically)."""
    return StoreWriteError(f"cannot write {path}: {exc.strerror or exc}; nothing finished is lost: free space "
                           "(or fix the folder) and re-run the same command to resume")


def current_umask() -> int:
    """The process umask, read without changing it where /proc says it (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the umask (0644 under the usual 022)."""
    return 0o666 & ~current_umask()


def _mkstemp(directory: Path, prefix: str) -> tuple[int, str]:
    """A temporary file for an atomic replace, with the mode an ordinary new file gets: mkstemp
    makes it 0600, and os.replace would carry that private mode over to the result."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
    except (OSError, AttributeError):  # no fchmod (Windows): nothing to fix there
        pass
    return fd, tmp


def _json_bytes(obj: Any, indent: int | None = None) -> bytes:
    """JSON as UTF-8; strings that are not valid Unicode (lone surrogates) are repaired, not fatal."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(_repair_strings(obj, "", []), indent=indent, ensure_ascii=False).encode("utf-8")


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename); the temporary file is
    removed on any failure, and a failed write is a :class:`StoreWriteError`."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(path.parent, f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_json(path: Path, obj: Any) -> None:
    _write_new(path, _json_bytes(obj, indent=2) + b"\n")


def check_output_root(root: str | os.PathLike[str], what: str = "--output") -> Path:
    """Fail fast, with one line, when results cannot go to ``root``: a file, a kernel filesystem
    (``/proc``, ``/sys``, ``/dev`` except ``/dev/shm``), a folder that cannot be created, or one that
    cannot be written (read-only, no space, no permission). Creates the folder. Call it before anything
    is loaded."""
    p = Path(root)
    real = os.path.realpath(p)
    for kernel in ("/proc", "/sys", "/dev"):
        if (real == kernel or real.startswith(kernel + "/")) and not real.startswith("/dev/shm"):
            raise UserError(f"{what} {root} is under {kernel}, a kernel filesystem, not a place for results")
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {root} is a file, not a folder")
    above = p.parent
    while not above.exists() and above.parent != above:
        above = above.parent
    if above.exists() and not above.is_dir():
        raise UserError(f"{what} {root}: {above} is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {root}: {exc.strerror or exc}") from None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".evalsuite-write-test.", suffix=".tmp")
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"cannot write to {what} {root}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return p


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so the next append starts on a fresh line."""
    if not path.exists():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # walk back to the last newline
        pos = size - 1
        block = 4096
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                return
            pos = start
        f.truncate(0)


def valid_text(text: str) -> tuple[str, bool]:
    """``text`` as valid Unicode (storable as UTF-8): surrogate pairs joined, a lone surrogate (``"\\ud800"``
    from a replay file or a server's JSON) replaced by U+FFFD. Returns (text, whether it was repaired)."""
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"), True


def _repair_strings(obj: Any, path: str, repaired: list[str]) -> Any:
    if isinstance(obj, str):
        fixed, changed = valid_text(obj)
        if changed:
            repaired.append(path or "$")
        return fixed
    if isinstance(obj, Mapping):
        return {(_repair_strings(k, path, repaired) if isinstance(k, str) else k):
                _repair_strings(v, f"{path}.{k}" if path else str(k), repaired) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_repair_strings(v, f"{path}[{i}]", repaired) for i, v in enumerate(obj)]
    return obj


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One JSONL line (UTF-8 bytes) for a log row. The error of a ``generation`` is redacted
    (``evalsuite.redact``); a string that is not valid Unicode is repaired and the row lists where under
    ``repaired`` (the data is stored rather than crashing every later run)."""
    gen = row.get("generation")
    if isinstance(gen, Mapping) and gen.get("error"):
        row = {**row, "generation": {**gen, "error": redact_text(str(gen["error"]))}}
    line = json.dumps(row, ensure_ascii=False) + "\n"
    try:
        return line.encode("utf-8")
    except UnicodeEncodeError:
        repaired: list[str] = list(row.get("repaired") or [])
        fixed = _repair_strings(dict(row), "", repaired)
        fixed["repaired"] = repaired
        return (json.dumps(fixed, ensure_ascii=False) + "\n").encode("utf-8")


def append_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to a JSONL log and make them durable before returning (a torn tail from an earlier
    crash is cut first, so the new rows start on a fresh line)."""
    data = b"".join(encode_row(r) for r in rows)
    if not data:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:  # unbuffered: a failed write leaves nothing in a buffer to flush later
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, start)  # no half-written row left behind (shrinking always fits)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from None


_SKIPPED: dict[str, int] = {}
_REPORTED: set[tuple[str, int]] = set()
R = TypeVar("R")


def skipped_lines(path: Path) -> int:
    """How many lines of ``path`` the last complete read skipped (not JSON, not UTF-8, not a row)."""
    return _SKIPPED.get(str(path), 0)


def read_rows(path: Path, parse: Callable[[Any, str], R | None]) -> Iterator[R]:
    """Typed rows of a JSONL file (``parse``: a row class's ``from_dict``). A torn last line (a crash
    mid-write) is dropped; any other line that is not a row (invalid UTF-8 or JSON, not an object, not what
    ``parse`` accepts) is skipped and counted, and the count is reported once per process on stderr
    (``skipped_lines``). A line written by a newer evalsuite stops the read (``rows.NewerSchema``)."""
    if not path.exists():
        return
    bad = 0
    where = str(path)
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn tail
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                bad += 1
                continue
            row = parse(obj, where)
            if row is None:
                bad += 1
                continue
            yield row
    _SKIPPED[str(path)] = bad
    if bad and (str(path), bad) not in _REPORTED:
        _REPORTED.add((str(path), bad))
        print(f"evalsuite: warning: {path}: skipped {bad} line{'s' if bad != 1 else ''} that are not valid rows",
              file=sys.stderr)


def _read_doc(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def append_judge_rows(path: Path, rows: Iterable[JudgeRow]) -> None:
    """Append judge answers to a ``judge.jsonl`` (durable before returning; see :func:`append_jsonl`)."""
    append_jsonl(path, (r.to_dict() for r in rows))


def read_judge_rows(path: Path) -> Iterator[JudgeRow]:
    """The answers of a ``judge.jsonl``."""
    return read_rows(path, JudgeRow.from_dict)


class ResultsStore:
    """One run folder, and every file in it (``evalsuite.rows`` types each; every file carries its
    ``schema_version``, and the files of evalsuite versions before it still read)."""

    def __init__(self, root: str | os.PathLike[str], run_id: str):
        if not _SAFE_RUN_ID.match(run_id):
            raise UserError(f"bad run id {run_id!r}: use letters, digits, '.', '_' and '-'")
        self.root = Path(root)
        self.run_id = run_id
        self.dir = self.root / run_id

    @staticmethod
    def open_existing(path: str | os.PathLike[str]) -> "ResultsStore":
        """Open a run by folder path (``results/<id>``) or by id under ``results/``."""
        p = Path(path)
        if not (p / MANIFEST).is_file():
            alt = Path("results") / str(path)
            if (alt / MANIFEST).is_file():
                p = alt
            else:
                raise UserError(f"no run at {str(path)!r} (expected a folder with {MANIFEST})")
        return ResultsStore(p.parent, p.name)

    # -- manifest ---------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.dir / MANIFEST).is_file()

    def read_manifest(self) -> dict[str, Any]:
        """The manifest (a dict: what moves a number); {} when the run has none yet."""
        doc = _read_doc(self.dir / MANIFEST)
        if not isinstance(doc, dict):
            return {}
        file_version(doc, str(self.dir / MANIFEST))
        return doc

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Write the manifest, with every credential redacted (``evalsuite.redact``) whoever put it there."""
        doc = {k: v for k, v in manifest.items() if k != "schema_version"}
        atomic_write_json(self.dir / MANIFEST, {**redact_obj(doc), "schema_version": SCHEMA_VERSION})

    # -- per task ---------------------------------------------------------------------------------
    def task_dir(self, task: str) -> Path:
        parts = [p for p in task.split("/") if p]
        if not parts or any(p in {".", ".."} for p in parts):
            raise ValueError(f"bad task name {task!r}")
        return self.dir.joinpath(*parts)

    def tasks(self) -> list[str]:
        """Tasks with a samples log or scores in this run, in manifest order when known."""
        order = list(self.read_manifest().get("tasks", {}))
        found = {str(p.parent.relative_to(self.dir)).replace(os.sep, "/")
                 for p in self.dir.rglob(SAMPLES)} | {
                 str(p.parent.relative_to(self.dir)).replace(os.sep, "/") for p in self.dir.rglob(SCORES)}
        return [t for t in order if t in found] + sorted(found - set(order))

    # -- plan.json --------------------------------------------------------------------------------
    def read_plan(self, task: str) -> PlanDoc | None:
        """The task's plan, or None when it has none (or the file is not a plan)."""
        try:
            doc = _read_doc(self.task_dir(task) / PLAN)
        except (OSError, ValueError):
            return None
        return PlanDoc.from_dict(doc, str(self.task_dir(task) / PLAN))

    def write_plan(self, plan: PlanDoc) -> None:
        atomic_write_json(self.task_dir(plan.task) / PLAN, plan.to_dict())

    # -- samples.jsonl, prompts.jsonl -------------------------------------------------------------
    def append(self, task: str, rows: Iterable[SampleRow | Mapping[str, Any]],
               prompts: Iterable[PromptRow | Mapping[str, Any]] = ()) -> None:
        """Append rows to the task's log (and full prompts to ``prompts.jsonl``) and make them durable
        before returning."""
        d = self.task_dir(task)
        for name, items in ((SAMPLES, rows), (PROMPTS, prompts)):
            append_jsonl(d / name, (_form(r) for r in items))

    def write_log(self, task: str, name: str, rows: Iterable[SampleRow | PromptRow | JudgeRow]) -> None:
        """Write one of the task's logs (``samples.jsonl``, ``prompts.jsonl``, ``judge.jsonl``) whole, each row
        in this version's form, durable before returning (``evalsuite merge``: the shards' rows, in order)."""
        path = self.task_dir(task) / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as dst:
                for row in rows:
                    dst.write(_json_bytes(_form(row)) + b"\n")
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:
            raise write_error(path, exc) from None

    def rows(self, task: str) -> Iterator[SampleRow]:
        """The task's log rows; lines that are not rows are skipped and counted (``skipped_lines``)."""
        return read_rows(self.task_dir(task) / SAMPLES, SampleRow.from_dict)

    def latest_rows(self, task: str) -> dict[str, SampleRow]:
        """The last row per request key (a retried error is superseded by its later answer)."""
        out: dict[str, SampleRow] = {}
        for row in self.rows(task):
            prev = out.get(row.key)
            # an answer never gets replaced by a later error row for the same key
            if prev is not None and prev.ok and not row.ok:
                continue
            out[row.key] = row
        return out

    def done_keys(self, task: str) -> set[str]:
        """Keys of requests that completed without error (never regenerated)."""
        return {k for k, r in self.latest_rows(task).items() if r.ok}

    def prompts(self, task: str) -> Iterator[PromptRow]:
        """The full prompts logged with ``--log-prompts``."""
        return read_rows(self.task_dir(task) / PROMPTS, PromptRow.from_dict)

    # -- judge.jsonl ------------------------------------------------------------------------------
    def judge_log(self, task: str) -> Path:
        """Where the task's judge answers are cached (``evalsuite.judge`` reads and appends through
        :func:`read_judge_rows` / :func:`append_judge_rows`)."""
        return self.task_dir(task) / JUDGE_LOG

    # -- scores.json, per_sample.jsonl ------------------------------------------------------------
    def write_scores(self, task: str, scores: TaskScores | Mapping[str, Any],
                     per_sample: Iterable[PerSampleRow | Mapping[str, Any]]) -> None:
        """Write ``per_sample.jsonl`` then ``scores.json`` (last: a task is scored when it exists)."""
        d = self.task_dir(task)
        _write_new(d / PER_SAMPLE, b"".join(_json_bytes(_form(r)) + b"\n" for r in per_sample))
        atomic_write_json(d / SCORES, _form(scores))

    def read_scores(self, task: str) -> TaskScores | None:
        path = self.task_dir(task) / SCORES
        return TaskScores.from_dict(_read_doc(path), str(path))

    def read_per_sample(self, task: str) -> list[PerSampleRow]:
        return list(read_rows(self.task_dir(task) / PER_SAMPLE, PerSampleRow.from_dict))


def _form(row: Any) -> dict[str, Any]:
    """A row or document as written: a typed row's ``to_dict()`` (with its ``schema_version``), or a plain
    mapping with the current ``schema_version`` added."""
    if isinstance(row, (SampleRow, PromptRow, JudgeRow, PlanDoc, PerSampleRow, TaskScores)):
        return row.to_dict()
    return {**{k: v for k, v in row.items() if k != "schema_version"}, "schema_version": SCHEMA_VERSION}
