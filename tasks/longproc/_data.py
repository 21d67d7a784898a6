"""Reading LongProc items: the official release files from GitHub (default), a local folder, or one file.

* default: the official ``data/`` folder of ``princeton-pli/LongProc`` at a pinned commit (:data:`SOURCE`;
  every file pinned by its git blob id, and by sha256 where shared/data/longproc holds the same blob),
  downloaded file by file into the evalsuite data cache; html_to_tsv also fetches the pages of its level.
* ``-T data_dir=``: the official ``data/`` folder (or its parent, or the task's own folder), holding
  ``<task>/<task>_<level>.json`` (travel planning: ``travel_planning/travel_planning_all.json``, split by
  ``estimated_output_tokens`` as the official loader does), or a folder written by ``evalsuite data fetch``.
* ``-T data_file=``: that one JSON file (same rules).

html_to_tsv pages are read from ``html_path`` relative to the JSON file's folder, and only from inside it:
a path that is absolute or leaves the folder (``..``, a symlink out) is an error, and nothing is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalsuite.data import DataSource, hash_paths, local_data, resolve
from evalsuite.datafiles import read_records
from evalsuite.errors import UserError
from evalsuite.sources import GITHUB, Need, RemoteFile, Source, resolve_need

HUB_ID = "PrincetonPli/LongProc"
"""The Hugging Face copy (parquet configs ``<task>_<level>``); not the default: its revisions and files could not
be pinned here, and the GitHub release is the one the official loader reads."""
TRAVEL_RANGES = {"2k": (0, 2048), "8k": (4096, 8192)}
"""travel_planning levels: items whose ``estimated_output_tokens`` fall in [lo, hi)."""
FILES_JSON = Path(__file__).resolve().parent / "data_files.json"


@lru_cache(maxsize=1)
def source() -> Source:
    doc = json.loads(FILES_JSON.read_text(encoding="utf-8"))
    files = tuple(RemoteFile(f["path"], f.get("sha256"), f.get("git_blob"), f.get("size")) for f in doc["files"])
    return Source(id="longproc", host=GITHUB, repo=doc["repo"], revision=doc["revision"], files=files,
                  license="Apache-2.0 (repository); cite the underlying sources (SPoC, NATURAL PLAN, "
                          "Stream-of-Search countdown, Arborist pages)",
                  page="https://github.com/princeton-pli/LongProc",
                  note="file list and git blob ids from the repository at the pinned commit; sha256 from "
                       "shared/data/longproc where the blob id matched (tasks/longproc/data_files.json)")


@dataclass(frozen=True)
class Loaded:
    rows: list[dict[str, Any]]
    base: Path | None
    """Folder that relative ``html_path`` values are resolved against (and never leave)."""
    source: dict[str, Any]
    path: Path | None = None
    """The JSON file the rows come from (named in errors)."""


def file_name(task: str, level: str) -> str:
    return "travel_planning_all.json" if task == "travel_planning" else f"{task}_{level}.json"


def needs(task: str, level: str) -> list[Need]:
    src = source()
    out = [Need(src, f"data/{task}/{file_name(task, level)}")]
    if task == "html_to_tsv":
        out += [Need(src, f.path, role="page") for f in src.files
                if f.path.startswith("data/html_to_tsv/webpage/") and f"_{level}_" in f.path.rsplit("/", 1)[-1]]
    return out


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


def load_rows(name: str, task: str, level: str, data_dir: str | None, data_file: str | None) -> Loaded:
    fname = file_name(task, level)
    if local_data(data_dir, data_file):
        src: DataSource = resolve(name, data_dir, data_file, HUB_ID, patterns=(fname,))
        assert src.path is not None
        path = _pick(src.path, task, fname) if src.kind == "dir" else src.path
        source_rec: dict[str, Any] = {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}
    else:
        got = [resolve_need(name, n, data_dir) for n in needs(task, level)]
        path = got[0].path
        source_rec = {"kind": "source", **got[0].record}
        if len(got) > 1:
            source_rec["pages"] = {"count": len(got) - 1,
                                   "sha256": hash_paths([g.path for g in got[1:]], path.parent)}
    rows = read_records(path, name, "json")
    if task == "travel_planning":
        try:
            lo, hi = TRAVEL_RANGES[level]
            rows = [r for r in rows if lo <= int(r["estimated_output_tokens"]) < hi]
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{name}: {path}: every travel_planning item needs an integer "
                            f"estimated_output_tokens ({type(exc).__name__}: {exc})") from None
        if not rows:
            raise UserError(f"{name}: no samples in {path} for level {level}")
    return Loaded(rows, path.parent, source_rec, path)
