"""Reading task data files: one loader for JSON, JSONL, CSV and parquet, with the same checks for every task.

Task data is untrusted input. Whatever is wrong with a file (UTF-16 or latin-1 bytes, a JSON array where JSON
lines are expected, JSON nested thousands deep, a line that is not an object, a row without the fields the task
needs, an empty file) becomes one :class:`~evalsuite.errors.UserError` line naming the file (and line or row),
which the CLI prints before exiting with status 2. Never a traceback.

* :func:`read_records` reads a file of records (objects) in any of the four formats;
* :func:`read_json` reads one JSON document; :func:`read_text` one UTF-8 text;
* :func:`check_fields` validates the fields a task needs, row by row;
* :func:`inside` resolves a path found inside task data (LongProc's ``html_path``) strictly below the data
  folder: ``..``, absolute paths and symlinks that leave the folder are refused, never read;
* :func:`data_errors` turns an exception raised while a task walks its rows (a field of the wrong type deep
  inside a row) into the same one-line error.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .errors import UserError

FORMATS = ("json", "jsonl", "csv", "parquet")
MAX_DEPTH = 200
"""Deepest JSON nesting accepted (benchmark rows nest a handful of levels)."""


def _where(task: str | None, path: Path | str) -> str:
    return f"{task}: {path}" if task else str(path)


def read_bytes(path: Path | str, task: str | None = None) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except IsADirectoryError:
        raise UserError(f"{_where(task, p)}: is a folder, not a data file") from None
    except OSError as exc:
        raise UserError(f"{_where(task, p)}: cannot read ({exc.strerror or exc})") from None


def decode(raw: bytes, path: Path | str, task: str | None = None) -> str:
    """UTF-8 text (a UTF-8 byte order mark is dropped); anything else is refused with the likely encoding."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{_where(task, path)}: the file is UTF-16 (it starts with a UTF-16 byte order mark); "
                        "task data must be UTF-8: re-save it as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw[:4096]:
        raise UserError(f"{_where(task, path)}: the file holds NUL bytes (UTF-16 or UTF-32 without a byte order "
                        "mark, or a binary file); task data must be UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{_where(task, path)}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start}; latin-1 or another legacy encoding?); task data must be UTF-8") from None


