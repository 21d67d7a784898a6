"""Compile and run untrusted C++ (model-written programs) under limits.

Used by LongProc's pseudo_to_code, whose official evaluator compiles the model's program with
``g++ -std=c++11 -O`` and runs it on the first 10 test cases with a 3-second timeout each, with no other
protection. Here every program runs:

* in its own process and session (the whole process group is killed on timeout), with ``cwd`` in a
  fresh temporary directory that is removed afterwards, a minimal environment, stdin and stdout as
  files in that directory;
* under ``RLIMIT_CPU`` (the per-test timeout rounded up, plus one second), ``RLIMIT_AS`` (address
  space, default 2 GiB), ``RLIMIT_FSIZE`` (files and stdout, default 64 MiB) and ``RLIMIT_CORE`` 0,
  plus the wall-clock per-test timeout (3 s as upstream);
* without network: in a new, empty network namespace (``unshare -rn``: a user namespace, so no
  privileges are needed; only a down loopback exists inside) when the kernel allows it; otherwise
  with a preloaded shim (``LD_PRELOAD``, compiled here with the same compiler) whose ``socket()``
  fails with EACCES. :func:`network_isolation` says which one is active; the shim stops programs
  that go through libc (every ordinary C++ program) but not hand-written system calls, which is why
  the namespace is preferred. ``EVALSUITE_SANDBOX_NET=preload`` forces the shim (tests use it).

The compiler itself runs with the same memory limit and a 60-second timeout. Nothing here ever passes
model text to ``eval``/``exec``: programs are compiled, never interpreted by Python.
"""

from __future__ import annotations

import hashlib
import math
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

