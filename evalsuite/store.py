"""The results store: ``results/<run-id>/``.

Layout::

    manifest.json                  what moves a number: versions, backend, params, data hashes, timings
    <task>/samples.jsonl           append-only log, one row per completed request, written per batch
    <task>/prompts.jsonl           full prompts, only with --log-prompts
    <task>/per_sample.jsonl        per-sample predictions, flags and metric values (written by scoring)
    <task>/scores.json             corpus scores, written last: a task is complete when it exists

Task names map to folders (``ruler/niah_single_1`` -> ``ruler/niah_single_1/``). Prompts are stored by
hash and length, never inline (long-context inputs are hundreds of KB each). Rows are appended with a
flush + fsync per batch; a row torn by a crash is dropped when the log is next opened.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .errors import UserError

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
PROMPTS = "prompts.jsonl"
PER_SAMPLE = "per_sample.jsonl"
SCORES = "scores.json"

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def atomic_write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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


def read_jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL log; an unparseable (torn) line is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn tail
            try:
                yield json.loads(line)
            except ValueError:
                continue


class ResultsStore:
    """One run folder."""

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
        try:
            return json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        atomic_write_json(self.dir / MANIFEST, dict(manifest))

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

    def append(self, task: str, rows: Iterable[Mapping[str, Any]], prompts: Iterable[Mapping[str, Any]] = ()) -> None:
        """Append rows to the task's log and make them durable before returning."""
        d = self.task_dir(task)
        d.mkdir(parents=True, exist_ok=True)
        for name, items in ((SAMPLES, rows), (PROMPTS, prompts)):
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items)
            if not data:
                continue
            path = d / name
            _repair_tail(path)
            with open(path, "a", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

    def rows(self, task: str) -> Iterator[dict[str, Any]]:
        return read_jsonl_rows(self.task_dir(task) / SAMPLES)

    def latest_rows(self, task: str) -> dict[str, dict[str, Any]]:
        """The last row per request key (a retried error is superseded by its later answer)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.rows(task):
            prev = out.get(row["key"])
            # an answer never gets replaced by a later error row for the same key
            if prev is not None and prev["generation"]["finish_reason"] != "error" \
                    and row["generation"]["finish_reason"] == "error":
                continue
            out[row["key"]] = row
        return out

    def done_keys(self, task: str) -> set[str]:
        """Keys of requests that completed without error (never regenerated)."""
        return {k for k, r in self.latest_rows(task).items() if r["generation"]["finish_reason"] != "error"}

    def write_scores(self, task: str, scores: Mapping[str, Any], per_sample: Iterable[Mapping[str, Any]]) -> None:
        d = self.task_dir(task)
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(d, f".{PER_SAMPLE}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in per_sample:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, d / PER_SAMPLE)
        atomic_write_json(d / SCORES, dict(scores))

    def read_scores(self, task: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.task_dir(task) / SCORES).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def read_per_sample(self, task: str) -> list[dict[str, Any]]:
        return list(read_jsonl_rows(self.task_dir(task) / PER_SAMPLE))
