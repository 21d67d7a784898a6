"""The C++ sandbox (evalsuite/sandbox.py): isolation, limits, cleanup, the refusal without a sandbox,
the explicit unsafe opt-in, and the first-10-tests rule. The hostile-program corpus through the CLI is in
tests/engine/test_sandbox_hostile.py."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import evalsuite.sandbox as sbx
from evalsuite.sandbox import SANDBOX_UID, Limits, Sandbox, detect, seccomp_filter, sweep_stale
from procscan import someone_elses

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

HEADER = "#include <iostream>\n#include <vector>\n#include <cstring>\nusing namespace std;\n"


def strong() -> None:
    m = detect()
    if not m.strong:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the strong sandbox: {m.reason}")
        pytest.skip(m.reason)


@pytest.fixture
def no_bwrap(monkeypatch):
    """This process sees no bubblewrap (as on a machine without it)."""
    monkeypatch.setenv("EVALSUITE_BWRAP", "none")
    detect(refresh=True)
    yield
    monkeypatch.delenv("EVALSUITE_BWRAP")
    detect(refresh=True)


def _run(sb: Sandbox, body: str, stdin: bytes = b""):
    work = sb.new_workdir()
    exe, msg = sb.compile(HEADER + body, work)
    assert exe is not None, msg
    return sb.run(exe, stdin, work)


# -- the mechanism ----------------------------------------------------------------------------------

def test_bubblewrap_is_the_mechanism_and_is_described():
    strong()
    m = detect()
    assert m.name == "bubblewrap" and m.version and m.path
    d = Sandbox().describe()
    assert d["mode"] == "bubblewrap" and d["mechanism"]["strong"] is True
    assert set(d["mechanism"]["namespaces"]) >= {"user", "mount", "pid", "net", "ipc", "uts"}
    if os.geteuid() == 0:
        assert m.uid == SANDBOX_UID


def test_without_bubblewrap_nothing_runs_and_the_reason_says_how_to_get_it(no_bwrap):
    m = detect()
    assert not m.strong and m.name == "none"
    sb = Sandbox()
    assert sb.mode == "none" and not sb.available
    reason = sb.missing_reason()
    assert "bubblewrap" in reason and "user namespaces" in reason and "-T unsafe_code=true" in reason
    with pytest.raises(RuntimeError):
        sb.run_tests("int main() {}", [[["1"], ["1"]]])


def test_the_unsafe_opt_in_runs_programs_and_says_so(no_bwrap):
    sb = Sandbox(unsafe=True)
    assert sb.mode == "unsafe" and sb.available
    assert "WITHOUT isolation" in sb.describe()["warning"]
    rep = sb.run_tests("int main() { int a, b; cin >> a >> b; cout << a + b << endl; }\n",
                       [[["1 2"], ["3"]], [["5 5"], ["10"]]], prelude=HEADER)
    sb.close()
    assert rep.passed and rep.n_run == 2


def test_the_opt_in_does_not_weaken_a_working_sandbox():
    strong()
    assert Sandbox(unsafe=True).mode == "bubblewrap"


def test_the_old_preload_shim_is_gone():
    src = Path(sbx.__file__).read_text()
    assert "LD_PRELOAD" not in src.replace("no LD_PRELOAD", "")
    assert not hasattr(sbx, "network_isolation")


def test_seccomp_numbers_match_the_kernel_headers():
    headers = {"x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "aarch64": "/usr/include/asm-generic/unistd.h"}
    checked = 0
    for machine, path in headers.items():
        if not os.path.exists(path):
            continue
        text = Path(path).read_text()
        for name, nr in sbx.SYSCALLS[machine][1].items():
            m = re.search(rf"#define __NR_{name}\s+(\d+)\b", text)
            assert m and int(m.group(1)) == nr, (machine, name)
            checked += 1
    if checked == 0:
        pytest.skip("no kernel headers")
    prog = seccomp_filter("x86_64")
    assert prog is not None and len(prog) % 8 == 0 and len(prog) // 8 < 4096
    assert seccomp_filter("sparc") is None


# -- isolation ----------------------------------------------------------------------------------------

def test_the_compiler_cannot_include_host_files_and_its_messages_are_not_kept(tmp_path):
    strong()
    secret = tmp_path / "secret.h"
    secret.write_text('"TOPSECRET-include"\n')
    os.chmod(tmp_path, 0o755)
    sb = Sandbox()
    for inc in ("/etc/passwd", str(secret), "/proc/self/environ"):
        rep = sb.run_tests(f'const char* s =\n#include "{inc}"\n;\nint main() {{ cout << s; }}\n', [[["1"], ["1"]]],
                           prelude=HEADER)
        assert rep.reason == "compilation error", inc
        assert rep.details == {"compiler": "compilation error (exit 1)"}
    sb.close()


FS_PROBE = r"""
#include <fstream>
#include <unistd.h>
#include <sys/stat.h>
int main() {
    const char* reads[] = {"/etc/passwd", "/etc/shadow", "/root", "/home", "/run", "/tmp", "%s"};
    for (const char* p : reads) { struct stat st; cout << (stat(p, &st) == 0 ? "sees " : "no ") << p << endl; }
    ofstream w("/work/here.txt"); w << "x"; w.close();
    cout << (access("/work/here.txt", F_OK) == 0 ? "writes work" : "no work") << endl;
    const char* writes[] = {"/x", "/usr/x", "/dev/x", "/dev/shm/x", "/prog/x"};
    for (const char* p : writes) { ofstream f(p); cout << (f.good() ? "writes " : "no ") << p << endl; }
    cout << "uid " << getuid() << " env " << (getenv("HOME") ? "home" : "none") << endl;
}
"""


def test_a_program_sees_only_the_toolchain_and_writes_only_its_folder(tmp_path):
    strong()
    res = _run(Sandbox(), FS_PROBE % str(tmp_path))
    out = res.stdout.decode()
    assert res.status == "ok", out
    for p in ("/etc/passwd", "/etc/shadow", "/root", "/home", "/run", "/tmp", str(tmp_path)):
        assert f"no {p}\n" in out, out
    assert "writes work" in out
    for p in ("/x", "/usr/x", "/dev/x", "/dev/shm/x", "/prog/x"):
        assert f"no {p}\n" in out, out
    assert "env none" in out


SOCKET_PROGRAM = """
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/syscall.h>
#include <unistd.h>
int main() {
    int port; cin >> port;
    long s = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (s < 0) { cout << "no socket" << endl; return 0; }
    sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cout << (connect(s, (sockaddr*)&a, sizeof a) == 0 ? "connected" : "refused") << endl;
    return 0;
}
"""


def test_a_program_cannot_reach_a_listening_socket(tmp_path):
    strong()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        sb = Sandbox()
        work = sb.new_workdir()
        exe, msg = sb.compile(HEADER + SOCKET_PROGRAM, work)
        assert exe is not None, msg
        # control: the same binary outside the sandbox does connect (so the test can fail)
        out = subprocess.run([str(exe)], input=f"{port}\n".encode(), capture_output=True, timeout=10).stdout
        assert out == b"connected\n"
        listener.accept()[0].close()
        res = sb.run(exe, f"{port}\n".encode(), work)
        sb.close()
        assert res.status == "ok" and res.stdout in (b"refused\n", b"no socket\n")
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_the_harness_environment_is_out_of_reach(monkeypatch):
    strong()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-envcanary-123456")
    body = r"""
