"""LongBench v2 rows: the hub release by default, or a local file or folder.

The release is one JSON array, ``data.json`` (503 objects; the hub dataset's ``train`` split is built from
it). Default: ``data.json`` of ``zai-org/LongBench-v2`` (formerly ``THUDM/LongBench-v2``) at a pinned commit
with its pinned sha256 (:data:`SOURCE`), fetched once with ``huggingface_hub`` into the evalsuite data cache.
``-T data_file=`` takes that file or a JSONL file with the same objects; ``-T data_dir=`` a folder holding
``data.json`` (e.g. a snapshot of the hub repository) or exactly one ``.json``/``.jsonl`` file, or a folder
written by ``evalsuite data fetch --to``. Offline without a copy, it fails at once naming both routes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from evalsuite.data import local_data, resolve
from evalsuite.datafiles import decode
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


_CHUNK = 1 << 20


def read_rows_at(path: Path, task: str | None = None) -> Iterator[tuple[int, dict[str, Any], tuple[int, int]]]:
    """``(line or position, row, (byte offset, byte length))``, one row at a time.

    A JSON array (the release's 700 MB ``data.json``) is decoded element by element from a sliding buffer,
    never whole, so only one row is in memory; the byte span lets ``load_row`` read that row again later.
    The checks are the shared loader's (``evalsuite.datafiles``): UTF-8 only, objects only, no absurd
    nesting, not empty; each failure is one line naming the file."""
    where = f"{task}: {path}" if task else str(path)
    n_rows = 0
    for n, row, span in _rows_at(path, where):
        if not isinstance(row, dict):
            raise UserError(f"{where}:{n}: expected a JSON object (one record), got {type(row).__name__}")
        n_rows += 1
        yield n, row, span
    if not n_rows:
        raise UserError(f"{where}: no samples in {path}")


def _rows_at(path: Path, where: str) -> Iterator[tuple[int, Any, tuple[int, int]]]:
    try:
        yield from _raw_rows_at(path)
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not valid UTF-8 ({exc.reason}); task data must be UTF-8") from None
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply; not task data") from None
    except OSError as exc:
        raise UserError(f"{where}: cannot read ({exc.strerror or exc})") from None


def _raw_rows_at(path: Path) -> Iterator[tuple[int, Any, tuple[int, int]]]:
    with open(path, "rb") as f:
        raw_head = f.read(4096)
    # UTF-16 / NUL bytes / a legacy encoding at the start: the shared loader's message (a sequence cut at
    # the end of the 4 KB head is not an error; a bad byte later fails while decoding the row)
    if raw_head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw_head:
        decode(raw_head, path)  # raises: UTF-16 / UTF-32 / binary
    _decodable(raw_head)
    head = raw_head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"["):
        with open(path, "rb") as f:
            n = 0
            while True:
                start = f.tell()
                line = f.readline()
                if not line:
                    return
                n += 1
                if n == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM, as the shared loader allows
                    start, line = start + 3, line[3:]
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
