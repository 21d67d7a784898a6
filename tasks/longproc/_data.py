"""Reading LongProc items: the official release files, one file, or the hub mirror.

* ``-T data_dir=``: the official ``data/`` folder (or its parent, or the task's own folder), holding
  ``<task>/<task>_<level>.json`` (travel planning: ``travel_planning/travel_planning_all.json``, split by
  ``estimated_output_tokens`` as the official loader does); html_to_tsv pages are read from
  ``html_path`` relative to the JSON file's folder.
* ``-T data_file=``: that one JSON file (same rules).
* neither: ``datasets.load_dataset("PrincetonPli/LongProc", "<task>_<level>")``, each row's ``metadata``
  JSON string parsed into the item (imported only then; offline it fails at once naming ``data_dir``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.data import DataSource, hash_paths, resolve
from evalsuite.errors import UserError

HUB_ID = "PrincetonPli/LongProc"
TRAVEL_RANGES = {"2k": (0, 2048), "8k": (4096, 8192)}
"""travel_planning levels: items whose ``estimated_output_tokens`` fall in [lo, hi)."""


@dataclass(frozen=True)
class Loaded:
    rows: list[dict[str, Any]]
    base: Path | None
    """Folder that relative ``html_path`` values are resolved against (None for hub rows)."""
    source: dict[str, Any]


def file_name(task: str, level: str) -> str:
    return "travel_planning_all.json" if task == "travel_planning" else f"{task}_{level}.json"


def _pick(root: Path, task: str, name: str) -> Path:
    for cand in (root / name, root / task / name, root / "data" / task / name):
        if cand.is_file():
            return cand
    found = sorted(p for p in root.rglob(name) if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"longproc/{task}: no {name} under {str(root)!r} (expected <data_dir>/{task}/{name} as in "
                        f"the official data/ folder)")
    raise UserError(f"data folder {str(root)!r} holds {len(found)} files named {name}; pass one with -T data_file=")


def _read_json(path: Path, task: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"longproc/{task}: cannot read {path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"longproc/{task}: {path} is not a JSON list of objects (the official format)")
    return data


def _from_hub(name: str, config: str) -> list[dict[str, Any]]:
    try:
        import datasets  # not a dependency: only the hub route needs it
    except ImportError:
        raise UserError(f"{name}: reading {HUB_ID!r} needs `pip install datasets`; or pass the official data/ "
                        "folder with -T data_dir=<folder>") from None
    try:
        ds = datasets.load_dataset(HUB_ID, config)
    except Exception as exc:
        raise UserError(f"{name}: could not load {HUB_ID!r} config {config!r} ({type(exc).__name__}: {exc}); "
                        "pass the official data/ folder with -T data_dir=<folder>") from None
    split = next(iter(ds.values())) if hasattr(ds, "values") else ds
    rows = []
    for r in split:
        meta = r.get("metadata")
        item = json.loads(meta) if isinstance(meta, str) else dict(r)
        rows.append(item)
    return rows


def load_rows(name: str, task: str, level: str, data_dir: str | None, data_file: str | None) -> Loaded:
    fname = file_name(task, level)
    src: DataSource = resolve(name, data_dir, data_file, HUB_ID, patterns=(fname,))
    if src.kind == "hub":
        rows = _from_hub(name, f"{task}_{level}")
        return Loaded(rows, None, {"kind": "hub", "hub_id": HUB_ID, "config": f"{task}_{level}"})
    assert src.path is not None
    path = _pick(src.path, task, fname) if src.kind == "dir" else src.path
    rows = _read_json(path, task)
    if task == "travel_planning":
        lo, hi = TRAVEL_RANGES[level]
        rows = [r for r in rows if lo <= int(r["estimated_output_tokens"]) < hi]
    source = {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}
    return Loaded(rows, path.parent, source)
