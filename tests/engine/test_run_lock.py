"""One writer per run folder (issue 16 §4): real `evalsuite` processes racing for one run id.

Two runs started together: one is refused at once with exit 2 naming the holder's PID and host, the other
finishes; no request is generated twice, no row is lost, and the scores equal an uninterrupted single run.
``--wait-lock`` waits instead; a SIGKILLed holder's lock is recovered; ``score`` and ``merge`` respect it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli_env

N = 16
RUN = ["run", "--tasks", "toy/addition", "-T", f"n={N}", "--backend", "echo", "-B", "tail=4", "--no-progress"]


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalsuite.cli", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _holder_pid(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / ".evalsuite.lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "toy/addition/samples.jsonl").read_text().splitlines()]


def _scores(run_dir: Path) -> dict:
    s = json.loads((run_dir / "toy/addition/scores.json").read_text())
    return {k: s[k] for k in ("value", "n", "n_planned", "n_missing", "n_errors")} | {"metrics": [
        {k: m[k] for k in ("name", "value", "ci95")} for m in s["metrics"]]}


def test_two_concurrent_runs_one_refused_nothing_duplicated_or_lost(tmp_path):
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", *RUN, "--run-id", "single"], cwd=tmp_path,
                       env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    args = [*RUN, "-B", "delay=0.15", "--run-id", "shared"]
    a, b = _start(tmp_path, *args), _start(tmp_path, *args)
    procs = {a.pid: a, b.pid: b}
    t0 = time.monotonic()
    while all(p.poll() is None for p in procs.values()):
        assert time.monotonic() - t0 < 300
        time.sleep(0.02)
    first = next(p for p in procs.values() if p.poll() is not None)
    other = next(p for p in procs.values() if p is not first)
    assert other.poll() is None, "the refused process should exit while the other is still generating"
    out, err = first.communicate()
    assert first.returncode == 2, err
    assert f"is in use by `run` (PID {other.pid} on host {socket.gethostname()}" in err, err
    assert "--wait-lock" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    out2, err2 = other.communicate(timeout=300)
    assert other.returncode == 0, err2
    run_dir = tmp_path / "results" / "shared"
    rows = _rows(run_dir)
    keys = [x["key"] for x in rows]
    plan = json.loads((run_dir / "toy/addition/plan.json").read_text())["keys"]
    assert len(keys) == len(set(keys)) == N and set(keys) == set(plan)
    assert _scores(run_dir) == _scores(tmp_path / "results" / "single")
    man = json.loads((run_dir / "manifest.json").read_text())
    assert len(man["invocations"]) == 1 and man["invocations"][0]["status"] == "complete"
    assert (run_dir / ".evalsuite.lock").read_text() == ""  # released: no holder described


def test_wait_lock_waits_then_resumes(tmp_path):
    args = [*RUN, "-B", "delay=0.1", "--run-id", "w"]
    a = _start(tmp_path, *args)
    run_dir = tmp_path / "results" / "w"
    _wait_for(lambda: _holder_pid(run_dir) == a.pid)
    b = _start(tmp_path, *args, "--wait-lock")
    out_b, err_b = b.communicate(timeout=300)
    out_a, err_a = a.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    assert f"waiting for run folder {Path('results/w')}, in use by `run` (PID {a.pid}" in err_b
    assert "generated 0, resumed 16" in out_b
    keys = [x["key"] for x in _rows(run_dir)]
    assert len(keys) == len(set(keys)) == N


def test_a_killed_holder_is_recovered(tmp_path):
    args = [*RUN, "-B", "delay=0.3", "--run-id", "k"]
    a = _start(tmp_path, *args)
    run_dir = tmp_path / "results" / "k"
    log = run_dir / "toy/addition/samples.jsonl"
    _wait_for(lambda: _holder_pid(run_dir) == a.pid and log.exists() and log.stat().st_size > 0)
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=30)
    assert _holder_pid(run_dir) == a.pid  # its details are still in the file: they must not block
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", *RUN, "--run-id", "k"], cwd=tmp_path,
                       env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resumed 0" not in r.stdout
    final = {x["key"] for x in _rows(run_dir)}
    assert len(final) == N


def test_stale_lock_details_from_another_host_do_not_block(tmp_path, cli):
    run_dir = tmp_path / "results" / "stale"
    run_dir.mkdir(parents=True)
    (run_dir / ".evalsuite.lock").write_text(json.dumps({"pid": 1, "host": "gone-node", "purpose": "run"}))
    r = cli(*RUN, "--run-id", "stale")
    assert r.returncode == 0, r.stderr


def test_score_and_merge_refuse_a_run_being_written(tmp_path, cli):
    slow = [*RUN, "-B", "delay=0.3"]
    r = cli(*RUN, "--run-id", "s0", "--shard", "0/2")
    assert r.returncode == 0, r.stderr
    a = _start(tmp_path, *slow, "--run-id", "s1", "--shard", "1/2")
    try:
        run_dir = tmp_path / "results" / "s1"
        _wait_for(lambda: _holder_pid(run_dir) == a.pid and (run_dir / "manifest.json").exists())
        r = cli("score", "results/s1")
        assert r.returncode == 2 and f"PID {a.pid}" in r.stderr and "Traceback" not in r.stderr, r.stderr
        r = cli("merge", "results/s0", "results/s1", "--run-id", "m")
        assert r.returncode == 2 and f"PID {a.pid}" in r.stderr, r.stderr
        assert not (tmp_path / "results" / "m").exists()
    finally:
        a.kill()
        a.communicate()


def test_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    from evalsuite.lock import RunLock, RunLocked

    d = tmp_path / "run"
    with RunLock(d, "run"):
        with RunLock(d, "score"):  # same process (merge scores the run it holds)
            pass
        code = ("import sys; from evalsuite.lock import RunLock\n"
                f"RunLock({str(d)!r}, 'score').acquire()\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env())
        assert p.returncode != 0 and f"PID {os.getpid()}" in p.stderr
    # released, and the folder it created for nothing is gone
    assert not d.exists()
    with RunLock(d, "run"):
        pass


@pytest.mark.parametrize("cmd", ["run", "score", "merge"])
def test_wait_lock_flag_is_documented(cmd):
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", cmd, "--help"], capture_output=True, text=True,
                       env=cli_env())
    assert "--wait-lock" in r.stdout
