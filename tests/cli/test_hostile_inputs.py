"""No input poisons a run (issue 16 §5, the parts outside task data files): hostile generation texts,
replay files, log lines, server bodies, output locations, terminal escapes, chart labels and a merge
killed half-way. Each through the CLI on real files, as a user would meet it."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env

TOY = ["--tasks", "toy/addition", "--no-progress"]


def _rows(run_dir: Path, task: str = "toy/addition") -> list[dict]:
    return [json.loads(x) for x in (run_dir / task / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def _no_traceback(r) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]


# -- merge killed half-way ----------------------------------------------------------------------------

def test_a_merge_killed_mid_copy_does_not_block_its_rerun(cli, tmp_path):
    for i in range(2):
        r = cli("run", *TOY, "-T", "n=10", "--backend", "gold", "--run-id", f"s{i}", "--shard", f"{i}/2")
        assert r.returncode == 0, r.stderr
    # SIGKILL the merge right after it copied the first task's logs (before anything else is written)
    code = ("import os, signal, sys\n"
            "import evalsuite.merge as m\n"
            "m.atomic_write_json = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from evalsuite.cli import main\n"
            "sys.exit(main(['merge', 'results/s0', 'results/s1', '--run-id', 'merged']))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert p.returncode == -9
    assert not (tmp_path / "results" / "merged" / "manifest.json").exists()
    r = cli("merge", "results/s0", "results/s1", "--run-id", "merged", "--json")
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    scores = json.loads(r.stdout)["scores"]["toy/addition"]
    assert scores["n"] == 10 and scores["n_missing"] == 0 and scores["value"] == 100.0
    assert len(_rows(tmp_path / "results" / "merged")) == 10
    assert sorted(os.listdir(tmp_path / "results")) == ["merged", "s0", "s1"]  # no leftover work folder
    # the leaderboard never lists a merge in progress
    (tmp_path / "results" / ".other.merging").mkdir()
    (tmp_path / "results" / ".other.merging" / "manifest.json").write_text("{}")
    lb = cli("leaderboard", "build", "results", "-o", "site")
    assert lb.returncode == 0, lb.stderr


# -- generation texts that are not valid Unicode -------------------------------------------------------

def _replay_file(path: Path, outputs: dict[int, object], n: int = 6, raw: bool = False) -> Path:
    lines = []
    for i in range(n):
        out = outputs.get(i, "42")
        lines.append(json.dumps({"task": "toy/addition", "index": i, "output": out}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("with_tokenizer", [False, True])
def test_a_lone_surrogate_from_a_replay_file_is_repaired_and_recorded(cli, tmp_path, with_tokenizer,
                                                                       word_tokenizer_dir):
    f = _replay_file(tmp_path / "out.jsonl", {1: "\ud800abc", 2: "ok \udfff\ud83d\ude00 end"})
    assert "\\ud800abc" in f.read_text()  # the JSON escape of a lone surrogate, as a server or a file has it
    model = ["--model", str(word_tokenizer_dir)] if with_tokenizer else []
    args = ["run", *TOY, "-T", "n=6", "--backend", "replay", "-B", f"file={f}", *model, "--run-id", "s"]
    for attempt in range(2):  # the run, then its re-run: both finish
        r = cli(*args)
        assert r.returncode == 0, r.stderr[-3000:]
        _no_traceback(r)
    rows = {x["index"]: x for x in _rows(tmp_path / "results" / "s")}
    assert len(rows) == 6
    assert rows[1]["generation"]["text"] == "\ufffdabc" and rows[1]["repaired"] == ["generation.text"]
    assert rows[2]["generation"]["text"] == "ok \ufffd\U0001F600 end"
    assert "repaired" not in rows[0]
    r = cli("score", "results/s")
    assert r.returncode == 0, r.stderr
    per = {x["index"]: x for x in map(json.loads, (tmp_path / "results/s/toy/addition/per_sample.jsonl")
                                      .read_text().splitlines())}
    assert "repaired" in per[1]["flags"] and "repaired" not in per[0]["flags"]


def test_a_lone_surrogate_from_an_openai_server_is_repaired(cli, tmp_path, fake_openai):
    from openai_fake import FakeReply

    def responder(call):
        if call.method == "POST":
            return FakeReply(body={"choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "x\ud800y"}}]})
        return None

    server = fake_openai(responder)
    r = cli("run", *TOY, "-T", "n=3", "--backend", "openai", "--model", "test-model", "-B", f"base_url={server.url}",
            "--run-id", "o")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _rows(tmp_path / "results" / "o")
    assert [x["generation"]["text"] for x in rows] == ["x\ufffdy"] * 3
    assert all(x["repaired"] == ["generation.text"] for x in rows)


# -- replay files ---------------------------------------------------------------------------------------

def test_replay_outputs_that_are_not_text_are_per_request_errors(cli, tmp_path):
    f = _replay_file(tmp_path / "out.jsonl", {0: 123, 1: None, 2: [1, 2], 3: {"text": "7"}, 4: True})
    args = ["run", *TOY, "-T", "n=6", "--backend", "replay", "-B", f"file={f}", "--run-id", "r"]
    r = cli(*args)
    assert r.returncode == 3, r.stderr[-3000:]  # partial: those requests failed
    rows = {x["index"]: x for x in _rows(tmp_path / "results" / "r")}
    for i, kind in ((0, "int"), (1, "null"), (2, "list"), (3, "object"), (4, "bool")):
        g = rows[i]["generation"]
        assert g["finish_reason"] == "error" and g["text"] == "" and f"is {kind}, not text" in g["error"], g
    assert rows[5]["generation"]["text"] == "42"
    for again, code in ((args, 3), (["score", "results/r"], 0)):
        r = cli(*again)
        assert r.returncode == code, r.stderr[-3000:]
        _no_traceback(r)
    s = json.loads((tmp_path / "results/r/toy/addition/scores.json").read_text())
    assert s["n_errors"] == 5 and s["n"] == 6


def test_any_backend_returning_a_non_string_is_a_per_request_error(tmp_path):
    from evalsuite.backends import BaseBackend
    from evalsuite.registry import default_registry
    from evalsuite.runner import RunConfig, run
    from evalsuite.types import Generation

    class Bad(BaseBackend):
        id = "bad"

        def generate(self, requests):
            return [Generation(text=123 if r.index % 2 else "5", finish_reason="stop") for r in requests]

    sys.path.insert(0, str(Path(__file__).resolve().parents[1].parent / "docs" / "template"))
    out = run(RunConfig(tasks=["toy/addition"], task_options={"n": "4"}, output=str(tmp_path), run_id="b",
                        progress=False), registry=default_registry(), backend=Bad())
    assert out.scores["toy/addition"]["n_errors"] == 2
    rows = _rows(tmp_path / "b")
    assert all(isinstance(x["generation"]["text"], str) for x in rows)
    assert sum("not text" in (x["generation"]["error"] or "") for x in rows) == 2


@pytest.mark.parametrize("line, msg", [
    ('{"task": "toy/addition", "index": "zero", "output": "1"}', "index must be a whole number"),
    ('{"task": "toy/addition", "index": 1e400, "output": "1"}', "index must be a whole number"),
    ('{"task": "toy/addition", "index": 1.5, "output": "1"}', "index must be a whole number"),
    ('{"task": "toy/addition", "index": true, "output": "1"}', "index must be a whole number"),
    ('{"task": ["toy/addition"], "index": 0, "output": "1"}', "task must be a string"),
    ('{"task": "toy/addition", "sample_id": ["add-0"], "output": "1"}', "sample_id must be a string"),
    ('{"task": "toy/addition", "sample_id": {"a": 1}, "output": "1"}', "sample_id must be a string"),
    ('[1, 2, 3]', "expected a JSON object"),
    ('"just a string"', "expected a JSON object"),
    ('{"output": "1"}', "needs 'sample_id' or 'task' + 'index'"),
    ('{"task": "toy/addition", "index": 0}', "expected a JSON object with 'output'"),
    ('{"task": "toy/addition", "index": 0, "output": "1"', "not valid JSON"),
    ("[" * 100000, "not valid JSON"),
])
def test_bad_replay_lines_are_one_line_and_exit_2(cli, tmp_path, line, msg):
    f = tmp_path / "out.jsonl"
    f.write_text('{"task": "toy/addition", "index": 1, "output": "1"}\n' + line + "\n")
    r = cli("run", *TOY, "-T", "n=3", "--backend", "replay", "-B", f"file={f}", "--run-id", "x")
    assert r.returncode == 2, r.stderr[-2000:]
    _no_traceback(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{f}:2" in lines[0] and msg in lines[0], r.stderr


@pytest.mark.parametrize("data, msg", [(b'{"task": "toy/addition", "index": 0, "output": "caf\xe9"}\n', "not UTF-8"),
                                       ("\ufeff".encode("utf-16") + b"{}", "not UTF-8")])
def test_a_replay_file_that_is_not_utf8_is_one_line(cli, tmp_path, data, msg):
    f = tmp_path / "out.jsonl"
    f.write_bytes(data)
    r = cli("run", *TOY, "-T", "n=3", "--backend", "replay", "-B", f"file={f}", "--run-id", "x")
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    _no_traceback(r)


def test_replay_lines_for_samples_the_run_does_not_have(cli, tmp_path):
    f = _replay_file(tmp_path / "out.jsonl", {}, n=40)  # the toy task has 40 samples by default
    with open(f, "a") as fh:
        fh.write(json.dumps({"task": "toy/addition", "sample_id": "add-typo", "output": "1"}) + "\n")
        fh.write(json.dumps({"task": "toy/addition", "index": 99, "output": "1"}) + "\n")
        fh.write(json.dumps({"task": "other/task", "index": 0, "output": "1"}) + "\n")  # another task: not ours
    base = ["run", *TOY, "--backend", "replay", "-B", f"file={f}"]
    r = cli(*base, "--run-id", "a")
    assert r.returncode == 2, r.stderr
    _no_traceback(r)
    assert "2 lines name samples this run does not have" in r.stderr and "add-typo" in r.stderr
    assert "-B missing=ignore" in r.stderr and not (tmp_path / "results" / "a").exists()
    r = cli(*base, "-B", "missing=ignore", "--run-id", "b")
    assert r.returncode == 0, r.stderr
    # a selection (--limit, --samples, task options) leaves samples out by design: not checked
    for sel in (["--limit", "2"], ["--samples", "toy/addition:3"], ["-T", "n=5"]):
        r = cli(*base, *sel, "--run-id", f"c{len(sel[1])}")
        assert r.returncode == 0, (sel, r.stderr)


# -- logs with lines that are not rows ------------------------------------------------------------------

JUNK = [b"[1, 2, 3]\n", b'{"foo": 1}\n', b"\xff\xfe not utf-8 \xc3\n", b'{"key": 5}\n', b'"a string"\n',
        b'{"key": "k", "generation": {"text": 123, "finish_reason": "stop"}, "sample_id": "x", "index": 0, '
        b'"sample": {"target": "1"}}\n', b"null\n"]


def test_log_lines_that_are_not_rows_are_skipped_and_counted_everywhere(cli, tmp_path):
    for i in range(2):
        r = cli("run", *TOY, "-T", "n=6", "--backend", "gold", "--run-id", f"s{i}", "--shard", f"{i}/2")
        assert r.returncode == 0, r.stderr
    r = cli("run", *TOY, "-T", "n=6", "--backend", "gold", "--run-id", "full")
    assert r.returncode == 0, r.stderr
    for run in ("s0", "s1", "full"):
        with open(tmp_path / "results" / run / "toy/addition/samples.jsonl", "ab") as fh:
            fh.write(b"".join(JUNK))
    want = f"skipped {len(JUNK)} lines that are not valid rows"
    checks = [("score", "results/full"), ("run", *TOY, "-T", "n=6", "--backend", "gold", "--run-id", "full"),
              ("merge", "results/s0", "results/s1", "--run-id", "m"), ("compare", "results/full", "results/m"),
              ("show", "results/full"), ("show", "results/full", "--samples")]
    for args in checks:
        r = cli(*args)
        assert r.returncode == 0, (args, r.stderr[-3000:])
        _no_traceback(r)
        if args[0] in ("score", "run", "merge", "compare"):
            assert want in r.stderr, (args, r.stderr)
    # per_sample.jsonl (rewritten by every scoring) with lines that are not rows: show and compare read it
    with open(tmp_path / "results/full/toy/addition/per_sample.jsonl", "ab") as fh:
        fh.write(b"".join(JUNK[:5]) + b'{"sample_id": "x", "index": 0, "metrics": {"toy_exact": "high"}}\n')
    for args in (("show", "results/full", "--samples"), ("compare", "results/full", "results/m")):
        r = cli(*args)
        assert r.returncode == 0, r.stderr[-3000:]
        _no_traceback(r)
        assert "skipped 6 lines that are not valid rows" in r.stderr and "per_sample.jsonl" in r.stderr
    s = json.loads((tmp_path / "results/full/toy/addition/scores.json").read_text())
    assert s["n"] == 6 and s["value"] == 100.0 and s["n_skipped_log_lines"] == len(JUNK)
    s = json.loads((tmp_path / "results/m/toy/addition/scores.json").read_text())
    assert s["n"] == 6 and s["value"] == 100.0


# -- hostile OpenAI-compatible servers --------------------------------------------------------------------

class _RawServer:
    """An HTTP server on 127.0.0.1 that lists one model and answers every POST with ``body(wfile, stop)``:
    an endless 200 body, a trickle, or silence (what the shared fake server cannot do)."""

    def __init__(self, body):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.stop = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                data = json.dumps({"data": [{"id": "m"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body(self, outer.stop)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw_server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    servers = []

    def start(body):
        servers.append(_RawServer(body))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _chat():
    from evalsuite.types import GenParams, Request

    return Request(task="t", sample_id="s0", index=0, prompt="hi", params=GenParams(max_tokens=4))


def _endless(h, stop):
    h.send_response(200)
    h.send_header("Content-Type", "application/json")  # no length: read until the server stops
    h.end_headers()
    h.wfile.write(b'{"choices": [{"message": {"content": "')
    chunk = b"x" * 65536
    while not stop.is_set():
        h.wfile.write(chunk)


def test_an_endless_200_body_is_a_failed_attempt_and_costs_no_memory(raw_server):
    import resource

    from evalsuite.backends.openai import OpenAIBackend

    server = raw_server(_endless)
    b = OpenAIBackend(model="m", base_url=server.url, max_retries="1", backoff="0", timeout="60",
                      max_response_bytes=str(4 * 1024 * 1024))
    assert b.describe()["max_response_bytes"] == 4 * 1024 * 1024
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (g,) = b.generate([_chat()])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert g.finish_reason == "error" and "over max_response_bytes=4194304" in g.error, g.error
    assert "response too large x2" in g.error
    assert grown_mb < 100, grown_mb


def test_a_declared_oversized_body_is_refused_before_reading(raw_server):
    from evalsuite.backends.openai import OpenAIBackend

    def huge(h, stop):
        h.send_response(200)
        h.send_header("Content-Length", str(10 ** 12))
        h.end_headers()
        h.wfile.write(b"{")
        stop.wait(30)

    server = raw_server(huge)
    b = OpenAIBackend(model="m", base_url=server.url, max_retries="0", max_response_bytes="100000")
    (g,) = b.generate([_chat()])
    assert "response of 1000000000000 bytes is over max_response_bytes=100000" in g.error


def test_idle_and_overall_timeouts(raw_server):
    import time

    from evalsuite.backends.openai import OpenAIBackend

    def trickle(h, stop):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        while not stop.wait(0.1):
            h.wfile.write(b" ")
            h.wfile.flush()

    def silent(h, stop):
        stop.wait(30)

    # a trickle never goes idle: the overall cap stops it
    b = OpenAIBackend(model="m", base_url=raw_server(trickle).url, max_retries="0", timeout="1.5",
                      idle_timeout="1")
    t0 = time.perf_counter()
    (g,) = b.generate([_chat()])
    assert "no answer within 1.5 s" in g.error and time.perf_counter() - t0 < 10
    d = b.describe()
    assert d["timeout_s"] == 1.5 and d["idle_timeout_s"] == 1.0
    # silence: the idle timeout stops it long before the overall cap
    b = OpenAIBackend(model="m", base_url=raw_server(silent).url, max_retries="0", timeout="60",
                      idle_timeout="0.5")
    t0 = time.perf_counter()
    (g,) = b.generate([_chat()])
    assert "no data for 0.5 s (idle_timeout)" in g.error and time.perf_counter() - t0 < 10


# -- where results go: bad output locations and a full disk ------------------------------------------------

ENOSPC = Path(__file__).resolve().parents[1] / "enospc.py"


def _full_disk_cli(cwd: Path, match: str, after: int, *args: str):
    return subprocess.run([sys.executable, str(ENOSPC), match, str(after), *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".tmp")
                  or ".evalsuite-write-test" in p.name)


def _one_line_exit_2(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    _no_traceback(r)
    lines = r.stderr.strip().splitlines()
    if len(lines) == 2 and re.match(r"evalsuite: run \S+ \((new|resuming)\) in ", lines[0]):
        lines = lines[1:]  # the run id announced before generation started; the error is the one line
    assert len(lines) == 1 and all(n in lines[0] for n in needles), r.stderr


def test_a_full_disk_during_generation_loses_nothing(cli, tmp_path):
    args = ["run", *TOY, "-T", "n=8", "--backend", "gold", "--run-id", "f"]
    r = _full_disk_cli(tmp_path, "samples.jsonl", 3, *args)
    _one_line_exit_2(r, "No space left on device", "samples.jsonl", "re-run the same command")
    log = tmp_path / "results/f/toy/addition/samples.jsonl"
    data = log.read_bytes()
    assert data.endswith(b"\n") and len(_rows(tmp_path / "results/f")) == 3  # the failed row left no half line
    assert _leftovers(tmp_path) == []
    r = cli(*args)
    assert r.returncode == 0 and "generated 5, resumed 3" in r.stdout, r.stderr
    r = cli("run", *TOY, "-T", "n=8", "--backend", "gold", "--run-id", "clean")
    s = [json.loads((tmp_path / f"results/{x}/toy/addition/scores.json").read_text()) for x in ("f", "clean")]
    assert (s[0]["value"], s[0]["n"]) == (s[1]["value"], s[1]["n"]) == (100.0, 8)


@pytest.mark.parametrize("match", ["per_sample", "scores.json"])
def test_a_full_disk_during_scoring_is_one_line(cli, tmp_path, match):
    r = cli("run", *TOY, "-T", "n=6", "--backend", "gold", "--run-id", "g")
    assert r.returncode == 0, r.stderr
    r = _full_disk_cli(tmp_path, match, 0, "score", "results/g")
    _one_line_exit_2(r, "No space left on device")
    assert _leftovers(tmp_path) == []
    assert len(_rows(tmp_path / "results/g")) == 6
    json.loads((tmp_path / "results/g/manifest.json").read_text())  # the old file is intact
    r = cli("score", "results/g")
    assert r.returncode == 0, r.stderr


def _mount_tmpfs(path: Path, opts: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_really_full_tmpfs_during_generation(cli, tmp_path):
    """The same on a real 96 KiB filesystem (root only: mounting needs privileges)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=96k"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount privileges)")
    try:
        args = ["run", *TOY, "-T", "n=400", "--backend", "gold", "--run-id", "t"]
        r = cli(*args, "--output", str(disk))
        _one_line_exit_2(r, "No space left on device")
        rows = _rows(disk / "t")
        assert 0 < len(rows) < 400 and (disk / "t/toy/addition/samples.jsonl").read_bytes().endswith(b"\n")
        assert _leftovers(disk) == []
        import shutil

        shutil.copytree(disk / "t", tmp_path / "bigger" / "t")
    finally:
        _umount(disk)
    r = cli(*args, "--output", str(tmp_path / "bigger"))
    assert r.returncode == 0 and f"generated {400 - len(rows)}, resumed {len(rows)}" in r.stdout, r.stderr


