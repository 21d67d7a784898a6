"""The C++ sandbox (evalsuite/sandbox.py): limits, no network, cleanup, first-10-tests rule."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from evalsuite.sandbox import Limits, Sandbox, network_isolation

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

HEADER = "#include <iostream>\n#include <vector>\nusing namespace std;\n"


@pytest.fixture(autouse=True)
def own_tmp(tmp_path, monkeypatch):
    """Temporary directories go under tmp_path, so a leftover is visible."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _run(sb: Sandbox, body: str, stdin: bytes = b"") -> tuple:
    with tempfile.TemporaryDirectory() as t:
        exe, msg = sb.compile(HEADER + body, Path(t))
        assert exe is not None, msg
        return sb.run(exe, stdin, Path(t)), Path(t)


def test_network_isolation_is_reported():
    assert network_isolation() in ("netns", "preload")
    assert Sandbox().describe()["network_isolation"] in ("netns", "preload")


SOCKET_PROGRAM = """
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cstring>
int main() {
    int port; cin >> port;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { cout << "no socket" << endl; return 0; }
    sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cout << (connect(s, (sockaddr*)&a, sizeof a) == 0 ? "connected" : "refused") << endl;
    return 0;
}
"""


@pytest.fixture(scope="module")
def socket_exe(tmp_path_factory):
    d = tmp_path_factory.mktemp("sock")
    exe, msg = Sandbox().compile(HEADER + SOCKET_PROGRAM, d)
    assert exe is not None, msg
    return exe


@pytest.mark.parametrize("mode", ["auto", "preload"])
def test_a_program_cannot_reach_a_listening_socket(mode, socket_exe, tmp_path):
    import subprocess

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        # control: the same program outside the sandbox does connect (so the test can fail)
        out = subprocess.run([str(socket_exe)], input=f"{port}\n".encode(), capture_output=True, timeout=10).stdout
        assert out == b"connected\n"
        listener.accept()[0].close()
        sb = Sandbox(network=None if mode == "auto" else "preload")
        res = sb.run(socket_exe, f"{port}\n".encode(), tmp_path)
        sb.close()
        assert res.status == "ok"
        if sb.network == "preload":
            assert res.stdout == b"no socket\n"
        else:
            assert res.stdout in (b"refused\n", b"no socket\n")
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_infinite_loop_and_its_children_are_killed_at_the_timeout():
    sb = Sandbox(limits=Limits(timeout_s=0.5))
    body = "#include <unistd.h>\nint main() { fork(); while (true) {} }\n"
    t0 = time.perf_counter()
    res, _ = _run(sb, body)
    assert res.status == "timeout"
    assert time.perf_counter() - t0 < 5


def test_memory_limit():
    sb = Sandbox(limits=Limits(memory_mb=256))
    body = "int main() { vector<char> v((size_t)1 << 30, 1); cout << (int)v[5] << endl; }\n"
    res, _ = _run(sb, body)
    assert res.status == "signal" and res.stdout == b""  # bad_alloc -> abort


def test_output_limit():
    sb = Sandbox(limits=Limits(output_mb=1))
    body = "int main() { string s(1 << 16, 'x'); while (true) cout << s; }\n"
    res, _ = _run(sb, body)
    assert res.status == "signal"
    assert len(res.stdout) <= 1 << 20


def test_cpu_limit_backs_up_the_wall_clock():
    lim = Limits(timeout_s=3.0)
    assert lim.cpu_seconds() == 4


def test_temporary_directories_are_removed_and_the_prelude_is_precompiled(own_tmp):
    sb = Sandbox()
    rep = sb.run_tests("int main() { int a, b; cin >> a >> b; cout << a + b << endl; }\n",
                       [[["1 2"], ["3"]], [["5 5"], ["10"]]], prelude=HEADER)
    assert rep.passed and rep.n_run == 2
    pch = sb.prelude_header(HEADER)
    assert pch is not None and Path(str(pch) + ".gch").is_file()
    assert [p.name for p in own_tmp.iterdir()] == [pch.parent.name]  # only the shared header folder
    sb.close()
    assert list(own_tmp.iterdir()) == []


def test_only_the_first_ten_cases_run_and_exit_code_is_ignored():
    sb = Sandbox()
    src = HEADER + "int main() { int a; cin >> a; cout << a * 2 << endl; return 7; }\n"
    cases = [[[str(i)], [str(2 * i)]] for i in range(10)] + [[["1"], ["999"]]]
    rep = sb.run_tests(src, cases)
    assert rep.passed and rep.n_run == 10
    rep = sb.run_tests(src, cases, max_tests=11)
    assert not rep.passed and rep.reason == "inconsistent" and rep.failed_test == 10


def test_compile_error_and_missing_compiler():
    rep = Sandbox().run_tests("int main( {", [[["1"], ["1"]]])
    assert not rep.passed and rep.reason == "compilation error"
    sb = Sandbox(compiler="no-such-compiler-xyz")
    assert not sb.available and "no C++ compiler" in sb.missing_reason()


def test_missing_compiler_when_path_has_no_gpp(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not Sandbox().available
    assert os.environ["PATH"] == str(tmp_path)
