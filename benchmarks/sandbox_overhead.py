"""Cost of the bubblewrap code sandbox against the previous, unisolated execution, in one run.

"before" reproduces what evalsuite did until the sandbox (evalsuite/sandbox.py at 2ce79cd): g++ run
directly under RLIMIT_AS; each test case run directly in its own session under RLIMIT_CPU/AS/FSIZE with
``unshare -rn`` (a network namespace only) in front, stdout to a file. "after" is ``evalsuite.sandbox``
(bubblewrap, prlimit, seccomp, uid 65534 as root). Both compile with the same precompiled header of
LongProc's fixed includes and run the same gold programs of pseudo_to_code_0.5k on their test cases.
Measurements alternate before/after (the machine is shared and noisy); ratios come from medians.

    python benchmarks/sandbox_overhead.py                   # 12 programs, 3 rounds
    python benchmarks/sandbox_overhead.py --programs 30 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from evalsuite.sandbox import Sandbox, detect
from evalsuite.tasks.longproc._evaluators import PROGRAM_HEADER

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "longproc" / "data"


def _limits(mem_mb: int, cpu_s: int | None, fsize_mb: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cpu_s is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    return apply


class Before:
    """The previous execution path (no filesystem, PID or user isolation; network namespace only)."""

    def __init__(self, work: Path):
        self.work = work
        self.gxx = shutil.which("g++")
        self.unshare = shutil.which("unshare")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
        header = work / "prelude.h"
        header.write_text(PROGRAM_HEADER)
        subprocess.run([self.gxx, "-std=c++11", "-O", "-x", "c++-header", "-o", f"{header}.gch", str(header)],
                       check=True, capture_output=True)
        self.include = f'#include "{header}"\n'

    def compile(self, code: str, d: Path) -> Path:
        (d / "main.cpp").write_text(self.include + code)
        subprocess.run([self.gxx, "-std=c++11", "-O", "-o", str(d / "main.bin"), str(d / "main.cpp")], cwd=d,
                       capture_output=True, env=self.env, timeout=60, preexec_fn=_limits(2048, None, 256), check=True)
        return d / "main.bin"

    def run(self, exe: Path, stdin: bytes, d: Path) -> bytes:
        (d / "stdin.txt").write_bytes(stdin)
        with open(d / "stdin.txt", "rb") as fin, open(d / "stdout.txt", "wb") as fout:
            p = subprocess.Popen([self.unshare, "-rn", str(exe)], cwd=d, stdin=fin, stdout=fout,
                                 stderr=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                 preexec_fn=_limits(2048, 4, 64))
            p.wait(timeout=3)
        return (d / "stdout.txt").read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    mech = detect()
    if not mech.strong:
        raise SystemExit(f"no sandbox here: {mech.reason}")
    rows = json.loads((DATA / "pseudo_to_code" / "pseudo_to_code_0.5k.json").read_text())[: args.programs]
    progs = [("\n".join(r["code_lines"]), [c for c in r["testcases"][:10]]) for r in rows]

    tmp = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    before = Before(tmp)
    after = Sandbox()
    pch = after.prelude_header(PROGRAM_HEADER)
    assert pch is not None
    t = {k: [] for k in ("compile_before", "compile_after", "case_before", "case_after")}
    try:
        for rnd in range(args.rounds):
            for i, (code, cases) in enumerate(progs):
                order = ("before", "after") if (rnd + i) % 2 == 0 else ("after", "before")
                for side in order:
                    if side == "before":
                        d = Path(tempfile.mkdtemp(dir=tmp))
                        t0 = time.perf_counter()
                        exe = before.compile(code, d)
                        t["compile_before"].append(time.perf_counter() - t0)
                        for inp, out in cases:
                            t0 = time.perf_counter()
                            got = before.run(exe, ("\n".join(inp) + "\n").encode(), d)
                            t["case_before"].append(time.perf_counter() - t0)
                            assert got.decode() == "\n".join(out) + "\n"
                        shutil.rmtree(d)
                    else:
                        d = after.new_workdir()
                        t0 = time.perf_counter()
                        exe, msg = after.compile(f'#include "{pch}"\n' + code, d)
                        t["compile_after"].append(time.perf_counter() - t0)
                        assert exe is not None, msg
                        for inp, out in cases:
                            t0 = time.perf_counter()
                            res = after.run(exe, ("\n".join(inp) + "\n").encode(), d)
                            t["case_after"].append(time.perf_counter() - t0)
                            assert res.stdout.decode() == "\n".join(out) + "\n", res
                        shutil.rmtree(d)
    finally:
        after.close()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    per_program_before = med["compile_before"] + 10 * med["case_before"]
    per_program_after = med["compile_after"] + 10 * med["case_after"]
    out = {
        "mechanism": f"bubblewrap {mech.version}, seccomp {'on' if mech.seccomp else 'off'}",
        "programs": len(progs), "rounds": args.rounds, "cases_per_side": len(t["case_after"]),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "ratio_compile": round(med["compile_after"] / med["compile_before"], 2),
        "ratio_test_case": round(med["case_after"] / med["case_before"], 2),
        "extra_ms_per_test_case": round(1000 * (med["case_after"] - med["case_before"]), 1),
        "ratio_program_compile_plus_10_cases": round(per_program_after / per_program_before, 2),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:40s} {v}")


if __name__ == "__main__":
    main()
