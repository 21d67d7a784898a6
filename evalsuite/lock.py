"""One writer per run folder: an exclusive lock held for the life of ``run``, ``score``, ``merge`` (into
the merged run, and briefly on each shard it reads) and the judge passes inside them.

The lock is ``fcntl.flock`` on ``<run>/.evalsuite.lock``. The kernel drops it when the holder's process
dies (SIGKILL, OOM, a lost node's process being reaped), so a lock is never left behind by a dead
process: the file stays, but its content (PID, host, command, start time) only describes the holder
while someone holds it, and the next process simply takes the lock and writes its own. A second process
fails at once with one line that names the holder (exit 2), or waits with ``--wait-lock``.

Within one process the lock is re-entrant (``merge`` scores the run it holds). The file is opened and
locked, then checked to still be the file at that path, so a holder that removes an otherwise empty run
folder on release cannot hand two processes "the" lock. Filesystems without ``flock`` support (some
network mounts return ``ENOLCK``) get a warning and no lock.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import UserError
from .redact import redact_argv

LOCK_FILE = ".evalsuite.lock"
log = logging.getLogger(__name__)


class RunLocked(UserError):
    """Another process holds the run folder."""


_held: dict[str, "_Held"] = {}
_guard = threading.Lock()


class _Held:
    def __init__(self, fd: int | None, path: Path, created_dir: bool):
        self.fd = fd
        self.path = path
        self.count = 1
        self.created_dir = created_dir


def _read_holder(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _holder_text(path: Path, patience: float = 2.0) -> str:
    # The holder writes its details just after taking the lock: give it a moment to do so before saying
    # who it is (a process that has just started would otherwise be reported as unknown).
    deadline = time.monotonic() + patience
    while (info := _read_holder(path)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if info is None:
        return "another process (it has not written its details yet)"
    cmd = info.get("command")
    cmd = " ".join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd or "?")
    if len(cmd) > 160:
        cmd = cmd[:160] + "..."
    return (f"`{info.get('purpose', '?')}` (PID {info.get('pid', '?')} on host {info.get('host', '?')}, "
            f"started {info.get('started', '?')}: {cmd})")


class RunLock:
    """``with RunLock(run_dir, "run"):`` holds the run folder; see the module docstring."""

    def __init__(self, run_dir: str | os.PathLike[str], purpose: str, wait: bool = False,
                 command: Sequence[str] | None = None):
        self.dir = Path(run_dir)
        self.purpose = purpose
        self.wait = wait
        self.command = list(command) if command is not None else ["evalsuite", *sys.argv[1:]]
        self._key: str | None = None

    @property
    def path(self) -> Path:
        return self.dir / LOCK_FILE

    def acquire(self) -> "RunLock":
        import fcntl

        created = not self.dir.exists()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the run folder {self.dir}: {exc.strerror or exc}") from None
        key = os.path.realpath(self.dir)
        with _guard:
            held = _held.get(key)
            if held is not None:
                held.count += 1
                self._key = key
                return self
        told = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                raise UserError(f"cannot write to the run folder {self.dir}: {exc.strerror or exc}") from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not self.wait:
                        raise RunLocked(f"run folder {self.dir} is in use by {_holder_text(self.path)}; one "
                                        "process writes a run at a time: wait for it to end, or pass "
                                        "--wait-lock to wait") from None
                    if not told:
                        print(f"evalsuite: waiting for run folder {self.dir}, in use by "
                              f"{_holder_text(self.path)}", file=sys.stderr, flush=True)
                        told = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                # the holder before us may have removed the (empty) folder's lock file on release
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    self.dir.mkdir(parents=True, exist_ok=True)
                    continue
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    log.warning("evalsuite: %s does not support file locks; a second process could write "
                                "this run at the same time", self.dir)
                    fd = None
                else:
                    raise UserError(f"cannot lock the run folder {self.dir}: {exc.strerror or exc}") from None
            break
        if fd is not None:
            info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                    "command": redact_argv(self.command),
                    "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
            except OSError:
                pass  # the details are a courtesy; the lock is what matters
        with _guard:
            _held[key] = _Held(fd, self.path, created)
        self._key = key
        return self

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        with _guard:
            held = _held.get(key)
            if held is None:
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[key]
        if held.fd is None:
            return
        import fcntl

        removed = False
        try:
            # an otherwise empty folder (the run failed before writing anything) is removed
            if held.created_dir and [p.name for p in self.dir.iterdir()] == [LOCK_FILE]:
                os.unlink(held.path)
                removed = True
                os.rmdir(self.dir)
        except OSError:
            pass
        try:
            if not removed:
                os.ftruncate(held.fd, 0)  # no holder to describe any more
        except OSError:
            pass
        finally:
            fcntl.flock(held.fd, fcntl.LOCK_UN)
            os.close(held.fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


__all__ = ["LOCK_FILE", "RunLock", "RunLocked"]