_SHIM_SOURCE = r"""
#include <errno.h>
extern "C" int socket(int domain, int type, int protocol) {
    (void)domain; (void)type; (void)protocol;
    errno = EACCES;
    return -1;
}
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0
    """Wall-clock limit per test case (upstream: 3 s)."""
    memory_mb: int = 2048
    """Address-space limit of the program (RLIMIT_AS)."""
    output_mb: int = 64
    """Largest file the program may write, stdout included (RLIMIT_FSIZE)."""
    compile_timeout_s: float = 60.0

    def describe(self) -> dict[str, float]:
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "output_mb": self.output_mb,
                "compile_timeout_s": self.compile_timeout_s, "cpu_s": self.cpu_seconds()}

    def cpu_seconds(self) -> int:
        return int(math.ceil(self.timeout_s)) + 1


@dataclass(frozen=True)
class RunResult:
    status: str
    """``ok`` (exited, any exit code), ``timeout``, ``signal`` (killed by a signal: memory, CPU, output
    limits or a crash) or ``error`` (could not start)."""
    stdout: bytes = b""
    returncode: int | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class TestReport:
    passed: bool
    reason: str
    """``''`` when passed; else ``compilation error``, ``inconsistent``, ``timeout``, ``decode error``,
    ``killed by signal N``, ..."""
    failed_test: int | None = None
    n_run: int = 0
    details: dict[str, object] = field(default_factory=dict)


# -- network isolation ---------------------------------------------------------------------------------

_net_lock = threading.Lock()
_net_cache: dict[str, str] = {}


def network_isolation() -> str:
    """``netns`` (``unshare -rn`` works here) or ``preload`` (the socket shim); cached per process."""
    forced = os.environ.get("EVALSUITE_SANDBOX_NET", "").strip().lower()
    if forced in ("netns", "preload"):
        return forced
    with _net_lock:
        if "mode" not in _net_cache:
            exe = shutil.which("unshare")
            ok = False
            if exe:
                try:
                    ok = subprocess.run([exe, "-rn", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                                        timeout=10).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
            _net_cache["mode"] = "netns" if ok else "preload"
            _net_cache["unshare"] = exe or ""
        return _net_cache["mode"]


def _limit_child(memory_mb: int, cpu_s: int | None, output_mb: int):
    """A ``preexec_fn`` setting the resource limits in the child (before exec)."""
    mem = memory_mb * 1024 * 1024
    fsize = output_mb * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cpu_s is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))

    return apply


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def _minimal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
    env.update(extra or {})
    return env


class Sandbox:
    """Compiles C++ sources and runs the binaries under :class:`Limits`, one temporary directory per
    program (see the module docstring)."""

    def __init__(self, compiler: str = "g++", flags: Sequence[str] = ("-std=c++11", "-O"),
                 limits: Limits | None = None, network: str | None = None):
        self.compiler_name = compiler
        self.compiler = shutil.which(compiler)
        self.flags = tuple(flags)
        self.limits = limits or Limits()
        self.network = network or network_isolation()
        self._shim: Path | None = None
        self._shim_dir: tempfile.TemporaryDirectory | None = None
        self._pch: dict[str, Path | None] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.compiler is not None

    def missing_reason(self) -> str:
        return (f"no C++ compiler: {self.compiler_name!r} is not on PATH (install g++, or pass "
                f"-T cxx=<compiler>); compiled-program samples are skipped, not scored 0")

    def describe(self) -> dict[str, object]:
        return {"compiler": self.compiler, "flags": list(self.flags), "network_isolation": self.network,
                "limits": self.limits.describe()}

    # -- building ----------------------------------------------------------------------------------------
    def compile(self, source: str, workdir: Path) -> tuple[Path | None, str]:
        """Compile ``source`` into ``workdir``; (binary, '') or (None, compiler message)."""
        if self.compiler is None:
            raise RuntimeError(self.missing_reason())
        src = workdir / "main.cpp"
        exe = workdir / "main.bin"
        src.write_text(source, encoding="utf-8")
        cmd = [self.compiler, *self.flags, "-o", str(exe), str(src)]
        try:
            proc = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.limits.compile_timeout_s, env=_minimal_env(),
                                  preexec_fn=_limit_child(max(self.limits.memory_mb, 2048), None, 256))
        except subprocess.TimeoutExpired:
            return None, "compilation timeout"
        if proc.returncode != 0 or not exe.exists():
            return None, proc.stderr.decode("utf-8", "replace")[-2000:]
        return exe, ""

    def _aux_dir(self) -> Path:
        if self._shim_dir is None:
            self._shim_dir = tempfile.TemporaryDirectory(prefix="evalsuite-sbx-aux-")
        return Path(self._shim_dir.name)

    def prelude_header(self, prelude: str) -> Path | None:
        """A precompiled header for ``prelude`` (built once, same compiler and flags), or None when the
        compiler cannot build one. Programs then start with ``#include "<it>"`` instead of the prelude
        text: the same declarations, compiled three to four times faster."""
        key = hashlib.sha256(prelude.encode("utf-8")).hexdigest()[:16]
        with self._lock:
            if key not in self._pch:
                if self.compiler is None:
                    raise RuntimeError(self.missing_reason())
                header = self._aux_dir() / f"prelude-{key}.h"
                header.write_text(prelude, encoding="utf-8")
                try:
                    ok = subprocess.run([self.compiler, *self.flags, "-x", "c++-header", "-o", str(header) + ".gch",
                                         str(header)], capture_output=True, timeout=self.limits.compile_timeout_s,
                                        stdin=subprocess.DEVNULL).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
                self._pch[key] = header if ok else None
            return self._pch[key]

    def _preload_shim(self) -> Path:
        with self._lock:
            if self._shim is None:
                if self.compiler is None:
                    raise RuntimeError(self.missing_reason())
                d = self._aux_dir()
                (d / "noshim.cpp").write_text(_SHIM_SOURCE)
                out = d / "nosocket.so"
                subprocess.run([self.compiler, "-shared", "-fPIC", "-O", "-o", str(out), str(d / "noshim.cpp")],
                               check=True, capture_output=True, timeout=60)
                self._shim = out
            return self._shim

    def close(self) -> None:
        if self._shim_dir is not None:
            self._shim_dir.cleanup()
            self._shim_dir = None
            self._shim = None
            self._pch = {}

    # -- running -----------------------------------------------------------------------------------------
    def run(self, exe: Path, stdin: bytes, workdir: Path) -> RunResult:
        """Run ``exe`` once with ``stdin`` under the limits and without network."""
        lim = self.limits
        (workdir / "stdin.txt").write_bytes(stdin)
        out_path = workdir / "stdout.txt"
        cmd = [str(exe)]
        env = _minimal_env()
        if self.network == "netns":
            cmd = [_net_cache.get("unshare") or shutil.which("unshare") or "unshare", "-rn", *cmd]
        else:
            env["LD_PRELOAD"] = str(self._preload_shim())
        t0 = time.perf_counter()
        with open(workdir / "stdin.txt", "rb") as fin, open(out_path, "wb") as fout:
            try:
                proc = subprocess.Popen(cmd, cwd=workdir, stdin=fin, stdout=fout, stderr=subprocess.DEVNULL,
                                        env=env, start_new_session=True, close_fds=True,
                                        preexec_fn=_limit_child(lim.memory_mb, lim.cpu_seconds(), lim.output_mb))
            except OSError:
                return RunResult("error")
            try:
                rc = proc.wait(timeout=lim.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return RunResult("timeout", b"", None, time.perf_counter() - t0)
            finally:
                try:  # no stray children of the program survive it
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        elapsed = time.perf_counter() - t0
        data = out_path.read_bytes()
        if rc < 0:
            return RunResult("signal", data, rc, elapsed)
        return RunResult("ok", data, rc, elapsed)

    def run_tests(self, source: str, testcases: Sequence[Sequence[Sequence[str]]], max_tests: int = 10,
                  prelude: str = "", precompile: bool = True) -> TestReport:
        """Compile ``prelude + source`` and run the first ``max_tests`` cases ``[[stdin lines], [stdout lines]]``.

        A non-empty ``prelude`` (fixed includes) is compiled once into a precompiled header when
        ``precompile`` and the compiler can; the program is then ``#include "<header>"`` + ``source``
        (worth it for batches: building the header costs a few compiles).

        As upstream: stdin is the input lines joined by "\\n" plus "\\n"; the output must equal the
        expected lines joined by "\\n" plus "\\n", byte for byte after UTF-8 decoding; the exit code is
        not checked; the first failing case ends the run.
        """
        with tempfile.TemporaryDirectory(prefix="evalsuite-sbx-") as tmp:
            work = Path(tmp)
            if prelude:
                pch = self.prelude_header(prelude) if precompile else None
                source = (f'#include "{pch}"\n' if pch is not None else prelude) + source
            exe, msg = self.compile(source, work)
            if exe is None:
                return TestReport(False, "compilation error", None, 0, {"compiler": msg[-500:]})
            n = 0
            for i, case in enumerate(list(testcases)[:max_tests]):
                inputs, outputs = case[0], case[1]
                res = self.run(exe, ("\n".join(inputs) + "\n").encode("utf-8"), work)
                n += 1
                if res.status == "timeout":
                    return TestReport(False, "timeout", i, n)
                if res.status == "error":
                    return TestReport(False, "exec error", i, n)
                try:
                    got = res.stdout.decode("utf-8")
                except UnicodeDecodeError:
                    return TestReport(False, "decode error", i, n)
                expected = "\n".join(outputs) + "\n"
                if got != expected:
                    details: dict[str, object] = {"expected": expected[:200], "got": got[:200]}
                    if res.status == "signal":
                        details["signal"] = -int(res.returncode or 0)
                        return TestReport(False, f"killed by signal {-int(res.returncode or 0)}", i, n, details)
                    return TestReport(False, "inconsistent", i, n, details)
            return TestReport(True, "", None, n)


__all__ = ["Limits", "RunResult", "Sandbox", "TestReport", "network_isolation"]
