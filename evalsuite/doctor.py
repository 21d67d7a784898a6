"""``evalsuite doctor``: check what this machine can run safely (today: the code sandbox).

Each check is one line: ``ok``, ``FAIL`` (a required check: exit 1) or ``warn``. The sandbox check is
end to end: a small program is compiled and run inside the sandbox and must find the host's files,
network and environment out of reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

PROBE_SECRET_VAR = "EVALSUITE_DOCTOR_PROBE"

# Prints one word per thing the program could reach; a contained program prints "contained".
PROBE_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <signal.h>
int main() {
    int leaks = 0;
    FILE* f = fopen("/etc/passwd", "r");
    if (f) { puts("reads-/etc/passwd"); leaks++; fclose(f); }
    if (getenv("%(var)s")) { puts("sees-the-environment"); leaks++; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0) {
        sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons(%(port)d);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(s, (sockaddr*)&a, sizeof a) == 0) { puts("reaches-the-network"); leaks++; }
    }
    FILE* w = fopen("%(outside)s", "w");
    if (w) { puts("writes-outside-its-folder"); leaks++; fclose(w); }
    if (%(harness)d > 100 && kill(%(harness)d, 0) == 0) { puts("can-signal-the-harness"); leaks++; }
    if (!leaks) puts("contained");
    return 0;
}
"""


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | FAIL | warn
    detail: str


def _compiler_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.splitlines()[0] if out else "?"


def _end_to_end(sandbox: Any) -> Check:
    import socket
    import tempfile

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    outside = os.path.join(tempfile.gettempdir(), f"evalsuite-doctor-{os.getpid()}.txt")
    os.environ[PROBE_SECRET_VAR] = "1"
    try:
        src = PROBE_PROGRAM % {"var": PROBE_SECRET_VAR, "port": listener.getsockname()[1], "outside": outside,
                               "harness": os.getpid()}
        work = sandbox.new_workdir()
        exe, msg = sandbox.compile(src, work)
        if exe is None:
            return Check("sandbox end to end", "FAIL", f"the probe program did not compile in the sandbox ({msg})")
        res = sandbox.run(exe, b"", work)
        out = res.stdout.decode("utf-8", "replace").split()
        if os.path.exists(outside):
            out.append("writes-outside-its-folder")
            os.unlink(outside)
        if res.status != "ok" or out != ["contained"]:
            return Check("sandbox end to end", "FAIL", f"probe program: status {res.status}, {' '.join(out) or 'no output'}")
        return Check("sandbox end to end", "ok", "a compiled program ran and could not read /etc/passwd, see the "
                                                 "environment, reach 127.0.0.1, write outside its folder or "
                                                 "signal evalsuite")
    finally:
        os.environ.pop(PROBE_SECRET_VAR, None)
        listener.close()
        sandbox.close()


def checks(compiler: str = "g++") -> list[Check]:
    from . import __version__
    from .sandbox import Sandbox, detect

    out = [Check("evalsuite", "ok", f"{__version__} on Python {sys.version.split()[0]}")]
    mech = detect()
    if mech.strong:
        d = mech.describe()
        who = f"uid {mech.uid}" if mech.uid is not None else f"uid {os.geteuid()} (not root)"
        out.append(Check("code sandbox", "ok",
                         f"bubblewrap {mech.version} ({mech.path}): {', '.join(d['namespaces'])} namespaces, "
                         f"seccomp {'on' if mech.seccomp else 'OFF (kernel lacks it)'}, programs run as {who}"))
    else:
        out.append(Check("code sandbox", "FAIL", mech.reason))
    path = shutil.which(compiler)
    if path is None:
        out.append(Check("C++ compiler", "FAIL", f"{compiler!r} is not on PATH (LongProc pseudo_to_code needs it)"))
    else:
        out.append(Check("C++ compiler", "ok", f"{path}: {_compiler_version(path)}"))
    if mech.strong and path is not None:
        try:
            out.append(_end_to_end(Sandbox(compiler=compiler)))
        except (OSError, RuntimeError) as exc:
            out.append(Check("sandbox end to end", "FAIL", str(exc)))
    return out


def main(as_json: bool = False, compiler: str = "g++") -> int:
    res = checks(compiler)
    failed = any(c.status == "FAIL" for c in res)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in res]}, indent=2))
    else:
        for c in res:
            print(f"{c.status:4s}  {c.name}: {c.detail}")
        print("all checks passed" if not failed else "some checks FAILED (see above)")
    return 1 if failed else 0


__all__ = ["Check", "checks", "main"]
