"""Incremental builds: what a rebuild may reuse, and how the output folder is updated.

Two kinds of output:

* **Units** are the costly part, the per-sample data of one run x task (parsing its logs, compressing
  the chunks: ``samples.py``). Each has a key, the SHA-256 of everything its files are made from: the
  contents of the run x task's ``per_sample.jsonl`` and ``samples.jsonl`` (and ``prompts.jsonl`` with a
  prompt preview; read through :class:`InputDigests`), the preview length, the run's page name and the
  task's slug, and the builder's fingerprint (:func:`fingerprint`: the evalsuite version and the bytes of
  every module, template and asset of ``evalsuite`` and ``evalsuite.leaderboard``, plus the Python and
  zlib versions). A unit whose data shows error texts is keyed on the environment too (the credentials
  redaction removes and the folders local paths are shown relative to: ``evalsuite.redact``,
  ``local_paths``); the others do not depend on it. The site's marker file records each unit's key and
  the SHA-256 of each file it wrote; a rebuild reuses a unit only when its key is the same *and* every
  recorded file is still there with that content. Otherwise it is computed again.
* **Pages and charts** (overview, benchmark, task, run and sample-browser pages, SVG charts, the stylesheet
  and script) take milliseconds: they are rendered on every build, and a file is rewritten only when its
  bytes differ, so an unchanged page is left as it was.

Files are written through a temporary file and renamed (a killed build leaves no half-written page; the
next build finds a recorded hash that does not match and redoes the unit), symbolic links in the output
are removed rather than followed, and every file the build did not produce (a deleted run's pages, a
chunk that is no longer needed) is removed at the end. The marker is written last, sorted, without
timestamps or local paths: identical inputs give a byte-identical folder, built at once or step by step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import time
import zlib
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalsuite.errors import UserError

MARKER = ".evalsuite-site"
INDEX_FORMAT = 1
_FINGERPRINT: str | None = None


def fingerprint() -> str:
    """The builder's identity: evalsuite's version and source, the site's templates and assets."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import evalsuite

        h = hashlib.sha256()
        h.update(f"evalsuite {evalsuite.__version__}; python {sys.version_info[0]}.{sys.version_info[1]}; "
                 f"zlib {zlib.ZLIB_RUNTIME_VERSION}\n".encode())
        for pkg in ("evalsuite", "evalsuite.leaderboard"):
            base = Path(str(resources.files(pkg)))
            for p in sorted(base.rglob("*")):
                if p.suffix in (".py", ".jinja", ".css", ".js") and "__pycache__" not in p.parts and p.is_file():
                    h.update(f"{pkg}/{p.relative_to(base).as_posix()}\0".encode())
                    h.update(hashlib.sha256(p.read_bytes()).digest())
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes; ``None`` when it does not exist."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
                else hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


class InputDigests:
    """SHA-256 of the input files, remembered between builds by each file's stat signature (size,
    modification and change times in ns, inode, device), as git's index does: a file whose signature is
    unchanged is not read again. A signature is trusted only when the file's last change is older than
    the moment it was hashed by ``RACY_NS`` (two writes within one tick of a coarse filesystem clock would
    otherwise look alike), and any write changes the change time (``st_ctime``, which no program can set
    back). The record is local state, kept outside the site so the published folder stays byte-identical:
    ``$EVALSUITE_CACHE/leaderboard/inputs-<hash of the output folder>.json``; when it cannot be read or
    written every input is simply hashed."""

    RACY_NS = 2_000_000_000

    def __init__(self, out: Path | None):
        self.path: Path | None = None
        self.old: dict[str, Any] = {}
        self.new: dict[str, Any] = {}
        self.hashed = 0
        if out is None:
            return
        from evalsuite.cache import cache_root

        base = cache_root()
        try:
            where = str(out.resolve())
        except OSError:
            return
        self.path = base / "leaderboard" / f"inputs-{hashlib.sha256(where.encode()).hexdigest()[:24]}.json"
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("format") == 1 and isinstance(doc.get("files"), dict):
                self.old = doc["files"]
        except (OSError, ValueError):
            pass

    def digest(self, path: Path) -> str | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        name = str(path)
        e = self.old.get(name)
        if isinstance(e, dict) and e.get("sig") == sig and isinstance(e.get("at"), int) \
                and max(st.st_ctime_ns, st.st_mtime_ns) < e["at"] - self.RACY_NS and isinstance(e.get("sha256"), str):
            self.new[name] = e
            return e["sha256"]
        at = time.time_ns()
        try:
            digest = file_digest(path)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.hashed += 1
        if digest is not None:
            self.new[name] = {"sig": sig, "at": at, "sha256": digest}
        return digest

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"format": 1, "files": self.new}, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # an accelerator only: the next build hashes the inputs again