#include <fstream>
#include <unistd.h>
extern char** environ;
int main() {
    for (char** e = environ; *e; e++) cout << *e << endl;
    for (int pid = 1; pid < 32; pid++) {
        ifstream f("/proc/" + to_string(pid) + "/environ");
        string s((istreambuf_iterator<char>(f)), istreambuf_iterator<char>());
        cout << s << endl;
    }
}"""
    res = _run(Sandbox(), body)
    assert res.status == "ok"
    assert b"sk-envcanary" not in res.stdout and b"OPENAI" not in res.stdout


# -- limits ----------------------------------------------------------------------------------------

def test_infinite_loop_and_its_children_are_killed_at_the_timeout():
    sb = Sandbox(limits=Limits(timeout_s=0.5))
    if not sb.available:
        pytest.skip(sb.missing_reason())
    body = "#include <unistd.h>\nint main() { fork(); while (true) {} }\n"
    t0 = time.perf_counter()
    res = _run(sb, body)
    assert res.status == "timeout"
    assert time.perf_counter() - t0 < 5
    sb.close()


def test_memory_limit():
    strong()
    sb = Sandbox(limits=Limits(memory_mb=256))
    res = _run(sb, "int main() { vector<char> v((size_t)1 << 30, 1); cout << (int)v[5] << endl; }\n")
    assert res.status == "signal" and res.stdout == b""  # bad_alloc -> abort
    sb.close()


def test_output_is_capped_and_the_program_stopped():
    strong()
    sb = Sandbox(limits=Limits(output_mb=1))
    t0 = time.perf_counter()
    res = _run(sb, "int main() { string s(1 << 16, 'x'); while (true) cout << s; }\n")
    assert res.status == "output" and len(res.stdout) <= 1 << 20
    assert time.perf_counter() - t0 < 3  # stopped at the cap, not at the timeout
    sb.close()


def test_cpu_limit_backs_up_the_wall_clock():
    assert Limits(timeout_s=3.0).cpu_seconds() == 4


FORKER = r"""
#include <unistd.h>
int main() {
    int ok = 0;
    for (int i = 0; i < 500; i++) { pid_t p = fork(); if (p == 0) { sleep(2); _exit(0); } if (p > 0) ok++; }
    cout << ok << endl;
}"""


def test_fork_bombs_are_bounded_per_sandbox_and_do_not_starve_each_other():
    """RLIMIT_NPROC counts per sandbox (each has its own user namespace): two fork bombs at once each get
    the limit, and an honest program run alongside still starts."""
    strong()
    sb = Sandbox(limits=Limits(timeout_s=5, processes=8))
    work = sb.new_workdir()
    exe, msg = sb.compile(HEADER + FORKER, work)
    assert exe is not None, msg
    ok_work = sb.new_workdir()
    ok_exe, msg = sb.compile(HEADER + "int main() { cout << 42 << endl; }", ok_work)
    assert ok_exe is not None, msg
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(sb.run(exe, b"", work))) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    honest = sb.run(ok_exe, b"", ok_work)
    for t in threads:
        t.join()
    sb.close()
    assert honest.stdout == b"42\n"
    for r in results:
        assert r.status == "ok" and 0 < int(r.stdout) < 8, r


def test_a_double_forked_setsid_child_dies_with_the_program(tmp_path):
    strong()
    body = r"""
