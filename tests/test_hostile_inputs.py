"""No input poisons a run (issue 16 §5, the parts outside task data files): hostile generation texts,
replay files, log lines, server bodies, output locations, terminal escapes, chart labels and a merge
killed half-way. Each through the CLI on real files, as a user would meet it."""

from __future__ import annotations

import json
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
