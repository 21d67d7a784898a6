"""Where task data comes from: one convention for every task.

``-T data_dir=<folder laid out like the official release>`` or ``-T data_file=<one file in the official
format>`` take local files (:func:`resolve`); otherwise the task's declared default source is read
(:mod:`evalsuite.sources`: pinned, verified, cached), as it is for a ``-T data_dir`` written by
``evalsuite data fetch --to`` (:func:`local_data` tells the two apart). Offline a missing default fails at once
naming ``evalsuite data fetch`` and the local-file options instead of hanging on retries. Files are read
through :mod:`evalsuite.datafiles`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UserError


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALSUITE_OFFLINE"))


@dataclass(frozen=True)
class DataSource:
    """A resolved local data location and its content hash (recorded in the manifest)."""

    kind: str
    """``file``, ``dir`` or ``hub``."""
    path: Path | None
    hub_id: str | None
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path) if self.path else None, "hub_id": self.hub_id,
                "sha256": self.sha256}


def hash_paths(paths: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over (relative name, bytes) of each file, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths):
        name = str(p.relative_to(root)) if root else p.name
        h.update(name.encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def resolve(task: str, data_dir: str | None, data_file: str | None, hub_id: str | None,
            patterns: tuple[str, ...] = ("*",)) -> DataSource:
    """Resolve a task's data location; raise ``UserError`` with the local alternative when impossible."""
    if data_dir and data_file:
        raise UserError(f"{task}: give either -T data_dir= or -T data_file=, not both")
    if data_file:
        p = Path(data_file).expanduser()
        if not p.is_file():
            raise UserError(f"{task}: data file {data_file!r} does not exist or is not a file")
        try:
            return DataSource("file", p.resolve(), None, hash_paths([p]))
        except OSError as exc:
            raise UserError(f"{task}: cannot read data file {data_file!r}: {exc.strerror}") from None
    if data_dir:
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise UserError(f"{task}: data folder {data_dir!r} does not exist or is not a folder")
        files = sorted({f for pat in patterns for f in p.rglob(pat) if f.is_file()})
        if not files:
            raise UserError(f"{task}: data folder {data_dir!r} has no files matching {', '.join(patterns)}")
        return DataSource("dir", p.resolve(), None, hash_paths(files, p))
    if not hub_id:
        raise UserError(f"{task}: no data given; pass -T data_dir=<folder> or -T data_file=<file>")
    if offline():
        raise UserError(f"{task}: data is the hub id {hub_id!r} but the hub is offline: run `evalsuite data fetch "
                        f"{task}` on a connected machine, or pass a local copy with -T data_dir=<folder> or "
                        "-T data_file=<file>")
    return DataSource("hub", None, hub_id, "")


def local_data(data_dir: str | None, data_file: str | None) -> bool:
    """True when the user points at local files in the official layout (``-T data_file=``, or a
    ``-T data_dir=`` that is not a folder written by ``evalsuite data fetch --to``); False when the task's
    declared default source serves the data (the cache, a download, or such a fetched folder)."""
    from .sources import is_data_folder

    return bool(data_file) or (bool(data_dir) and not is_data_folder(data_dir))


def data_path(task: str, need: Any, data_dir: str | None, data_file: str | None, name: str) -> tuple[Path, dict]:
    """The file a task reads and what the manifest records about it: ``data_file``; the one file called
    ``name`` below a ``data_dir`` in the official layout; or the task's declared default source ``need``
    (an :class:`evalsuite.sources.Need`: the cache, a download, or a folder written by ``data fetch --to``)."""
    if not local_data(data_dir, data_file):
        from .sources import resolve_need

        got = resolve_need(task, need, data_dir)
        return got.path, {"kind": "source", **got.record}
    src = resolve(task, data_dir, data_file, None, patterns=(name,))
    assert src.path is not None
    path = src.path
    if src.kind == "dir":
        found = sorted(p for p in path.rglob(name) if p.is_file())
        if len(found) != 1:
            raise UserError(f"{task}: {path} holds {len(found)} files named {name}; pass -T data_file=")
        path = found[0]
    return path, {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}


def read_jsonl(path: Path, task: str | None = None) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file, through the shared loader's checks (``evalsuite.datafiles``)."""
    from .datafiles import read_records

    yield from read_records(path, task, "jsonl")