def test_bad_output_locations_fail_before_anything_loads(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    # an unreachable server would be the error if the backend were built first
    # (the output folder is the last check before the backend is built: evalsuite.validate)
    slow = ["run", *TOY, "-T", "n=2", "--backend", "gold"]
    _one_line_exit_2(cli(*slow, "--output", "afile"), "--output afile is a file, not a folder")
    _one_line_exit_2(cli(*slow, "--output", "afile/sub"), "--output afile/sub: afile is a file, not a folder")
    _one_line_exit_2(cli(*slow, "--output", "/proc/evalsuite-results"), "under /proc")
    _one_line_exit_2(cli(*slow, "--output", "/sys/kernel"), "under /sys")
    r = cli("run", *TOY, "-T", "n=2", "--backend", "gold", "--run-id", "s0", "--shard", "0/2")
    r = cli("run", *TOY, "-T", "n=2", "--backend", "gold", "--run-id", "s1", "--shard", "1/2")
    _one_line_exit_2(cli("merge", "results/s0", "results/s1", "--run-id", "m", "--output", "afile"), "is a file")
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "ro,size=64k"):
        try:
            _one_line_exit_2(cli(*slow, "--output", str(ro)), f"cannot write to --output {ro}",
                             "Read-only file system")
        finally:
            _umount(ro)
    elif os.geteuid() != 0:
        ro.mkdir()
        ro.chmod(0o555)
        _one_line_exit_2(cli(*slow, "--output", str(ro)), f"cannot write to --output {ro}")
    assert _leftovers(tmp_path) == []


