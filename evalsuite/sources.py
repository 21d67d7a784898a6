"""Default data sources: declared once per task, fetched on first use, pinned, verified and cached.

A task declares what it needs as :class:`Need` records pointing into :class:`Source` records (a Hugging Face
repository or a GitHub repository at a full commit, the files it holds, their pinned sha256 and/or git blob
id, license and upstream page) or a :class:`ManualSource` when there is no machine-readable public release.
This module resolves them:

* Files live in one cache, ``$EVALSUITE_CACHE/data`` (default ``~/.cache/evalsuite/data``), laid out as
  ``<host>/<owner>/<name>/<revision>/<path>``; each revision folder keeps ``.evalsuite-lock.json`` with the
  sha256 of every file it holds and how it was verified.
* A missing file is downloaded (Hugging Face files through ``huggingface_hub.hf_hub_download`` at the pinned
  ``revision``; GitHub files from ``raw.githubusercontent.com`` at the pinned commit), verified against the
  pinned sha256 / git blob id and moved into place atomically. A file whose content differs from its pin is
  refused, naming the file: an unchanged pin never silently serves a different benchmark. Without a pinned
  hash the first download's sha256 is recorded ("trust on first use") and every later use is checked
  against it.
* Archives (``data.zip``) are unpacked once, atomically, next to the archive; each member's sha256 is
  recorded and checked when the member is read.
* Offline (``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1`` or ``EVALSUITE_OFFLINE=1``) a file that is not
  cached fails at once with one line naming ``evalsuite data fetch`` and ``-T data_dir=``; nothing retries.
* ``evalsuite data fetch TASKS --to DIR`` writes the same layout (plus ``evalsuite-data.json``) into DIR; on a
  machine without internet, ``-T data_dir=DIR`` (or ``EVALSUITE_CACHE`` pointing at a copy) serves it.

``EVALSUITE_GITHUB_ENDPOINT`` replaces ``https://raw.githubusercontent.com`` (a mirror, or the tests' fake
server), as ``HF_ENDPOINT`` does for the Hugging Face Hub. Nothing here runs at import time.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import cache as _cache
from .data import offline  # noqa: F401  (sources.offline: the one definition, in data)
from .errors import UserError

HF = "hf"
GITHUB = "github"
LOCK = ".evalsuite-lock.json"
UNPACKED = ".evalsuite-unpacked.json"
MARKER = "evalsuite-data.json"
"""Top-level file of a folder written by ``evalsuite data fetch --to``."""
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


# -- declarations --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteFile:
    """One file of a source repository."""

    path: str
    """Path inside the repository at the pinned revision."""
    sha256: str | None = None
    """Pinned sha256 of the content; None when it could not be established (then: trust on first use)."""
    git_blob: str | None = None
    """Git blob id of the content (GitHub sources): a second, independent pin."""
    size: int | None = None
    """Size in bytes, when known."""

    @property
    def archive(self) -> bool:
        return self.path.endswith(ARCHIVE_SUFFIXES)

    @property
    def pin(self) -> str:
        return "sha256" if self.sha256 else "git-blob" if self.git_blob else "trust-on-first-use"


@dataclass(frozen=True)
class Source:
    """A repository at a pinned revision and the files tasks read from it."""

    id: str
    """Short name used in messages, ``data status`` and the manifest (``longbench``, ``ruler-essays``)."""
    host: str
    """``hf`` (Hugging Face Hub) or ``github``."""
    repo: str
    """``owner/name``."""
    revision: str
    """Full commit hash: the content of a commit cannot change."""
    files: tuple[RemoteFile, ...]
    license: str
    page: str
    """Upstream page a user can read."""
    repo_type: str = "dataset"
    """Hugging Face repository type."""
    note: str = ""
    """Where the pins come from and what was (not) verified."""

    def file(self, path: str) -> RemoteFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(f"{self.id}: no file {path!r} declared")

    def url(self, path: str) -> str:
        if self.host == GITHUB:
            return f"https://github.com/{self.repo}/blob/{self.revision}/{path}"
        kind = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"https://huggingface.co/{kind}{self.repo}/blob/{self.revision}/{path}"

    def describe(self) -> str:
        return f"{'hf' if self.host == HF else 'github'}:{self.repo}@{self.revision[:8]}"


@dataclass(frozen=True)
class ManualSource:
    """Data without a machine-readable public release (or one too large to fetch unasked): the exact step."""

    id: str
    files: tuple[str, ...]
    """What the user provides."""
    step: str
    """The exact manual step, ending in the ``-T`` option that takes the result."""
    license: str
    page: str
    note: str = ""

    def describe(self) -> str:
        return f"manual ({self.page})"


@dataclass(frozen=True)
class Need:
    """One file a task reads: a file of a source, or a member of an archive file of a source."""

    source: Source | ManualSource
    path: str
    """File in the source (for a manual source: the file the user provides)."""
    member: str | None = None
    """For archives: the file inside the unpacked archive."""
    role: str = "data"

    @property
    def name(self) -> str:
        return f"{self.path}:{self.member}" if self.member else self.path


# -- pins given by the user ---------------------------------------------------------------------------

def _pins_file() -> str | None:
    return os.environ.get("EVALSUITE_DATA_PINS") or None


def effective(src: Source) -> Source:
    """``src`` with the pins of ``$EVALSUITE_DATA_PINS`` applied, when that file names it.

    The file is JSON: ``{"<source id>": {"revision": "<commit>", "files": {"<path>": {"sha256": "...",
    "git_blob": "..."}}}}`` (every key optional). It moves a source to another revision or content (a newer
    upstream release, a private mirror) without editing code; every data record of the run names the file.
    """
    pins = _pins_file()
    if not pins:
        return src
    try:
        doc = json.loads(Path(pins).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"EVALSUITE_DATA_PINS={pins}: cannot read it as JSON ({exc})") from None
    entry = doc.get(src.id) if isinstance(doc, dict) else None
    if not isinstance(entry, dict):
        return src
    files = []
    overrides = entry.get("files") or {}
    for f in src.files:
        o = overrides.get(f.path)
        files.append(RemoteFile(f.path, o.get("sha256"), o.get("git_blob"), o.get("size"))
                     if isinstance(o, dict) else f)
    import dataclasses

    return dataclasses.replace(src, revision=str(entry.get("revision") or src.revision), files=tuple(files),
                               note=f"pins from EVALSUITE_DATA_PINS={pins}")


# -- locations -----------------------------------------------------------------------------------------

def cache_root() -> Path:
    """Where task data is cached: ``data/`` in the evalsuite cache (the models' cache too)."""
    return _cache.cache_root() / "data"


def is_data_folder(path: str | Path | None) -> bool:
    """True for a folder written by ``evalsuite data fetch --to``."""
    return bool(path) and (Path(path).expanduser() / MARKER).is_file()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


_HASHED: dict[tuple[str, int, int], str] = {}
"""sha256 of files already hashed by this process, keyed by (path, size, mtime): a file several tasks read
is hashed once per run."""


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = _sha256(path)
    return _HASHED[key]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (sha1 over ``blob <size>\\0<bytes>``)."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_rel(path: str) -> Path:
    p = Path(path)
    if p.is_absolute() or ".." in p.parts or not path:
        raise ValueError(f"unsafe path in a source declaration: {path!r}")
    return p


class Store:
    """One folder in the cache layout (the user cache, or a folder written by ``data fetch --to``)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()

    def rev_dir(self, src: Source) -> Path:
        return self.root / src.host / _safe_rel(src.repo) / src.revision

    def path(self, src: Source, path: str) -> Path:
        return self.rev_dir(src) / _safe_rel(path)

    def lock(self, src: Source) -> dict[str, Any]:
        p = self.rev_dir(src) / LOCK
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_lock(self, src: Source, entries: dict[str, Any]) -> None:
        d = self.rev_dir(src)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".lock.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, d / LOCK)

    def present(self, src: Source, path: str) -> bool:
        return self.path(src, path).is_file() and path in self.lock(src)

    def verified(self, task: str, src: Source, f: RemoteFile) -> Path | None:
        """The file when it is here and its content matches its pins (and the recorded sha256)."""
        p = self.path(src, f.path)
        if not p.is_file():
            return None
        entry = self.lock(src).get(f.path)
        digest = sha256_file(p)
        expected = f.sha256 or (entry or {}).get("sha256")
        if expected and digest != expected:
            raise UserError(f"{task}: {p} has sha256 {digest[:16]}…, expected {expected[:16]}… (pinned for "
                            f"{src.describe()}:{f.path}); the cached copy was modified or damaged: delete it and "
                            f"run `evalsuite data fetch {task}`")
        if f.git_blob and git_blob_id(p) != f.git_blob:
            raise UserError(f"{task}: {p} is not git blob {f.git_blob[:12]} of {src.describe()}:{f.path}; the "
                            f"cached copy was modified or damaged: delete it and run `evalsuite data fetch {task}`")
        if entry is None:  # a file placed by hand next to a lock that does not know it
            if not (f.sha256 or f.git_blob):
                return None
            try:
                self.record(src, f, p, digest)
            except OSError:  # a read-only folder: the pins were checked, recording is a convenience
                pass
        return p

    def record(self, src: Source, f: RemoteFile, p: Path, digest: str) -> None:
        entries = self.lock(src)
        entries[f.path] = {"sha256": digest, "size": p.stat().st_size, "pin": f.pin, "fetched": _now(),
                           "source": src.describe()}
        self._write_lock(src, entries)


# -- download ------------------------------------------------------------------------------------------

def _offline_error(task: str, src: Source, path: str, stores: Sequence[Store]) -> UserError:
    where = " or ".join(str(s.root) for s in stores)
    return UserError(f"{task}: {path} of {src.describe()} is not in the data cache ({where}) and the hub is "
                     f"offline: run `evalsuite data fetch {task}` on a connected machine (then copy the cache, or "
                     f"fetch with --to DIR and pass -T data_dir=DIR), or pass a local copy with -T data_dir=<folder> or "
                     f"-T data_file=<file>")


def _download_hf(task: str, src: Source, f: RemoteFile, staging: Path) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - a dependency
        raise UserError(f"{task}: downloading {src.describe()} needs huggingface_hub (pip install huggingface_hub); "
                        "or pass a local copy with -T data_dir=<folder>") from None
    try:
        got = hf_hub_download(src.repo, f.path, repo_type=src.repo_type, revision=src.revision,
                              local_dir=str(staging))
    except Exception as exc:  # network, 404, auth: one line, the user's options are the same
        msg = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else ""
        raise UserError(f"{task}: could not download {f.path} of {src.describe()} ({type(exc).__name__}: {msg}); "
                        f"pass a local copy with -T data_dir=<folder>") from None
    return Path(got)


def github_endpoint() -> str:
    return (os.environ.get("EVALSUITE_GITHUB_ENDPOINT") or "https://raw.githubusercontent.com").rstrip("/")


def _download_github(task: str, src: Source, f: RemoteFile, staging: Path) -> Path:
    import httpx

    url = f"{github_endpoint()}/{src.repo}/{src.revision}/{f.path}"
    out = staging / _safe_rel(f.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = _Bar(f"{src.id}: {f.path}", f.size)
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(30.0)) as r:
            if r.status_code != 200:
                raise UserError(f"{task}: could not download {f.path} of {src.describe()} (HTTP {r.status_code} "
                                f"from {url}); pass a local copy with -T data_dir=<folder>")
            total = r.headers.get("Content-Length")
            bar.start(int(total) if total and total.isdigit() else f.size)
            with open(out, "wb") as fh:
                for chunk in r.iter_bytes(1 << 20):
                    fh.write(chunk)
                    bar.advance(len(chunk))
    except httpx.HTTPError as exc:
        raise UserError(f"{task}: could not download {f.path} of {src.describe()} ({type(exc).__name__}: {exc}); "
                        f"pass a local copy with -T data_dir=<folder>") from None
    finally:
        bar.stop()
    return out


class _Bar:
    """A rich progress bar on a terminal (stderr); silent otherwise."""

    def __init__(self, label: str, total: int | None):
        self.label = label
        self.total = total
        self.bar: Any = None

    def start(self, total: int | None) -> None:
        if not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.bar = Progress(TextColumn(self.label), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        self.tid = self.bar.add_task("x", total=total)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(self.tid, advance=n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _check_download(task: str, src: Source, f: RemoteFile, p: Path) -> str:
    digest = sha256_file(p)
    if f.sha256 and digest != f.sha256:
        raise UserError(f"{task}: upstream file changed: {f.path} of {src.describe()} has sha256 {digest}, the pin "
                        f"says {f.sha256}; refusing to run a different benchmark under the same name")
    if f.git_blob:
        blob = git_blob_id(p)
        if blob != f.git_blob:
            raise UserError(f"{task}: upstream file changed: {f.path} of {src.describe()} is git blob {blob}, the "
                            f"pin says {f.git_blob}; refusing to run a different benchmark under the same name")
    return digest


def _unwritable(task: str, where: Path, exc: OSError) -> UserError:
    return UserError(f"{task}: cannot write the data cache at {where} ({exc.strerror or exc}); set EVALSUITE_CACHE "
                     f"to a writable folder")


def download(task: str, src: Source, f: RemoteFile, store: Store) -> Path:
    """Download one file into ``store`` (verified, atomically placed, recorded)."""
    if offline():
        raise _offline_error(task, src, f.path, [store])
    try:
        store.rev_dir(src).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=store.rev_dir(src)))
    except OSError as exc:
        raise _unwritable(task, store.rev_dir(src), exc) from None
    try:
        got = (_download_hf if src.host == HF else _download_github)(task, src, f, staging)
        digest = _check_download(task, src, f, got)
        final = store.path(src, f.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, final)
        store.record(src, f, final, digest)
        return final
    except OSError as exc:  # a full disk, a folder that became read-only
        raise _unwritable(task, store.rev_dir(src), exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- archives ------------------------------------------------------------------------------------------

def unpacked_dir(store: Store, src: Source, f: RemoteFile) -> Path:
    return store.path(src, f.path).with_name(Path(f.path).name + ".d")


def _members(archive: Path) -> list[tuple[str, Any]]:
    import tarfile
    import zipfile

    if archive.name.endswith(".zip"):
        z = zipfile.ZipFile(archive)
        return [(i.filename, ("zip", z, i)) for i in z.infolist() if not i.is_dir()]
    t = tarfile.open(archive)
    return [(m.name, ("tar", t, m)) for m in t.getmembers() if m.isfile()]


def unpack(task: str, store: Store, src: Source, f: RemoteFile, archive: Path) -> Path:
    """Unpack ``archive`` once into ``<archive>.d`` (atomically: a temp folder renamed into place)."""
    final = unpacked_dir(store, src, f)
    marker = final / UNPACKED
    if marker.is_file():
        return final
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=final.parent))
    except OSError as exc:
        raise _unwritable(task, final.parent, exc) from None
    members: dict[str, str] = {}
    try:
        try:
            entries = _members(archive)
        except Exception as exc:
            raise UserError(f"{task}: {archive} is not a readable archive ({type(exc).__name__}: {exc})") from None
        bar = _Bar(f"unpacking {Path(f.path).name}", None)
        bar.start(len(entries))
        try:
            for name, (kind, arc, info) in entries:
                try:
                    rel = _safe_rel(name)
                except ValueError:
                    raise UserError(f"{task}: {archive} holds an unsafe member name {name!r}; refused") from None
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                src_fh = arc.open(info) if kind == "zip" else arc.extractfile(info)
                h = hashlib.sha256()
                with src_fh, open(out, "wb") as dst:
                    for chunk in iter(lambda: src_fh.read(1 << 20), b""):
                        dst.write(chunk)
                        h.update(chunk)
                members[rel.as_posix()] = h.hexdigest()
                bar.advance(1)
        finally:
            bar.stop()
        (tmp / UNPACKED).write_text(json.dumps({"archive": f.path, "archive_sha256": sha256_file(archive),
                                                "members": members, "unpacked": _now()}, indent=1),
                                    encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not marker.is_file():  # not another process finishing first: a real error
                raise
        return final
    except OSError as exc:  # a full disk while unpacking: nothing half-unpacked is left
        raise _unwritable(task, final.parent, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _member(task: str, folder: Path, member: str) -> tuple[Path, str]:
    info = json.loads((folder / UNPACKED).read_text(encoding="utf-8"))
    expected = info.get("members", {}).get(member)
    p = folder / _safe_rel(member)
    if expected is None or not p.is_file():
        raise UserError(f"{task}: {member} is not in the unpacked archive {folder}")
    digest = sha256_file(p)
    if digest != expected:
        raise UserError(f"{task}: {p} was modified after unpacking (sha256 {digest[:16]}…, unpacked as "
                        f"{expected[:16]}…); delete {folder} and run the task again")
    return p, digest


# -- resolution ----------------------------------------------------------------------------------------

@dataclass
class Resolved:
    """A needed file on local disk and what the manifest records about it."""

    need: Need
    path: Path
    record: dict[str, Any] = field(default_factory=dict)


def _stores(data_dir: str | Path | None) -> list[Store]:
    out = []
    if is_data_folder(data_dir):
        out.append(Store(Path(str(data_dir)).expanduser()))
    out.append(Store(cache_root()))
    return out


def resolve_need(task: str, need: Need, data_dir: str | Path | None = None, *,
                 download_to: Store | None = None) -> Resolved:
    """The local file for ``need``: from a fetched folder given as ``data_dir``, the cache, or a download."""
    src = need.source
    if isinstance(src, ManualSource):
        raise UserError(f"{task}: {src.id} has no downloadable release: {src.step}")
    src = effective(src)
    f = src.file(need.path)
    # filling a folder (`data fetch --to`): only that folder counts, so what the cache holds unpacked is
    # unpacked there too and the folder alone serves an offline machine
    stores = [download_to] if download_to is not None else _stores(data_dir)

    def label(i: int) -> str:
        return "data_dir" if download_to is not None or (i == 0 and len(stores) == 2) else "cache"

    if need.member is not None:  # an archive unpacked earlier: check the member, not the whole archive again
        for i, store in enumerate(stores):
            hit = _unpacked_member(task, store, src, f, need.member)
            if hit is not None:
                return Resolved(need, hit[0], _record(src, f, store, label(i)) | {"member": need.member,
                                                                                 "member_sha256": hit[1]})
    where = "cache"
    path: Path | None = None
    for i, store in enumerate(stores):
        path = store.verified(task, src, f)
        if path is not None:
            where = label(i)
            used = store
            break
    else:
        used = download_to or stores[-1]
        if offline():
            raise _offline_error(task, src, f.path, stores)
        path = download(task, src, f, used)
        where = "downloaded"
    record = _record(src, f, used, where)
    if need.member is not None:
        folder = unpack(task, used, src, f, path)
        path, digest = _member(task, folder, need.member)
        record.update(member=need.member, member_sha256=digest)
    return Resolved(need, path, record)


def _record(src: Source, f: RemoteFile, store: Store, where: str) -> dict[str, Any]:
    record = {"source": src.id, "host": src.host, "repo": src.repo, "revision": src.revision, "file": f.path,
              "pin": f.pin, "sha256": store.lock(src).get(f.path, {}).get("sha256") or f.sha256,
              "license": src.license, "location": where}
    if f.git_blob:
        record["git_blob"] = f.git_blob
    if src.note.startswith("pins from EVALSUITE_DATA_PINS"):
        record["pins"] = src.note
    return record


def _unpacked_member(task: str, store: Store, src: Source, f: RemoteFile, member: str) -> tuple[Path, str] | None:
    folder = unpacked_dir(store, src, f)
    try:
        info = json.loads((folder / UNPACKED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    expected = f.sha256 or store.lock(src).get(f.path, {}).get("sha256")
    if not expected or info.get("archive_sha256") != expected:
        return None
    return _member(task, folder, member)


def fetch(task: str, needs: Sequence[Need], to: str | Path | None = None) -> list[Resolved]:
    """Download (or verify) every file of ``needs``; with ``to``, into that folder in the cache layout."""
    store = None
    if to is not None:
        store = Store(Path(to).expanduser())
        store.root.mkdir(parents=True, exist_ok=True)
        marker = store.root / MARKER
        if not marker.is_file():
            marker.write_text(json.dumps({"format": "evalsuite data folder", "version": 1,
                                          "layout": "<host>/<owner>/<name>/<revision>/<path>",
                                          "created": _now()}, indent=1), encoding="utf-8")
    out = []
    for n in needs:
        if isinstance(n.source, ManualSource):
            continue
        if store is not None:
            src = effective(n.source)
            f = src.file(n.path)
            if store.verified(task, src, f) is None:
                cached = Store(cache_root()).verified(task, src, f)
                if cached is not None:  # copy from the cache instead of downloading again
                    dst = store.path(src, f.path)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
                    shutil.copyfile(cached, tmp)
                    os.replace(tmp, dst)
                    store.record(src, f, dst, sha256_file(dst))
            out.append(resolve_need(task, n, store.root, download_to=store))
        else:
            out.append(resolve_need(task, n))
    return out


def status(task: str, needs: Sequence[Need], data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """What ``data status`` shows for one task: every needed file, whether it is here, its source. No network,
    no hashing of large files (presence = the file and its lock entry)."""
    rows = []
    for n in needs:
        src = n.source
        row: dict[str, Any] = {"task": task, "role": n.role, "file": n.path, "member": n.member,
                               "source": src.id, "license": src.license, "page": src.page}
        if isinstance(src, ManualSource):
            row.update(kind="manual", present=False, where=None, step=src.step, size=None, pin="manual")
            if data_dir and not is_data_folder(data_dir):
                row["present"] = None  # a folder in the official layout: the task checks it when it runs
                row["where"] = str(data_dir)
            rows.append(row)
            continue
        src = effective(src)
        f = src.file(n.path)
        row.update(kind=src.host, repo=src.repo, revision=src.revision, url=src.url(f.path), pin=f.pin,
                   sha256=f.sha256, git_blob=f.git_blob, size=f.size, present=False, where=None)
        for store in _stores(data_dir):
            p = store.path(src, f.path)
            if store.present(src, f.path):
                entry = store.lock(src).get(f.path, {})
                row.update(present=True, where=str(p), size=entry.get("size", f.size),
                           sha256=entry.get("sha256", f.sha256))
                break
        rows.append(row)
    return rows


def needs_of(factory: Any, options: Mapping[str, Any] | None = None) -> list[Need]:
    """What a task class reads by default (``data_needs(options)``, ``contracts.DataNeeds``; none when the class
    does not declare it)."""
    from .contracts import DataNeeds

    if not isinstance(factory, DataNeeds):
        return []
    return list(factory.data_needs(dict(options or {})))


def summary(factory: Any, task: str) -> dict[str, Any]:
    """One line of ``list tasks``: where the data comes from and whether it is available now."""
    needs = needs_of(factory)
    if not needs:
        return {"source": "none (generated or bundled)", "available": True, "manual": False}
    srcs = list(dict.fromkeys(n.source for n in needs))
    manual = any(isinstance(s, ManualSource) for s in srcs)
    rows = status(task, needs)
    available = all(r["present"] for r in rows)
    return {"source": ", ".join(s.describe() for s in srcs), "available": available, "manual": manual}
