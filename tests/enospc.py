"""Fault injection for the full-disk tests: ``python tests/enospc.py MATCH AFTER evalsuite-args...`` runs
the CLI with every write to a file whose name contains MATCH failing with ENOSPC after AFTER successful
writes (the failing write lands half of its bytes first, as a disk that fills up mid-write does)."""

from __future__ import annotations

import builtins
import errno
import os
import sys


def install(match: str, after: int) -> None:
    count = [0]
    real_open, real_fdopen = builtins.open, os.fdopen

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            count[0] += 1
            if count[0] > after:
                self._f.write(data[: len(data) // 2])
                self._f.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def wrap(f, name):
        return Full(f) if match in os.path.basename(str(name)) else f

    def fopen(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        return wrap(f, file) if any(c in mode for c in "wax+") else f

    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        return wrap(f, name) if any(c in mode for c in "wax+") else f

    real_write = os.write

    def write(fd, data):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if match in os.path.basename(name):
            count[0] += 1
            if count[0] > after:
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    builtins.open = fopen
    os.fdopen = fdopen
    os.write = write


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    from evalsuite.cli import main

    sys.exit(main(sys.argv[3:]))