# -- terminal output ------------------------------------------------------------------------------------

HOSTILE_OUTPUTS = {
    0: "\x1b[2J\x1b[H\x1b[31mred alert",                       # clear screen, home, colour (CSI)
    1: "\x1b]8;;http://evil.example/\x07click me\x1b]8;;\x07",  # OSC 8 hyperlink, BEL-terminated
    2: "nul\x00byte and bell\x07 and \rcarriage",
    3: "c1 csi \x9b31m and del \x7f",
    4: "[/bold] [link=http://x]markup[/link] \u202eevil bidi",
    5: "two\nlines",
}


def test_show_samples_renders_control_characters_visibly(cli, tmp_path):
    f = _replay_file(tmp_path / "out.jsonl", HOSTILE_OUTPUTS)
    r = cli("run", *TOY, "-T", "n=6", "--backend", "replay", "-B", f"file={f}", "--run-id", "esc")
    assert r.returncode == 0, r.stderr
    r = cli("show", "results/esc", "--samples", env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    out = r.stdout
    for bad in ("\x1b", "\x00", "\x07", "\r", "\x9b", "\x7f", "\u202e"):
        assert bad not in out, repr(bad)
    for shown in ("\\x1b[2J", "\\x1b]8;;http://evil.example/\\x07click me", "nul\\x00byte", "bell\\x07",
                  "\\rcarriage", "\\x9b31m", "\\x7f", "[/bold] [link=http://x]markup[/link]", "\\u202eevil",
                  "two⏎lines"):
        assert shown in out, (shown, out)
    r = cli("show", "results/esc", "--samples", "--failed", env={"COLUMNS": "400"})
    assert r.returncode == 0 and "\x1b" not in r.stdout


# -- leaderboard charts -----------------------------------------------------------------------------------

def test_chart_text_is_literal_not_mathtext(cli, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from leaderboard_synth import write_run

    labels = ["m$\\evil{$", "$x^{2}$ and $", "a_b$\\frac{1}{0}$"]
    for i, label in enumerate(labels):
        d = write_run(tmp_path / "results", f"r{i}", ["synth_ruler/a", "synth_lb/b"], 40, 0.5 + 0.1 * i, i)
        man = json.loads((d / "manifest.json").read_text())
        man["backend"]["model"] = label
        (d / "manifest.json").write_text(json.dumps(man))
    r = cli("leaderboard", "build", "results", "-o", "site")
    assert r.returncode == 0, r.stderr[-3000:]
    _no_traceback(r)
    svgs = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.svg"))
    assert svgs and all(label in svgs for label in labels)  # drawn as written, not typeset
