"""The judge plugin: exact yes/no parsing, batching, the append-only cache, judge identity in signatures,
CLI options, and resumability after a SIGKILL during judging (counted with a judge backend that logs every
call it answers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, SHARED, cli_env
from judge_replay import WU_DIR, wu_verdicts
from evalsuite.backends import BaseBackend
from evalsuite.judge import JUDGE_LOG, Judge, JudgeConfig, JudgeQuery, parse_yes_no
from evalsuite.types import Generation



@pytest.mark.parametrize("text,want", [
    ("yes", True), ("Yes", True), (" YES.\n", True), ("no", False), ("No!", False),
    ("eyes", None), ("Yes, it does", None), ("yesterday", None), ("No, but yes", None), ("", None),
    ("y", None), ("maybe", None),
])
def test_parse_yes_no_is_exact(text, want):
    assert parse_yes_no(text) is want


class _Fake(BaseBackend):
    """Answers "yes" when the prompt contains "Y", else "no"; "ERR" fails; counts calls and batch sizes."""

    def __init__(self, batch_size=3):
        self.id = "fake:1"
        self.batch_size = batch_size
        self.calls: list[str] = []
        self.batches: list[int] = []

    def generate(self, requests):
        self.batches.append(len(requests))
        out = []
        for r in requests:
            self.calls.append(r.sample_id)
            assert r.params.max_tokens == 1 and r.params.temperature == 0.0
            text = r.prompt if isinstance(r.prompt, str) else r.prompt[-1].text
            if "ERR" in text:
                out.append(Generation.failed("boom"))
            elif "THINK" in text:
                out.append(Generation("<think>hmm, yes?</think> no" if "done" in text else "<think>yes", "stop"))
            else:
                out.append(Generation("yes" if "Y" in text else "no", "stop"))
        return out


def test_judge_batches_caches_and_retries_errors(tmp_path):
    be = _Fake(batch_size=3)
    cfg = JudgeConfig("fake")
    qs = [JudgeQuery(f"q{i}", f"prompt {i} {'Y' if i % 2 else 'n'}") for i in range(7)] + \
        [JudgeQuery("dup", "prompt 1 Y"), JudgeQuery("bad", "ERR")]
    j = Judge(be, cfg, tmp_path / JUDGE_LOG, "t")
    v = j.yes_no(qs)
    assert v == [False, True, False, True, False, True, False, True, None]
    # the duplicate prompt is asked once; 8 distinct prompts in batches of at most 3
    assert sorted(be.calls) == sorted([f"q{i}" for i in range(7)] + ["bad"])
    assert be.batches == [3, 3, 2]
    rows = [json.loads(line) for line in (tmp_path / JUDGE_LOG).read_text().splitlines()]
    assert len(rows) == 8 and all(r["judge"] == j.id for r in rows)
    # a new Judge on the same log asks only the failed question again
    be2 = _Fake()
    j2 = Judge(be2, cfg, tmp_path / JUDGE_LOG, "t")
    assert j2.yes_no(qs) == v
    assert be2.calls == ["bad"] and j2.n_cached == 8
    # think blocks are removed before the verdict; an unterminated one is no verdict
    assert j2.yes_no([JudgeQuery("t1", "THINK done"), JudgeQuery("t2", "THINK")]) == [False, None]
    # a torn last line (crash mid-write) is ignored and repaired before the next append
    with open(tmp_path / JUDGE_LOG, "a") as f:
        f.write('{"key": "torn", "generation"')
    j3 = Judge(_Fake(), cfg, tmp_path / JUDGE_LOG, "t")
    assert j3.yes_no([JudgeQuery("new", "fresh Y")]) == [True]
    lines = (tmp_path / JUDGE_LOG).read_text().splitlines()
    assert all(json.loads(line) for line in lines) and json.loads(lines[-1])["query_id"] == "new"


def test_judge_identity_covers_backend_and_params(tmp_path):
    be = _Fake()
    a = Judge(be, JudgeConfig("fake"), tmp_path / "a.jsonl", "t")
    b = Judge(be, JudgeConfig("fake", options={"temperature": "0.5", "chat_template": "false"}), tmp_path / "b.jsonl", "t")
    assert a.id != b.id and "fake:1" in a.id and "t:0.5" in b.id and "chat:0" in b.id
    q = JudgeQuery("x", "p")
    assert a.key(a._request(q, 0)) != b.key(b._request(q, 0))
    cfg = JudgeConfig("replay", None, {"file": "v.jsonl", "max_tokens": "2", "top_p": "0.9"})
    assert cfg.backend_options() == {"file": "v.jsonl"}
    assert cfg.gen_options() == {"max_tokens": 2, "top_p": 0.9}


def test_judge_options_need_a_backend(cli):
    r = cli("run", "--tasks", "longgenbench_wu/short", "--backend", "gold", "-T", f"data_dir={WU_DIR}",
            "--limit", "1", "-J", "temperature=0")
    assert r.returncode == 2 and "--judge-backend" in r.stderr


# -- resumability ----------------------------------------------------------------------------------

COUNTING_PLUGIN = '''
import os
from evalsuite.backends.scripted import ReplayBackend


class CountingReplay(ReplayBackend):
    """Replay that appends the id of every request it answers to $JUDGE_CALLS."""

    kind = "countreplay"

    def _answer(self, req):
        g = super()._answer(req)
        with open(os.environ["JUDGE_CALLS"], "a") as f:
            f.write(req.sample_id + "\\n")
        return g
'''


def _counting_plugin(root: Path) -> Path:
    pkg = root / "plugins"
    (pkg / "countjudge").mkdir(parents=True)
    (pkg / "countjudge" / "__init__.py").write_text(COUNTING_PLUGIN)
    dist = pkg / "countjudge-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: countjudge\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.backends]\ncountreplay = countjudge:CountingReplay\n")
    return pkg


def test_killed_run_does_not_repeat_finished_judge_calls(tmp_path):
    plugins = _counting_plugin(tmp_path)
    verdicts = tmp_path / "verdicts.jsonl"
    all_ids = wu_verdicts(verdicts, limit=3)
    calls = tmp_path / "calls.txt"
    env = cli_env({"JUDGE_CALLS": str(calls),
                   "PYTHONPATH": os.pathsep.join([str(plugins), str(PLUGIN_DIR)])})
    args = [sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "longgenbench_wu/short", "--backend", "gold",
            "-T", f"data_dir={WU_DIR}", "--limit", "3", "--run-id", "r", "--no-progress", "--json",
            "--judge-backend", "countreplay", "-J", f"file={verdicts}"]
    log = tmp_path / "results" / "r" / "longgenbench_wu" / "short" / JUDGE_LOG
    p = subprocess.Popen(args + ["-J", "delay=0.1"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if log.exists() and len(log.read_text().splitlines()) >= 5:
                break
            assert p.poll() is None, p.stderr.read().decode()
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert p.returncode == -signal.SIGKILL
    done_before = {json.loads(line)["query_id"] for line in log.read_text().splitlines() if line.endswith("}")}
    first_calls = calls.read_text().splitlines()
    assert 5 <= len(done_before) < len(all_ids)
    assert not (tmp_path / "results" / "r" / "longgenbench_wu" / "short" / "scores.json").exists()

    calls.write_text("")
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    second_calls = calls.read_text().splitlines()
    # finished judge calls are never asked again; the rest are asked exactly once
    assert not set(second_calls) & done_before
    # (checks of one unit with the same description share a prompt and are asked once)
    assert len(set(second_calls)) == len(second_calls) and set(second_calls) <= set(all_ids) - done_before
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == len(done_before) + len(second_calls) and len({r["key"] for r in rows}) == len(rows)
    assert set(first_calls) >= done_before
    out = json.loads(r.stdout)
    metrics = {m["name"]: m for m in out["scores"]["longgenbench_wu/short"]["metrics"]}
    assert metrics["stic2"]["value"] == 100.0
    assert "countreplay" in metrics["stic2"]["signature"]
    assert out["n_resumed"] == 3 and out["n_generated"] == 0

    # `evalsuite score` reuses the recorded judge and its cache: no call at all
    calls.write_text("")
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", "score", "results/r", "--json"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert calls.read_text() == ""
    scores = json.loads(r.stdout)["scores"]["longgenbench_wu/short"]
    assert scores["judge"][0]["cached"] > 0 and scores["judge"][0]["calls"] == 0


def test_real_backend_as_judge_one_token_exact_match(tmp_path, chain_llama_dir):
    """The hf backend serves the judge (in process; the CLI path is the same JudgeProvider): every verdict
    request gets a one-token budget through the chat template, and the hand-wired model's reply "Hello" is
    no verdict (exact match)."""
    from evalsuite.judge import JudgeProvider
    from evalsuite.registry import default_registry

    provider = JudgeProvider(JudgeConfig("hf", str(chain_llama_dir), {"threads": "1"}), default_registry())
    try:
        judge = provider.for_task(tmp_path, "t")
        qs = [JudgeQuery(f"q{i}", f"Context: day {i}### Instruction: Does this context include a party? "
                         "Please answer with 'yes' or 'no' only.") for i in range(3)]
        assert judge.yes_no(qs) == [None, None, None]
        assert judge.id.startswith("hf:") and "|chat:1|t:0" in judge.id
    finally:
        provider.close()
    rows = [json.loads(x) for x in (tmp_path / JUDGE_LOG).read_text().splitlines()]
    assert len(rows) == 3 and all(r["params"]["max_tokens"] == 1 and r["generation"]["text"] == "Hello"
                                  and r["generation"]["completion_tokens"] == 1 for r in rows)


@pytest.mark.parametrize("option, message", [("temperature=-1", "must be >= 0"), ("top_p=5", "must be in (0, 1]"),
                                             ("top_p=0", "must be in (0, 1]"), ("max_tokens=0", "must be positive"),
                                             ("seed=x", "invalid literal")])
def test_bad_judge_generation_options_stop_the_run_before_it_starts(tmp_path, option, message):
    """-J values GenParams would refuse are one line and exit 2 in the validate phase, not a traceback at the
    first judged metric after the whole generation."""
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "ruler/niah_single_1", "--backend",
                        "echo", "--judge-backend", "echo", "-J", option, "--output", str(tmp_path / "out")],
                       cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"judge option {option.split('=')[0]}=" in r.stderr and message in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
