"""Hostile model-written programs through the CLI (`--backend replay` on longproc/pseudo_to_code_0.5k):
each one tries to escape, and the run must contain all of them (issue 16 §1).

The programs try to: write outside their folder, read a canary file placed here (by path and by
`#include`), read /etc/passwd at compile time, connect to a Unix socket (by path and abstract) and to a
TCP listener opened here, leave a double-forked `setsid` child that writes a marker 5 s later, kill the
harness, fork 500 times, allocate 4 GB, sleep forever, print 100 MB, read the harness's environment (a
secret is set in it) and /proc. Then: the run and a re-score exit 0; every program scores as a failed
test; the canary and the secret appear in no file of the results folder; no process of the run and no
temporary file remain; nothing reached the listeners. Controls show the attacks work outside the sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from evalsuite.sandbox import SANDBOX_UID, detect
from procscan import someone_elses

REPO = Path(__file__).resolve().parents[1].parent
DATA = REPO.parent / "shared" / "data" / "longproc" / "data"
TASK = "longproc/pseudo_to_code_0.5k"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason="LongProc data not present"),
    pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed"),
]


def _needs_sandbox() -> None:
    """Hostile programs run only where the sandbox is proven to work (never unsandboxed: they would kill
    the test's processes); in CI its absence is a failure."""
    m = detect()
    if not m.strong:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the strong sandbox: {m.reason}")
        pytest.skip(m.reason)
    from evalsuite.doctor import checks

    failed = [c for c in checks() if c.status == "FAIL"]
    assert failed == [], f"the sandbox's end-to-end probe failed; hostile programs not run: {failed}"


def _programs(ctx: dict) -> dict[str, str]:
    """name -> C++ body (the task's fixed includes are already there)."""
    return {
        "write outside its folder": r"""
#include <fcntl.h>
#include <unistd.h>
int main() {
    const char* paths[] = {"%(drop)s/outside.txt", "/tmp/evalsuite-hostile-%(tag)s", "../outside-%(tag)s",
                           "/outside-%(tag)s", "/dev/shm/outside-%(tag)s", "/usr/outside-%(tag)s", "%(drop)s/../x-%(tag)s"};
    for (const char* p : paths) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd >= 0) { write(fd, "pwned\n", 6); close(fd); cout << "wrote " << p << endl; }
    }
    cout << "done" << endl;
}""",
        "read a canary file": r"""
int main() {
    const char* paths[] = {"%(canary)s", "/etc/shadow", "/etc/passwd", "/root/.bashrc", "/proc/1/root%(canary)s"};
    for (const char* p : paths) {
        ifstream f(p);
        string s((istreambuf_iterator<char>(f)), istreambuf_iterator<char>());
        cout << p << ": " << s << endl;
    }
}""",
        "include a canary file": r"""
const char* leaked =
#include "%(canary)s"
;
int main() { cout << leaked << endl; }""",
        "include /etc/passwd": r"""
#include "/etc/passwd"
int main() { cout << 1 << endl; }""",
        "connect to a unix socket": r"""
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstddef>
int try_connect(const char* path, bool abstract_ns) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return -2;
    sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract_ns) { strcpy(a.sun_path + 1, path); len = offsetof(sockaddr_un, sun_path) + 1 + strlen(path); }
    else { strcpy(a.sun_path, path); len = sizeof a; }
    int r = connect(s, (sockaddr*)&a, len);
    if (r == 0) write(s, "pwned", 5);
    return r;
}
int main() {
    cout << "path " << try_connect("%(unix)s", false) << " abstract " << try_connect("%(abstract)s", true) << endl;
}""",
        "connect to a TCP listener": r"""
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <sys/syscall.h>
int main() {
    long s = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons(%(port)d);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    long r = s < 0 ? -2 : syscall(SYS_connect, s, (sockaddr*)&a, sizeof a);
    cout << "socket " << s << " connect " << r << endl;
}""",
        "double fork and setsid": r"""
#include <unistd.h>
#include <sys/stat.h>
int main() {
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            sleep(5);
            FILE* f = fopen("%(drop)s/marker", "w");
            if (f) { fputs("alive", f); fclose(f); }
            _exit(0);
        }
        _exit(0);
    }
    cout << "parent done" << endl;
}""",
        "kill the parent": r"""
#include <unistd.h>
#include <signal.h>
int main() {
    kill(getppid(), SIGKILL);
    kill(%(harness)d, SIGKILL);
    cout << "still here" << endl;
}""",
        "fork 500 times": r"""
#include <unistd.h>
int main() {
    int ok = 0;
    for (int i = 0; i < 500; i++) {
        pid_t p = fork();
        if (p == 0) { sleep(30); _exit(0); }
        if (p > 0) ok++;
    }
    cout << "forked " << ok << endl;
}""",
        "allocate 4 GB": r"""
int main() {
    vector<char> big((size_t)4 << 30, 1);
    cout << (int)big[12345] << endl;
}""",
        "sleep forever": r"""
#include <unistd.h>
int main() { while (true) sleep(1000); }""",
        "print 100 MB": r"""
int main() {
    string line(1 << 20, 'x');
    for (int i = 0; i < 100; i++) cout << line;
    cout << endl;
}""",
        "read the environment": r"""
#include <unistd.h>
extern char** environ;
int main() {
    const char* k = getenv("OPENAI_API_KEY");
    cout << "getenv " << (k ? k : "(none)") << endl;
    for (char** e = environ; *e; e++) cout << *e << endl;
    for (int pid = 1; pid < 64; pid++) {
        ifstream f("/proc/" + to_string(pid) + "/environ");
        string s((istreambuf_iterator<char>(f)), istreambuf_iterator<char>());
        if (!s.empty()) cout << pid << ": " << s << endl;
    }
    ifstream p("/proc/" + to_string(getppid()) + "/environ");
    string s((istreambuf_iterator<char>(p)), istreambuf_iterator<char>());
    cout << "parent: " << s << endl;
}""",
    }


def _cpp(body: str, ctx: dict) -> str:
    return "```cpp\n" + (body % ctx) + "\n```"


def _sandbox_processes(marker: str) -> list[str]:
    """Live processes of a sandbox: running as the sandbox uid, or whose command line names our scratch base
    (sandboxes of other test sessions on a shared machine are left out)."""
    mine = {os.getpid()}
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{d}")
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if (st.st_uid == SANDBOX_UID or marker in cmd or "/prog/main.bin" in cmd) and not someone_elses(int(d), mine, SANDBOX_UID):
            try:
                status = Path(f"/proc/{d}/status").read_text()
            except OSError:
                status = ""
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("State", "").strip().startswith(("Z", "X")):
                continue  # dead (a zombie waits for its parent, here maybe an init that never reaps)
            out.append(f"{d} uid={st.st_uid} {fields.get('Name', '').strip()} {fields.get('State', '').strip()} "
                       f"ppid={fields.get('PPid', '').strip()} {cmd[:200]}")
    return out


class _Listener:
    """Accepts connections on a TCP port, a Unix socket path and an abstract Unix socket; counts them."""

    def __init__(self, unix_path: str, abstract: str):
        self.hits: list[str] = []
        self.socks = []
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        self.port = tcp.getsockname()[1]
        ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ux.bind(unix_path)
        os.chmod(unix_path, 0o777)
        ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ab.bind("\0" + abstract)
        for name, s in (("tcp", tcp), ("unix", ux), ("abstract", ab)):
            s.listen(8)
            s.settimeout(0.2)
            self.socks.append((name, s))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            for name, s in self.socks:
                try:
                    conn, _ = s.accept()
                except (socket.timeout, OSError):
                    continue
                self.hits.append(name)
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for _, s in self.socks:
            s.close()


@pytest.fixture
def hostile_env(tmp_path):
    """A world-readable canary, a world-writable drop folder, listeners and a private TMPDIR, all under
    /tmp (readable by any uid, so only the sandbox can keep programs out of them)."""
    tag = secrets.token_hex(6)
    base = Path(tempfile.mkdtemp(prefix=f"evalsuite-hostile-test-{tag}-", dir="/tmp"))
    os.chmod(base, 0o755)
    canary_token = f"CANARY-{secrets.token_hex(12)}"
    canary = base / "canary.inc"
    canary.write_text(f'"{canary_token}"\n')
    os.chmod(canary, 0o644)
    drop = base / "drop"
    drop.mkdir()
    os.chmod(drop, 0o777)
    tmpdir = base / "tmp"
    tmpdir.mkdir()
    os.chmod(tmpdir, 0o1777)
    listener = _Listener(str(base / "sock"), f"evalsuite-hostile-{tag}")
    ctx = {"canary": str(canary), "drop": str(drop), "tag": tag, "unix": str(base / "sock"),
           "abstract": f"evalsuite-hostile-{tag}", "port": listener.port, "harness": os.getpid()}
    secret = f"sk-canary{secrets.token_hex(16)}"
    yield {"base": base, "ctx": ctx, "canary_token": canary_token, "secret": secret, "listener": listener,
           "tmpdir": tmpdir, "drop": drop, "tag": tag}
    listener.close()
    shutil.rmtree(base, ignore_errors=True)
    leftover = Path(f"/tmp/evalsuite-hostile-{tag}")
    if leftover.is_file():
        leftover.unlink()


def _all_text(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def test_hostile_programs_are_contained(cli, tmp_path, hostile_env):
    _needs_sandbox()
    env = hostile_env
    ctx = dict(env["ctx"])
    programs = _programs(ctx)
    names = list(programs)
    replay = tmp_path / "hostile.jsonl"
    with replay.open("w") as f:
        for i, name in enumerate(names):
            f.write(json.dumps({"task": TASK, "index": i, "output": _cpp(programs[name], ctx)}) + "\n")
    tmp_before = {p.name for p in Path("/tmp").iterdir()}
    procs_before = _sandbox_processes(str(env["tmpdir"]))
    run_env = {"OPENAI_API_KEY": env["secret"], "TMPDIR": str(env["tmpdir"])}
    t0 = time.time()
    r = cli("run", "--tasks", TASK, "--backend", "replay", "-B", f"file={replay}", "-T", f"data_dir={DATA}",
            "--limit", str(len(names)), "--run-id", "hostile", "--no-progress", "--json", env=run_env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    elapsed = time.time() - t0
    run_dir = tmp_path / "results" / "hostile"
    scores = next(json.loads(p.read_text()) for p in run_dir.rglob("scores.json"))
    acc = scores["metrics"][0]
    assert acc["name"] == "accuracy" and acc["value"] == 0.0 and scores["n"] == len(names)
    why = {names[int(sid.rsplit("_", 1)[1])]: info for sid, info in acc["details"]["samples"].items()}
    assert set(why) == set(names)
    for name, info in why.items():
        assert "error" in info, (name, info)  # every program failed its first test

    # what each program met
    assert why["include a canary file"]["error"] == "compilation error"
    assert why["include /etc/passwd"]["error"] == "compilation error"
    assert why["include /etc/passwd"]["compiler"].startswith("compilation error (exit")  # no compiler text kept
    assert why["sleep forever"]["error"] == "timeout"
    assert why["print 100 MB"]["error"] == "output limit"
    assert why["allocate 4 GB"]["error"].startswith("killed by signal")
    assert why["write outside its folder"]["got"] == "done\n"
    assert why["kill the parent"]["got"] == "still here\n"
    forked = int(why["fork 500 times"]["got"].split()[1])
    assert forked < 16, why["fork 500 times"]
    assert why["connect to a unix socket"]["got"].startswith("path -")
    assert "abstract -" in why["connect to a unix socket"]["got"]
    assert "connect -" in why["connect to a TCP listener"]["got"] or "socket -" in why["connect to a TCP listener"]["got"]
    assert "getenv (none)" in why["read the environment"]["got"]

    # the same results again through `score` (the harness survived the kill attempt)
    r2 = cli("score", str(run_dir), "--json", env=run_env, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]

    # nothing reached the host
    assert env["listener"].hits == []
    assert list(env["drop"].iterdir()) == []
    assert not Path(f"/tmp/evalsuite-hostile-{env['tag']}").exists()
    # the double-forked child (it would write its marker 5 s after the run) is dead
    time.sleep(max(0.0, 10.5 - (time.time() - t0 - elapsed)))
    assert not (env["drop"] / "marker").exists()
    assert _sandbox_processes(str(env["tmpdir"])) == procs_before
    # no temporary file or folder is left: TMPDIR is empty, and nothing new in /tmp belongs to the sandbox
    assert list(env["tmpdir"].iterdir()) == []
    new = [p for p in Path("/tmp").iterdir() if p.name not in tmp_before]
    assert [p for p in new if p.name.startswith("evalsuite-sandbox-") or p.lstat().st_uid == SANDBOX_UID] == []

    # neither the canary nor the secret is in any file of the results (in any case)
    needles = [env["canary_token"], env["secret"]]
    needles += [n.upper() for n in needles] + [n.lower() for n in needles]
    for path, data in _all_text(run_dir):
        for n in needles:
            assert n.encode() not in data, f"{n[:12]}... found in {path}"
    # the 100 MB stayed out: every file is small
    assert max(len(d) for _, d in _all_text(run_dir)) < 2 * 1024 * 1024


def test_the_attacks_work_without_a_sandbox(tmp_path, hostile_env):
    """Controls: compiled and run directly, the canary, TCP and environment programs do reach their
    targets, so the containment test above can fail."""
    from evalsuite.tasks.longproc._evaluators import PROGRAM_HEADER

    env = hostile_env
    ctx = dict(env["ctx"])
    progs = _programs(ctx)
    out = {}
    for name in ("read a canary file", "include a canary file", "connect to a TCP listener", "read the environment"):
        src = tmp_path / "p.cpp"
        src.write_text(PROGRAM_HEADER + progs[name] % ctx)
        exe = tmp_path / "p.bin"
        subprocess.run(["g++", "-std=c++11", "-O", "-o", str(exe), str(src)], check=True, capture_output=True)
        out[name] = subprocess.run([str(exe)], capture_output=True, timeout=30,
                                   env={"OPENAI_API_KEY": env["secret"], "PATH": "/usr/bin:/bin"}).stdout.decode()
    assert env["canary_token"] in out["read a canary file"]
    assert env["canary_token"] in out["include a canary file"]
    assert "connect 0" in out["connect to a TCP listener"]
    assert env["secret"] in out["read the environment"]
    deadline = time.time() + 5
    while "tcp" not in env["listener"].hits and time.time() < deadline:
        time.sleep(0.1)
    assert "tcp" in env["listener"].hits


def _start_sleeping_run(tmp_path: Path, env: dict, run_id: str, n: int) -> subprocess.Popen:
    """`evalsuite run` in the background on n programs that sleep forever (60 s per test case); returns
    once the first program runs in its sandbox."""
    import sys

    from conftest import cli_env

    replay = tmp_path / f"{run_id}.jsonl"
    body = "#include <unistd.h>\nint main() { while (true) sleep(1000); }"
    with replay.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"task": TASK, "index": i, "output": _cpp(body, {})}) + "\n")
    p = subprocess.Popen([sys.executable, "-m", "evalsuite.cli", "run", "--tasks", TASK, "--backend", "replay",
                          "-B", f"file={replay}", "-T", f"data_dir={DATA}", "-T", "timeout=60", "--limit", str(n),
                          "--run-id", run_id, "--no-progress"], cwd=tmp_path,
                         env=cli_env({"TMPDIR": str(env["tmpdir"])}), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any("/prog/main.bin" in x for x in _sandbox_processes(str(env["tmpdir"]))):
        time.sleep(0.2)
    assert any("/prog/main.bin" in x for x in _sandbox_processes(str(env["tmpdir"]))), "the program never started"
    return p


def _no_sandbox_process_within(env: dict, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and _sandbox_processes(str(env["tmpdir"])):
        time.sleep(0.2)
    assert _sandbox_processes(str(env["tmpdir"])) == []


def test_a_killed_run_leaves_no_process_and_its_scratch_goes_with_the_next_run(cli, tmp_path, hostile_env):
    """SIGKILL of evalsuite while a sandboxed program sleeps: the program dies with it (no orphan); the
    scratch folder it left is removed by the next `run`."""
    _needs_sandbox()
    env = hostile_env
    p = _start_sleeping_run(tmp_path, env, "killed", 2)
    p.kill()
    p.wait()
    _no_sandbox_process_within(env, 10)
    left = list(env["tmpdir"].iterdir())
    assert [x.name for x in left if x.name.startswith("evalsuite-sandbox-")], left  # SIGKILL cannot clean...
    r = cli("run", "--tasks", "longproc/path_traversal_0.5k", "--backend", "gold", "-T", f"data_dir={DATA}",
            "--limit", "1", "--run-id", "next", "--no-progress", env={"TMPDIR": str(env["tmpdir"])})
    assert r.returncode == 0, r.stderr[-2000:]
    assert list(env["tmpdir"].iterdir()) == []  # ...the next run or score does


def test_sigterm_during_scoring_removes_the_scratch_folder(tmp_path, hostile_env):
    import signal

    _needs_sandbox()
    env = hostile_env
    p = _start_sleeping_run(tmp_path, env, "termed", 1)
    assert any(x.name.startswith("evalsuite-sandbox-") for x in env["tmpdir"].iterdir())
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) != 0
    _no_sandbox_process_within(env, 10)
    assert list(env["tmpdir"].iterdir()) == []
    assert stat.S_IMODE(os.stat(env["tmpdir"]).st_mode) == 0o1777
