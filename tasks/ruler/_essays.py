"""The Paul Graham essay haystack, read from local files.

RULER's ``download_paulgraham_essay.py`` concatenates the essay ``.txt`` files (sorted by file name,
no separator) into ``PaulGrahamEssays.json`` = ``{"text": ...}``. Either form is accepted:

* ``-T data_file=PaulGrahamEssays.json`` (that JSON) or a single ``.txt`` file;
* ``-T data_dir=<folder>``: RULER's ``json/`` folder (its ``PaulGrahamEssays.json`` is used), otherwise every
  ``*.txt`` below it, concatenated in sorted relative-path order
  (for a flat folder this is RULER's order; the 49 GitHub essays give an exact prefix of the JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evalsuite.data import DataSource, resolve
from evalsuite.errors import UserError


@dataclass(frozen=True)
class Essays:
    text: str
    source: DataSource


def load_essays(task: str, data_dir: str | None, data_file: str | None, hub_id: str | None = None) -> Essays:
    if not data_dir and not data_file and not hub_id:
        raise UserError(f"{task}: the essay haystack needs Paul Graham essays: pass "
                        "-T data_file=<PaulGrahamEssays.json>, -T data_dir=<folder of .txt essays> or "
                        "-T essay_dataset=<HF dataset id with a text column>")
    if hub_id and not data_dir and not data_file:
        return _hub_essays(task, hub_id)
    if data_dir and not data_file and (Path(data_dir).expanduser() / "PaulGrahamEssays.json").is_file():
        data_dir, data_file = None, str(Path(data_dir).expanduser() / "PaulGrahamEssays.json")  # RULER's json/
    src = resolve(task, data_dir, data_file, hub_id=None, patterns=("*.txt",))
    assert src.path is not None
    if src.kind == "file":
        raw = _read(task, src.path)
        if src.path.suffix.lower() == ".json":
            try:
                obj = json.loads(raw)
                text = obj["text"]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{task}: {src.path} is not RULER's essay JSON ({{\"text\": ...}})") from None
            if not isinstance(text, str):
                raise UserError(f"{task}: {src.path}: \"text\" must be a string")
        else:
            text = raw
    else:
        files = sorted((p for p in src.path.rglob("*.txt") if p.is_file()),
                       key=lambda p: p.relative_to(src.path).as_posix())
        text = "".join(_read(task, p) for p in files)
    if not text.strip():
        raise UserError(f"{task}: the essay data in {src.path} is empty")
    return Essays(text=text, source=src)


def _read(task: str, path: Path) -> str:
    try:
        # newline=None (universal newlines), as RULER's open(file, 'r').read() does.
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{task}: cannot read {path}: {exc}") from None


def _hub_essays(task: str, hub_id: str) -> Essays:
    """An HF dataset whose ``text`` column holds one essay per row (train split), concatenated in row order
    without separator, as RULER joins its essay files."""
    src = resolve(task, None, None, hub_id=hub_id)  # offline: fails at once, naming the local options
    try:
        import datasets
    except ImportError:
        raise UserError(f"{task}: -T essay_dataset needs `pip install datasets`; or pass local essays with "
                        "-T data_file= / -T data_dir=") from None
    rows = datasets.load_dataset(hub_id, split="train")
    if "text" not in rows.column_names:
        raise UserError(f"{task}: dataset {hub_id!r} has no 'text' column (columns: {rows.column_names})")
    text = "".join(str(t) for t in rows["text"])
    import hashlib

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Essays(text=text, source=DataSource("hub", None, src.hub_id, digest))