def unit_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=True, default=str).encode()).hexdigest()


def load_index(out: Path) -> dict[str, dict[str, Any]]:
    """The units recorded by the previous build of ``out`` (empty when there is none or it is unreadable:
    a site from an older version, a damaged marker)."""
    try:
        doc = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or not isinstance(doc.get("units"), dict):
        return {}
    return {k: v for k, v in doc["units"].items() if isinstance(v, dict) and isinstance(v.get("files"), dict)}


def index_bytes(units: Mapping[str, Mapping[str, Any]]) -> bytes:
    doc = {"built_by": "evalsuite leaderboard build", "format": INDEX_FORMAT,
           "note": "build state of this site (what a rebuild may reuse); not part of the pages",
           "units": {k: units[k] for k in sorted(units)}}
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def still_there(out: Path, entry: Mapping[str, Any]) -> bool:
    """Every file a recorded unit wrote is in place, a regular file, with the recorded content."""
    for rel, digest in entry.get("files", {}).items():
        p = out / rel
        try:
            if not stat.S_ISREG(os.lstat(p).st_mode):
                return False
        except OSError:
            return False
        try:
            if file_digest(p) != digest:
                return False
        except OSError:
            return False
    return True


def prepare(out: Path) -> None:
    """Check the output folder (ours, or empty/new), mark it as ours, and remove symbolic links in it."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.exists():
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise UserError(f"cannot read {out}: {exc.strerror or exc}") from None
        if entries and not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and was not built by `evalsuite leaderboard build`; "
                            "choose an empty or new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / MARKER).is_file():
            (out / MARKER).write_bytes(index_bytes({}))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        for dirpath, dirnames, filenames in os.walk(out):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if p.is_symlink():
                    p.unlink()  # never written through: a link could point anywhere
    except OSError as exc:
        raise UserError(f"cannot update {out}: {exc.strerror or exc}") from None


class SiteWriter:
    """Writes site files, leaving a file alone when its bytes are already those (``unchanged``)."""

    def __init__(self, out: Path):
        self.out = out
        self.produced: dict[str, str] = {}
        """relative path -> SHA-256 of every file this build made or kept"""
        self.written = 0
        self.unchanged = 0

    def write(self, rel: str, data: str | bytes) -> str:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        p = self.out / rel
        try:
            same = stat.S_ISREG(os.lstat(p).st_mode) and p.stat().st_size == len(raw) and p.read_bytes() == raw
        except OSError:
            same = False
        if same:
            self.unchanged += 1
        else:
            self._replace(p, raw)
            self.written += 1
        self.produced[rel] = digest
        return digest

    def keep(self, files: Mapping[str, str]) -> None:
        self.produced.update(files)
        self.unchanged += len(files)

    def _replace(self, p: Path, raw: bytes) -> None:
        try:
            parent = p.parent
            if parent.exists() and not parent.is_dir():
                parent.unlink()
            parent.mkdir(parents=True, exist_ok=True)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            tmp = parent / f".{p.name}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(raw)
            os.replace(tmp, p)
        except OSError as exc:
            raise UserError(f"cannot write {p}: {exc.strerror or exc}") from None

    def prune(self, keep: Iterable[str] = (MARKER,)) -> int:
        """Remove every file this build did not produce, then empty folders; returns files removed."""
        wanted = set(self.produced) | set(keep)
        removed = 0
        try:
            for dirpath, dirnames, filenames in os.walk(self.out, topdown=False):
                d = Path(dirpath)
                for name in filenames:
                    rel = (d / name).relative_to(self.out).as_posix()
                    if rel not in wanted:
                        (d / name).unlink()
                        removed += 1
                for name in dirnames:
                    sub = d / name
                    if sub.is_symlink():
                        sub.unlink()
                    elif not any(sub.iterdir()):
                        sub.rmdir()
        except OSError as exc:
            raise UserError(f"cannot remove an old file of {self.out}: {exc.strerror or exc}") from None
        return removed
