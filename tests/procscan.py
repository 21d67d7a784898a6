"""Telling this test's sandbox processes from those of another test session on a shared machine."""
from __future__ import annotations

import os
from pathlib import Path


def ppid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def someone_elses(pid: int, mine: set[int], sandbox_uid: int) -> bool:
    """True when the process descends from another program's Python process (another test session running
    its own sandboxes on this machine) and not from this test. A process that escaped ours has been
    re-parented to init (or a subreaper) and counts as ours, as does one still under this test."""
    others = False
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        parent = ppid(pid)
        if parent is None or parent <= 1:
            break
        if parent in mine:
            return False
        try:
            if (os.stat(f"/proc/{parent}").st_uid != sandbox_uid
                    and b"python" in Path(f"/proc/{parent}/cmdline").read_bytes()):
                others = True
        except OSError:
            break
        pid = parent
    return others
