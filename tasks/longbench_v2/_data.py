"""LongBench v2 rows: from a local file or folder, or from the hub dataset ``THUDM/LongBench-v2``.

The release is one JSON array, ``data.json`` (503 objects; the hub dataset's ``train`` split is built
from it). ``-T data_file=`` takes that file or a JSONL file with the same objects; ``-T data_dir=`` a
folder holding ``data.json`` (e.g. a snapshot of the hub repository) or exactly one ``.json``/``.jsonl``
file. Without either, ``data.json`` is fetched from the hub with ``huggingface_hub`` (the ``datasets``
library is not needed); offline that fails at once with the local options named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from evalsuite.data import DataSource, offline, read_jsonl, resolve
from evalsuite.errors import UserError

HUB_ID = "THUDM/LongBench-v2"
HUB_FILE = "data.json"
FIELDS = ("_id", "domain", "sub_domain", "difficulty", "length", "question",
          "choice_A", "choice_B", "choice_C", "choice_D", "answer", "context")
TEXT_FIELDS = ("question", "choice_A", "choice_B", "choice_C", "choice_D")


def locate(task: str, data_dir: str | None, data_file: str | None) -> tuple[DataSource, Path]:
    """The data source (for the manifest) and the file to read."""
    src = resolve(task, data_dir, data_file, HUB_ID, patterns=("*.json", "*.jsonl"))
    if src.kind == "file":
        assert src.path is not None
        return src, src.path
    if src.kind == "dir":
        assert src.path is not None
        return src, _pick_in_dir(task, src.path)
    return _download(task)


def _pick_in_dir(task: str, folder: Path) -> Path:
    if (folder / HUB_FILE).is_file():
        return folder / HUB_FILE
    files = sorted(f for pat in ("*.json", "*.jsonl") for f in folder.rglob(pat) if f.is_file())
    if len(files) == 1:
        return files[0]
    names = ", ".join(str(f.relative_to(folder)) for f in files[:5])
    raise UserError(f"{task}: data folder {str(folder)!r} has no {HUB_FILE} and {len(files)} JSON files "
                    f"({names}); pass the file itself with -T data_file=<file>")


def _download(task: str) -> tuple[DataSource, Path]:
    if offline():  # resolve() already checks this; kept so a direct call cannot hang on retries
        raise UserError(f"{task}: the hub is offline; pass -T data_file=<data.json> or -T data_dir=<folder>")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserError(f"{task}: huggingface_hub is not installed, so {HUB_ID} cannot be downloaded; pass "
                        "the release's data.json with -T data_file=<file> or -T data_dir=<folder>") from None
    try:
        path = Path(hf_hub_download(HUB_ID, HUB_FILE, repo_type="dataset"))
    except Exception as exc:  # network, auth, missing file: the user's fix is the same
        raise UserError(f"{task}: could not download {HUB_FILE} of {HUB_ID} ({type(exc).__name__}: {exc}); "
                        "pass a local copy with -T data_file=<file> or -T data_dir=<folder>") from None
    from evalsuite.data import hash_paths

    # snapshots/<commit>/data.json: the folder name is the dataset revision that was read
    src = DataSource("hub", path, f"{HUB_ID}@{path.parent.name}", hash_paths([path]))
    return src, path


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line or position, row)`` from a JSON array or a JSONL file."""
    for n, row, _ in read_rows_at(path):
        yield n, row


_CHUNK = 1 << 20


def read_rows_at(path: Path) -> Iterator[tuple[int, Any, tuple[int, int]]]:
    """``(line or position, row, (byte offset, byte length))``, one row at a time.

    A JSON array (the release's 700 MB ``data.json``) is decoded element by element from a sliding buffer,
    never whole, so only one row is in memory; the byte span lets ``load_row`` read that row again later."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if not head.startswith(b"["):
        with open(path, "rb") as f:
            n = 0
            while True:
                start = f.tell()
                line = f.readline()
                if not line:
                    return
                n += 1
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise UserError(f"{path}:{n}: not valid JSON ({exc})") from None
                yield n, row, (start, len(line))
        return
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        buf, base, pos, eof, n, want = b"", 0, 0, False, 0, _CHUNK  # base: file offset of buf[0]

        def more(size: int) -> bool:
            nonlocal buf, eof
            chunk = f.read(size)
            eof = not chunk
            buf += chunk
            return bool(chunk)

        more(_CHUNK)
        pos = buf.index(b"[") + 1
        while True:
            while True:  # skip whitespace and the separating comma
                while pos < len(buf) and buf[pos] in b" \t\r\n,":
                    pos += 1
                if pos < len(buf) or not more(_CHUNK):
                    break
            if pos >= len(buf):
                raise UserError(f"{path}: not valid JSON (the array is not closed)")
            if buf[pos:pos + 1] == b"]":
                return
            while True:
                text = buf[pos:].decode("utf-8", errors="strict") if eof else _decodable(buf[pos:])
                try:
                    row, end = decoder.raw_decode(text)
                    break
                except ValueError as exc:
                    if eof:
                        raise UserError(f"{path}: not valid JSON ({exc})") from None
                    more(want)  # the element is longer than what is buffered: read more, in doubling steps
                    want *= 2
            used = len(text[:end].encode("utf-8"))
            n += 1
            yield n, row, (base + pos, used)
            pos += used
            buf, base, pos, want = buf[pos:], base + pos, 0, _CHUNK


def _decodable(b: bytes) -> str:
    """``b`` decoded, leaving out a UTF-8 sequence cut at the end of the buffer."""
    for cut in range(4):
        try:
            return b[:len(b) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return b.decode("utf-8")  # raises: really not UTF-8


def load_row(path: Path, span: tuple[int, int]) -> Any:
    """The row at ``span`` (from ``read_rows_at``), read again from the file."""
    with open(path, "rb") as f:
        f.seek(span[0])
        return json.loads(f.read(span[1]).decode("utf-8"))


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