#include <unistd.h>
int main() {
    if (fork() == 0) { setsid(); if (fork() == 0) { sleep(30); _exit(0); } _exit(0); }
    cout << "bye" << endl;
}"""
    sb = Sandbox()
    res = _run(sb, body)
    sb.close()
    assert res.stdout == b"bye\n"
    time.sleep(0.2)
    alive = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if (b"/prog/main.bin" in Path(f"/proc/{d}/cmdline").read_bytes()
                        and not someone_elses(int(d), {os.getpid()}, SANDBOX_UID)):
                    alive.append(d)
            except OSError:
                pass
    assert alive == []


def test_a_program_cannot_signal_the_harness():
    strong()
    body = f"""
#include <unistd.h>
#include <signal.h>
int main() {{ kill(getppid(), SIGKILL); kill({os.getpid()}, SIGKILL); cout << "tried" << endl; }}"""
    res = _run(Sandbox(), body)
    assert res.stdout == b"tried\n"  # and this test process is still alive


# -- cleanup ---------------------------------------------------------------------------------------

def test_scratch_folders_live_under_one_root_removed_by_close():
    sb = Sandbox()
    if not sb.available:
        pytest.skip(sb.missing_reason())
    rep = sb.run_tests("int main() { int a, b; cin >> a >> b; cout << a + b << endl; }\n",
                       [[["1 2"], ["3"]], [["5 5"], ["10"]]], prelude=HEADER)
    assert rep.passed and rep.n_run == 2
    root = sb._root.path
    assert root.name.startswith("evalsuite-sandbox-")
    assert sorted(p.name.split("-")[0] for p in root.iterdir() if p.name != ".lock") == ["pch"]  # sample dir gone
    assert (next(root.glob("pch-*")) / "prelude.h.gch").is_file()
    sb.close()
    assert not root.exists()


def test_sweep_removes_a_dead_owners_root_and_keeps_a_live_one(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_SANDBOX_TMP", str(tmp_path))
    code = ("import os, evalsuite.sandbox as s; r = s._ScratchRoot(None); (r.path / 'big').write_bytes(b'x' * 1000); "
            "print(r.path, flush=True); os._exit(0) if os.environ.get('DIE') else input()")
    dead = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DIE": "1"}, capture_output=True, text=True,
                          timeout=60)
    dead_root = Path(dead.stdout.strip())
    assert dead_root.is_dir()  # os._exit: no cleanup ran, as after SIGKILL
    live = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    live_root = Path(live.stdout.readline().strip())
    try:
        assert not dead_root.exists()  # the next sandbox swept it when it made its own root
        assert sweep_stale([tmp_path]) == 0 and live_root.is_dir()  # a live owner's root stays
    finally:
        live.communicate("\n", timeout=60)
    assert not live_root.exists()  # its own exit removed it
    again = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DIE": "1"}, capture_output=True,
                           text=True, timeout=60)
    assert Path(again.stdout.strip()).is_dir()
    assert sweep_stale([tmp_path]) == 1  # what `evalsuite run` / `score` call first
    assert list(tmp_path.iterdir()) == []


def test_sigterm_removes_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_SANDBOX_TMP", str(tmp_path))
    code = "import evalsuite.sandbox as s, time; r = s._ScratchRoot(None); print(r.path, flush=True); time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    root = Path(p.stdout.readline().strip())
    assert root.is_dir()
    p.terminate()
    assert p.wait(timeout=30) == -15  # still dies of SIGTERM
    assert not root.exists()


# -- upstream rules --------------------------------------------------------------------------------

def test_only_the_first_ten_cases_run_and_exit_code_is_ignored():
    sb = Sandbox()
    if not sb.available:
        pytest.skip(sb.missing_reason())
    src = HEADER + "int main() { int a; cin >> a; cout << a * 2 << endl; return 7; }\n"
    cases = [[[str(i)], [str(2 * i)]] for i in range(10)] + [[["1"], ["999"]]]
    rep = sb.run_tests(src, cases)
    assert rep.passed and rep.n_run == 10
    rep = sb.run_tests(src, cases, max_tests=11)
    assert not rep.passed and rep.reason == "inconsistent" and rep.failed_test == 10
    sb.close()


def test_compile_error_and_missing_compiler():
    sb = Sandbox()
    if sb.available:
        rep = sb.run_tests("int main( {", [[["1"], ["1"]]])
        assert not rep.passed and rep.reason == "compilation error"
    sb = Sandbox(compiler="no-such-compiler-xyz")
    assert not sb.available and "no C++ compiler" in sb.missing_reason()


def test_a_compiler_reached_through_symlinks_outside_usr_runs_in_the_sandbox():
    """`-T cxx=c++` on Debian is /usr/bin/c++ -> /etc/alternatives/c++ -> /usr/bin/g++: the sandbox runs the
    compiler it resolves to (it does not mount /etc), instead of failing every program with exit 127."""
    strong()
    found = shutil.which("c++")
    if found is None or os.path.realpath(found) == found:
        pytest.skip("no c++ symlink on this machine")
    sb = Sandbox(compiler="c++")
    src = HEADER + "int main() { int a; cin >> a; cout << a + 1 << endl; }\n"
    rep = sb.run_tests(src, [[["1"], ["2"]]])
    sb.close()
    assert rep.passed, rep


def test_the_precompiled_header_is_built_once_for_concurrent_callers():
    strong()
    from concurrent.futures import ThreadPoolExecutor

    sb = Sandbox()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: sb.prelude_header(HEADER), range(4)))
    root = sb._scratch().path
    builds = [d for d in root.iterdir() if d.name.startswith("pch-")]
    sb.close()
    assert got[0] is not None and len(set(got)) == 1
    assert len(builds) == 1, builds


def test_missing_compiler_when_path_has_no_gpp(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not Sandbox().available
    assert os.environ["PATH"] == str(tmp_path)


def test_temp_folder_that_other_users_cannot_enter_is_not_used_for_them(tmp_path, monkeypatch):
    """pytest's tmp_path is 0700: as root, scratch roots for the unprivileged sandbox uid go elsewhere."""
    os.chmod(tmp_path, 0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert sbx._base_dir(None) == tmp_path
    if os.geteuid() == 0:
        assert sbx._base_dir(SANDBOX_UID) != tmp_path


# -- through the CLI: refusal, opt-in, record, leaderboard ---------------------------------------------

LONGPROC_DATA = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "longproc" / "data"
needs_data = pytest.mark.skipif(not LONGPROC_DATA.is_dir(), reason="LongProc data not present")


def _scores_of(run_dir: Path) -> dict:
    import json

    return next(json.loads(p.read_text()) for p in run_dir.rglob("scores.json"))


@needs_data
def test_cli_without_a_sandbox_does_not_run_programs_unless_explicitly_allowed(cli, tmp_path):
    import json
    import math

    args = ["run", "--tasks", "longproc/pseudo_to_code_0.5k", "--backend", "gold", "-T", f"data_dir={LONGPROC_DATA}",
            "--limit", "2", "--no-progress"]
    hidden = {"EVALSUITE_BWRAP": "none"}
    # without a sandbox, run refuses before a run folder exists or a model loads, naming the ways out
    r = cli(*args, "--run-id", "refused", env=hidden)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "bubblewrap" in lines[0] and "-T unsafe_code=true" in lines[0] and "user namespaces" in lines[0]
    assert not (tmp_path / "results" / "refused").exists()

    # a run made where the sandbox works, scored again where it does not: the programs are not run
    strong()
    r = cli(*args, "--run-id", "later")
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli("score", str(tmp_path / "results" / "later"), env=hidden)
    assert r.returncode == 0, r.stderr[-3000:]
    s = _scores_of(tmp_path / "results" / "later")
    acc = {m["name"]: m for m in s["metrics"]}["accuracy"]
    assert math.isnan(acc["value"]) and acc["details"]["n_skipped"] == 2
    reason = acc["details"]["skip_reason"]
    assert "bubblewrap" in reason and "-T unsafe_code=true" in reason and "user namespaces" in reason
    assert "accuracy skipped for 2 samples" in r.stderr and "bubblewrap" in r.stderr
    man = json.loads((tmp_path / "results" / "later" / "manifest.json").read_text())
    d = man["tasks"]["longproc/pseudo_to_code_0.5k"]["describe"]
    assert d["sandbox"]["mode"] == "bubblewrap" and d["options"]["unsafe_code"] is False

    # the explicit opt-in runs them, and the run says so (manifest, leaderboard)
    r = cli(*args, "-T", "unsafe_code=true", "--run-id", "unsafe", env=hidden)
    assert r.returncode == 0, r.stderr[-3000:]
    s = _scores_of(tmp_path / "results" / "unsafe")
    assert {m["name"]: m["value"] for m in s["metrics"]}["accuracy"] == pytest.approx(100.0)
    man = json.loads((tmp_path / "results" / "unsafe" / "manifest.json").read_text())
    d = man["tasks"]["longproc/pseudo_to_code_0.5k"]["describe"]
    assert d["sandbox"]["mode"] == "unsafe" and d["options"]["unsafe_code"] is True
    assert "WITHOUT isolation" in d["sandbox"]["warning"]
    r = cli("leaderboard", "build", str(tmp_path / "results"), "-o", str(tmp_path / "site"))
    assert r.returncode == 0, r.stderr[-3000:]
    unsafe_page = (tmp_path / "site" / "runs" / "unsafe.html").read_text()
    later_page = (tmp_path / "site" / "runs" / "later.html").read_text()
    assert 'class="unsafe-code"' in unsafe_page and "longproc/pseudo_to_code_0.5k" in unsafe_page
    assert 'class="unsafe-code"' not in later_page


@needs_data
def test_cli_records_the_sandbox_in_the_manifest(cli, tmp_path):
    import json

    strong()
    r = cli("run", "--tasks", "longproc/pseudo_to_code_0.5k", "--backend", "gold", "-T", f"data_dir={LONGPROC_DATA}",
            "-T", "unsafe_code=true", "--limit", "2", "--no-progress", "--run-id", "sbx")
    assert r.returncode == 0, r.stderr[-3000:]
    man = json.loads((tmp_path / "results" / "sbx" / "manifest.json").read_text())
    d = man["tasks"]["longproc/pseudo_to_code_0.5k"]["describe"]["sandbox"]
    assert d["mode"] == "bubblewrap" and d["mechanism"]["name"] == "bubblewrap" and d["mechanism"]["version"]
    assert {m["name"]: m["value"] for m in _scores_of(tmp_path / "results" / "sbx")["metrics"]}["accuracy"] == 100.0


def test_doctor(cli):
    r = cli("doctor", env={"EVALSUITE_BWRAP": "none"})
    assert r.returncode == 1 and "FAIL  code sandbox" in r.stdout and "apt-get install bubblewrap" in r.stdout
    if detect().strong:
        r = cli("doctor")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"bubblewrap {detect().version}" in r.stdout and "ok    sandbox end to end" in r.stdout


def test_doctors_probe_detects_an_unsandboxed_program(no_bwrap):
    """Control for the doctor's end-to-end probe: run without isolation, it reports what leaked."""
    from evalsuite.doctor import _end_to_end

    c = _end_to_end(Sandbox(unsafe=True))
    assert c.status == "FAIL" and "reaches-the-network" in c.detail and "writes-outside-its-folder" in c.detail
