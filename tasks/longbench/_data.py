"""Reading LongBench rows: the official release's JSONL files, one file, or the hub.

* ``-T data_dir=``: a folder holding ``<config>.jsonl`` (``qasper.jsonl``, ``qasper_e.jsonl``), at its top
  or under ``data/`` as in the official ``data.zip``; any other depth works when the name is unique.
* ``-T data_file=``: one JSONL file (or ``.parquet`` when pyarrow is installed).
* neither: ``datasets.load_dataset("THUDM/LongBench", <config>, split="test")``, imported only then.
  Offline, :func:`evalsuite.data.resolve` fails at once naming ``data_dir``.

Rows keep the official fields (``input, context, answers, length, dataset, language, all_classes,
_id``); order is file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.data import DataSource, hash_paths, read_jsonl, resolve
from evalsuite.errors import UserError

from ._config import HUB_ID

REQUIRED = ("context", "answers")


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


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading parquet needs pyarrow (pip install pyarrow), or pass the "
                        "official JSONL file") from None
    return pq.read_table(path).to_pylist()


def _read_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return list(read_jsonl(path))


def _from_hub(task: str, config_name: str) -> list[dict[str, Any]]:
    try:
        import datasets  # not a dependency: only the hub route needs it
    except ImportError:
        raise UserError(f"{task}: reading {HUB_ID!r} from the hub needs `pip install datasets`; or pass the "
                        "official files (data.zip from the hub, unzipped) with -T data_dir=<folder>") from None
    try:
        ds = datasets.load_dataset(HUB_ID, config_name, split="test")
    except Exception as exc:  # script datasets, auth, network: all end the same way for the user
        raise UserError(f"{task}: could not load {HUB_ID!r} config {config_name!r} from the hub "
                        f"({type(exc).__name__}: {exc}); download data.zip from the dataset page, unzip it "
                        "and pass -T data_dir=<folder>") from None
    return [dict(r) for r in ds]


def load_rows(task: str, config_name: str, dataset: str, data_dir: str | None,
              data_file: str | None) -> Loaded:
    """The rows of one LongBench config (``qasper`` or ``qasper_e``) and where they came from."""
    name = f"{config_name}.jsonl"
    src: DataSource = resolve(task, data_dir, data_file, HUB_ID, patterns=(name,))
    if src.kind == "hub":
        rows = _from_hub(task, config_name)
        source = {"kind": "hub", "hub_id": HUB_ID, "config": config_name, "split": "test"}
    else:
        assert src.path is not None
        path = _pick(src.path, name) if src.kind == "dir" else src.path
        rows = _read_file(path)
        source = {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}
    for n, row in enumerate(rows, 1):
        where = f"{source.get('path', HUB_ID)} row {n}"
        if not isinstance(row, dict) or any(k not in row for k in REQUIRED):
            raise UserError(f"{task}: {where}: a LongBench row needs {', '.join(REQUIRED)}")
        if not isinstance(row["answers"], list):
            raise UserError(f"{task}: {where}: 'answers' must be a list of strings")
        ds = row.get("dataset")
        if ds not in (None, dataset, f"{dataset}_e"):
            raise UserError(f"{task}: {where} belongs to dataset {ds!r}, not {dataset!r} "
                            f"(give each task its own file: -T {task}.data_file=...)")
    return Loaded(rows=rows, source=source)
