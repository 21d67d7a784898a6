"""LongBench v2 rows: the hub release by default, or a local file or folder.

The release is one JSON array, ``data.json`` (503 objects; the hub dataset's ``train`` split is built from
it). Default: ``data.json`` of ``zai-org/LongBench-v2`` (formerly ``THUDM/LongBench-v2``) at a pinned commit
with its pinned sha256 (:data:`SOURCE`), fetched once with ``huggingface_hub`` into the evalsuite data cache.
``-T data_file=`` takes that file or a JSONL file with the same objects; ``-T data_dir=`` a folder holding
``data.json`` (e.g. a snapshot of the hub repository) or exactly one ``.json``/``.jsonl`` file, or a folder
written by ``evalsuite data fetch --to``. Offline without a copy, it fails at once naming both routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from evalsuite.data import local_data, resolve
from evalsuite.datafiles import read_records
from evalsuite.errors import UserError
from evalsuite.sources import HF, Need, RemoteFile, Source, resolve_need

HUB_ID = "zai-org/LongBench-v2"
HUB_FILE = "data.json"
SOURCE = Source(
    id="longbench_v2", host=HF, repo=HUB_ID, revision="2b48e494f2c7a2f0af81aae178e05c7e1dde0fe9",
    files=(RemoteFile(HUB_FILE, sha256="15d61c22d92c96900b3c4948b6aeea218d3214b676a65df48e7b8555604c7fe2"),),
    license="Apache-2.0 (dataset card)", page="https://huggingface.co/datasets/zai-org/LongBench-v2",
    note="revision and sha256 as recorded by a third-party pinned manifest (tasks/longbench_v2/SOURCE.md)")
NEED = Need(SOURCE, HUB_FILE)
FIELDS = ("_id", "domain", "sub_domain", "difficulty", "length", "question",
          "choice_A", "choice_B", "choice_C", "choice_D", "answer", "context")
TEXT_FIELDS = ("question", "choice_A", "choice_B", "choice_C", "choice_D")


def locate(task: str, data_dir: str | None, data_file: str | None) -> tuple[Any, Path]:
    """What the manifest records about the data, and the file to read."""
    if not local_data(data_dir, data_file):
        got = resolve_need(task, NEED, data_dir)
        return {"kind": "source", **got.record}, got.path
    src = resolve(task, data_dir, data_file, HUB_ID, patterns=("*.json", "*.jsonl"))
    assert src.path is not None
    if src.kind == "file":
        return src, src.path
    return src, _pick_in_dir(task, src.path)


def _pick_in_dir(task: str, folder: Path) -> Path:
    if (folder / HUB_FILE).is_file():
        return folder / HUB_FILE
    files = sorted(f for pat in ("*.json", "*.jsonl") for f in folder.rglob(pat) if f.is_file())
    if len(files) == 1:
        return files[0]
    names = ", ".join(str(f.relative_to(folder)) for f in files[:5])
    raise UserError(f"{task}: data folder {str(folder)!r} has no {HUB_FILE} and {len(files)} JSON files "
                    f"({names}); pass the file itself with -T data_file=<file>")


def read_rows(path: Path, task: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line or position, row)`` from a JSON array (``.json``) or a JSONL file (anything else)."""
    fmt = "json" if path.suffix.lower() == ".json" else "jsonl"
    yield from enumerate(read_records(path, task, fmt), 1)


def check_row(task: str, where: str, row: Any, need_context: bool) -> Mapping[str, Any]:
    """Validate one row of the official schema; raise a ``UserError`` naming the row."""
    if not isinstance(row, dict):
        raise UserError(f"{task}: {where}: expected a JSON object, got {type(row).__name__}")
    needed = [f for f in FIELDS if f != "context" or need_context]
    missing = [f for f in needed if f not in row]
    if missing:
        raise UserError(f"{task}: {where}: missing field(s) {missing} (LongBench v2 rows have {list(FIELDS)})")
    rid = row["_id"]
    for f in TEXT_FIELDS + (("context",) if need_context else ()):
        if not isinstance(row[f], str):
            raise UserError(f"{task}: {where} (_id {rid}): field {f!r} must be a string")
    if row["answer"] not in ("A", "B", "C", "D"):
        raise UserError(f"{task}: {where} (_id {rid}): answer must be one of A, B, C, D, got {row['answer']!r}")
    return row
