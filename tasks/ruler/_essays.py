"""The Paul Graham essay haystack: the default hub source, or local files.

RULER's ``download_paulgraham_essay.py`` concatenates the essay ``.txt`` files (sorted by file name, no
separator) into ``PaulGrahamEssays.json`` = ``{"text": ...}``. Sources, in order of precedence:

* ``-T data_file=PaulGrahamEssays.json`` (that JSON) or a single ``.txt`` file;
* ``-T data_dir=<folder>``: RULER's ``json/`` folder (its ``PaulGrahamEssays.json`` is used), otherwise every
  ``*.txt`` below it, concatenated in sorted relative-path order (for a flat folder this is RULER's order;
  the 49 GitHub essays give an exact prefix of the JSON);
* ``-T essay_dataset=<HF dataset id>``: the ``text`` column of its train split (unpinned; your choice);
* default: :data:`SOURCE`, the parquet file lm-evaluation-harness's RULER port reads
  (``baber/paul_graham_essays``, train split, ``text`` column) at a pinned commit, its rows concatenated in
  row order without separator as RULER joins its files. The text's sha256 is compared with that of upstream
  RULER's ``PaulGrahamEssays.json`` (:data:`RULER_JSON_TEXT_SHA256`) and the outcome recorded in the
  manifest (``haystack_data.equals_ruler_json``); see tasks/ruler/SOURCE.md for what was verified.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from evalsuite.data import DataSource, local_data, resolve
from evalsuite.datafiles import check_fields, read_json, read_records, read_text
from evalsuite.errors import UserError
from evalsuite.sources import HF, Need, RemoteFile, Source, resolve_need

SOURCE = Source(
    id="ruler-essays", host=HF, repo="baber/paul_graham_essays",
    revision="792d672b77d1a67720f7e9820d646358fc18792e",
    files=(RemoteFile("essays.parquet",
                      sha256="825448033be010042ffd6fc77c32bbcab61f2ef63196f0fc4bfbf5b388a1660e"),),
    license="essay text (c) Paul Graham; the dataset declares no license",
    page="https://huggingface.co/datasets/baber/paul_graham_essays",
    note="the essay source of lm-evaluation-harness's RULER port (prepare_niah.get_haystack); revision and "
         "sha256 as pinned by a third-party manifest (tasks/ruler/SOURCE.md); not downloaded here")
NEED = Need(SOURCE, "essays.parquet", role="essay haystack")

RULER_JSON_TEXT_SHA256 = "dcd06b190977b2a7916bb3f3ab33ef7f901543547aa60940524d33fc79d199be"
"""sha256 (UTF-8) of the ``text`` of RULER's PaulGrahamEssays.json (shared/data/ruler/essays: 3,048,867
characters, the 49 GitHub essays then the 168 paulgraham.com essays)."""


@dataclass(frozen=True)
class Essays:
    text: str
    source: DataSource
    record: dict | None = None
    """Manifest record of the default source (None for local files)."""

    def describe(self) -> dict:
        d = self.source.describe()
        if self.record is not None:
            d.update(self.record)
        return d


def load_essays(task: str, data_dir: str | None, data_file: str | None, hub_id: str | None = None) -> Essays:
    if hub_id and not data_dir and not data_file:
        return _hub_essays(task, hub_id)
    if not local_data(data_dir, data_file):
        return _default_essays(task, data_dir)
    if data_dir and not data_file and (Path(data_dir).expanduser() / "PaulGrahamEssays.json").is_file():
        data_dir, data_file = None, str(Path(data_dir).expanduser() / "PaulGrahamEssays.json")  # RULER's json/
    src = resolve(task, data_dir, data_file, hub_id=None, patterns=("*.txt",))
    assert src.path is not None
    if src.kind == "file":
        if src.path.suffix.lower() == ".json":
            obj = read_json(src.path, task)
            if not isinstance(obj, dict) or "text" not in obj:
                raise UserError(f"{task}: {src.path} is not RULER's essay JSON ({{\"text\": ...}})")
            text = obj["text"]
            if not isinstance(text, str):
                raise UserError(f"{task}: {src.path}: \"text\" must be a string")
        else:
            text = read_text(src.path, task)  # universal newlines, as RULER's open(file, 'r').read()
    else:
        files = sorted((p for p in src.path.rglob("*.txt") if p.is_file()),
                       key=lambda p: p.relative_to(src.path).as_posix())
        text = "".join(read_text(p, task) for p in files)
    if not text.strip():
        raise UserError(f"{task}: no samples in {src.path}: the essay text is empty")
    return Essays(text=text, source=src)


def _default_essays(task: str, data_dir: str | None) -> Essays:
    got = resolve_need(task, NEED, data_dir)
    rows = read_records(got.path, task, "parquet")
    check_fields(rows, {"text": str}, f"{task}: {got.path}")
    text = "".join(r["text"] for r in rows)
    if not text.strip():
        raise UserError(f"{task}: no samples in {got.path}: the essay text is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    record = {**got.record, "rows": len(rows), "text_sha256": digest,
              "equals_ruler_json": digest == RULER_JSON_TEXT_SHA256}
    return Essays(text=text, source=DataSource("source", got.path, SOURCE.repo, digest), record=record)


def _hub_essays(task: str, hub_id: str) -> Essays:
    """An HF dataset whose ``text`` column holds one essay per row (train split), concatenated in row order
    without separator, as RULER joins its essay files. Unpinned: the user chose it."""
    src = resolve(task, None, None, hub_id=hub_id)  # offline: fails at once, naming the local options
    try:
        import datasets

        rows = datasets.load_dataset(hub_id, split="train")
    except Exception as exc:  # network, missing dataset, no train split
        raise UserError(f"{task}: could not load -T essay_dataset={hub_id} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if "text" not in rows.column_names:
        raise UserError(f"{task}: dataset {hub_id!r} has no 'text' column (columns: {rows.column_names})")
    text = "".join(str(t) for t in rows["text"])
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Essays(text=text, source=DataSource("hub", None, src.hub_id, digest))
