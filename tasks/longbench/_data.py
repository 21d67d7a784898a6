"""Reading LongBench rows: the official ``data.zip`` from the hub (default), a local folder, or one file.

* default: ``data.zip`` of the Hugging Face dataset ``THUDM/LongBench`` at a pinned commit, fetched with
  ``huggingface_hub`` (no loading script), verified, unpacked into the evalsuite data cache once; each task
  reads ``data/<config>.jsonl`` from it (see :data:`SOURCE`, ``evalsuite data status longbench``).
* ``-T data_dir=``: a folder holding ``<config>.jsonl`` (``qasper.jsonl``, ``qasper_e.jsonl``), at its top
  or under ``data/`` as in the official ``data.zip``; any other depth works when the name is unique. A folder
  written by ``evalsuite data fetch --to`` is read as the cache.
* ``-T data_file=``: one JSONL file (or ``.parquet``).

Rows keep the official fields (``input, context, answers, length, dataset, language, all_classes,
_id``); order is file order. Every file goes through :mod:`evalsuite.datafiles` (one line, exit 2 on a bad
file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.data import DataSource, hash_paths, local_data, resolve
from evalsuite.datafiles import check_fields, read_records
from evalsuite.errors import UserError
from evalsuite.sources import HF, Need, RemoteFile, Source, resolve_need

from ._config import HUB_ID

SOURCE = Source(
    id="longbench", host=HF, repo=HUB_ID, revision="5e628be450b7e67fb7ae6e201bd6d8f7056f7672",
    files=(RemoteFile("data.zip", sha256="cb45b11a4133c6bc1d6a44b0f8e701335ff1e543195db1103472e575857f7f64"),),
    license="MIT (THUDM/LongBench repository); the texts keep their original sources' terms",
    page="https://huggingface.co/datasets/THUDM/LongBench",
    note="revision and data.zip sha256 as recorded by a third-party pinned manifest (see tasks/longbench/SOURCE.md); "
         "the repository is now zai-org/LongBench and the Hub redirects the old name")

FIELDS = {"context": str, "answers": list}


def need(config_name: str) -> Need:
    """The member of data.zip one LongBench config reads (``data/qasper.jsonl``, ``data/qasper_e.jsonl``)."""
    return Need(SOURCE, "data.zip", member=f"data/{config_name}.jsonl")


@dataclass(frozen=True)
class Loaded:
    rows: list[dict[str, Any]]
    source: dict[str, Any]
    """What the manifest records: kind, path or hub id + config, sha256 of the file."""


def _pick(root: Path, name: str) -> Path:
    for cand in (root / name, root / "data" / name):
        if cand.is_file():
            return cand
    found = sorted(p for p in root.rglob(name) if p.is_file())
    if len(found) == 1:
        return found[0]
    raise UserError(f"data folder {str(root)!r} holds {len(found)} files named {name}: "
                    + ", ".join(str(p.relative_to(root)) for p in found) + "; pass one with -T data_file=")


def load_rows(task: str, config_name: str, dataset: str, data_dir: str | None,
              data_file: str | None) -> Loaded:
    """The rows of one LongBench config (``qasper`` or ``qasper_e``) and where they came from."""
    name = f"{config_name}.jsonl"
    if local_data(data_dir, data_file):
        src: DataSource = resolve(task, data_dir, data_file, HUB_ID, patterns=(name,))
        assert src.path is not None
        path = _pick(src.path, name) if src.kind == "dir" else src.path
        source = {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}
    else:
        got = resolve_need(task, need(config_name), data_dir)
        path, source = got.path, {"kind": "source", **got.record}
    rows = read_records(path, task, "parquet" if path.suffix == ".parquet" else "jsonl")
    where = f"{task}: {path}"
    check_fields(rows, FIELDS, where)
    for n, row in enumerate(rows, 1):
        if not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in row["answers"]):
            raise UserError(f"{where} row {n}: 'answers' must be a list of strings")
        ds = row.get("dataset")
        if ds not in (None, dataset, f"{dataset}_e"):
            raise UserError(f"{where} row {n} belongs to dataset {ds!r}, not {dataset!r} "
                            f"(give each task its own file: -T {task}.data_file=...)")
    return Loaded(rows=rows, source=source)