def read_text(path: Path | str, task: str | None = None) -> str:
    """A UTF-8 text file with universal newlines (as Python's ``open(path).read()``)."""
    text = decode(read_bytes(path, task), path, task)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _depth_ok(value: Any) -> bool:
    """False when containers nest deeper than MAX_DEPTH (walked without recursion; deeper data would make
    later recursive code, ours or a library's, fail mid-run)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((x, depth + 1) for x in v if isinstance(x, (dict, list)))
    return True


def parse_json(text: str, where: str) -> Any:
    """One JSON document; every failure is a ``UserError`` naming ``where``. Nesting is checked on the
    parsed value (json's C parser refuses the absurd cases itself, with RecursionError): a walk over the
    containers costs a small fraction of the parse, where a character scan of the text cost several times it."""
    deep = f"{where}: JSON nested more than {MAX_DEPTH} levels deep; not task data"
    try:
        value = json.loads(text)
    except RecursionError:
        raise UserError(deep) from None
    except ValueError as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None
    if not _depth_ok(value):
        raise UserError(deep)
    return value


def read_json(path: Path | str, task: str | None = None) -> Any:
    """One JSON document from a UTF-8 file."""
    text = decode(read_bytes(path, task), path, task)
    if not text.strip():
        raise UserError(f"{_where(task, path)}: no samples in {path} (the file is empty)")
    return parse_json(text, _where(task, path))


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield n, line


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a JSON object (one record), got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def parse_jsonl(text: str, path: Path | str, task: str | None = None) -> list[dict[str, Any]]:
    where = _where(task, path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        # a pretty-printed or one-line JSON array: say so instead of "line 1: expected an object"
        try:
            whole = parse_json(text, where)
        except UserError:
            whole = None
        if isinstance(whole, list):
            raise UserError(f"{where}: is a JSON array, but JSON lines (one object per line) are expected here; "
                            "convert it (one object per line) or give the task its JSON format")
    rows = []
    for n, line in _lines(text):
        rows.append(_object(parse_json(line, f"{where}:{n}"), f"{where}:{n}"))
    return rows


def _csv_rows(text: str, path: Path | str, task: str | None, header: bool) -> list[Any]:
    where = _where(task, path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UserError(f"{where}: not valid CSV ({exc})") from None
    rows = [r for r in rows if r]
    if not header:
        return rows
    if not rows:
        return []
    names = rows[0]
    out = []
    for n, r in enumerate(rows[1:], 2):
        if len(r) != len(names):
            raise UserError(f"{where}: row {n} has {len(r)} fields, the header has {len(names)}")
        out.append(dict(zip(names, r)))
    return out


def _parquet_rows(path: Path | str, task: str | None,
                  columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a parquet file through ``datasets`` (imported here only); ``columns``: only those."""
    where = _where(task, path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(-4, os.SEEK_END)
            tail = f.read(4)
    except OSError as exc:
        raise UserError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if head != b"PAR1" or tail != b"PAR1":
        raise UserError(f"{where}: not a parquet file (no PAR1 magic bytes)")
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency
        raise UserError(f"{where}: reading parquet needs the `datasets` package (pip install datasets)") from None
    import tempfile

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its own error lines would precede ours
    try:
        # a private scratch cache: nothing is left in the user's HF cache, no lock is shared with others
        with tempfile.TemporaryDirectory(prefix="evalsuite-parquet-") as scratch:
            extra = {"columns": list(columns)} if columns is not None else {}
            return datasets.Dataset.from_parquet(str(path), cache_dir=scratch, keep_in_memory=True,
                                                 **extra).to_list()
    except Exception as exc:  # a damaged file, an unsupported type: the user's fix is the same
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UserError(f"{where}: cannot read parquet ({type(exc).__name__}: {first})") from None


def detect_format(path: Path | str) -> str:
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(suffix, "jsonl")


def read_records(path: Path | str, task: str | None = None, fmt: str | None = None, *,
                 array_key: str | None = None, allow_empty: bool = False,
                 columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The records (JSON objects) of a data file.

    ``fmt``: ``json`` (an array of objects, or an object holding one under ``array_key``), ``jsonl``, ``csv``
    (with a header row), ``parquet``; default from the file suffix, ``jsonl`` for anything else. An empty
    file or one with no records is an error ("no samples in ...") unless ``allow_empty``. ``columns``: read only
    these columns of a parquet file (a large column the task does not use stays on disk).
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}")
    where = _where(task, path)
    if fmt == "parquet":
        rows: list[Any] = _parquet_rows(path, task, columns)
    else:
        text = decode(read_bytes(path, task), path, task)
        if not text.strip():
            rows = []
        elif fmt == "jsonl":
            rows = parse_jsonl(text, path, task)
        elif fmt == "csv":
            rows = _csv_rows(text, path, task, header=True)
        else:
            doc = parse_json(text, where)
            if array_key is not None and isinstance(doc, dict) and array_key in doc:
                doc = doc[array_key]
            if not isinstance(doc, list):
                raise UserError(f"{where}: expected a JSON array of records"
                                + (f" (or an object with {array_key!r})" if array_key else "")
                                + f", got {_kind(doc)}")
            for i, row in enumerate(doc):
                _object(row, f"{where}: record {i + 1}")
            rows = doc
    if not rows and not allow_empty:
        raise UserError(f"{where}: no samples in {path}")
    return rows


def read_csv_rows(path: Path | str, task: str | None = None) -> list[list[str]]:
    """A header-less CSV file as lists of fields (MMLU's layout)."""
    text = decode(read_bytes(path, task), path, task)
    rows = _csv_rows(text, path, task, header=False)
    if not rows:
        raise UserError(f"{_where(task, path)}: no samples in {path}")
    return rows


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer", float: "a number",
               bool: "a boolean"}


def check_fields(rows: Sequence[Any], fields: Mapping[str, Any], where: str, *,
                 first_line: int = 1, unit: str = "row") -> None:
    """Every row is an object holding each field of ``fields`` with a value of the given type (a type or a
    tuple of types; ``None`` in the tuple allows null). Raises a ``UserError`` naming the first bad row."""
    for i, row in enumerate(rows):
        at = f"{where} {unit} {i + first_line}"
        if not isinstance(row, dict):
            raise UserError(f"{at}: expected an object, got {_kind(row)}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise UserError(f"{at}: missing field(s) {missing}")
        for f, types in fields.items():
            if types is None:
                continue
            allowed = types if isinstance(types, tuple) else (types,)
            v = row[f]
            ok = any((t is None and v is None) or (t is not None and isinstance(v, t)
                                                   and not (t is int and isinstance(v, bool)))
                     for t in allowed)
            if not ok:
                names = " or ".join(_TYPE_NAMES.get(t, "null" if t is None else t.__name__) for t in allowed)
                raise UserError(f"{at}: field {f!r} must be {names}, got {_kind(v)}")


def inside(root: Path | str, relative: Any, where: str, what: str = "path") -> Path:
    """``root / relative`` when it stays below ``root`` after resolving ``..`` and symlinks; else a
    ``UserError`` (the file is never opened)."""
    if not isinstance(relative, str) or not relative.strip():
        raise UserError(f"{where}: {what} must be a non-empty relative path, got {relative!r}")
    if "\x00" in relative:
        raise UserError(f"{where}: {what} {relative!r} holds a NUL byte")
    rel = Path(relative)
    if rel.is_absolute() or relative.startswith(("/", "\\", "~")):
        raise UserError(f"{where}: {what} {relative!r} is absolute; paths in task data must stay inside the "
                        f"data folder {root}")
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise UserError(f"{where}: {what} {relative!r} leaves the data folder {base}; refused (not read)")
    return target


@contextlib.contextmanager
def data_errors(task: str, source: Any = None) -> Iterator[None]:
    """Exceptions raised while a task turns its rows into samples are data errors: one line, exit 2."""
    try:
        yield
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            UnicodeError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise UserError(f"{task}: the task data does not have the expected shape ({type(exc).__name__}: "
                        f"{detail}){' in ' + str(source) if source else ''}; check the file given with "
                        "-T data_file/-T data_dir") from None


def guarded(task: str, samples: Iterable[Any]) -> Iterator[Any]:
    """``samples`` with :func:`data_errors` around each step of the iteration."""
    it = iter(samples)
    while True:
        with data_errors(task):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item
