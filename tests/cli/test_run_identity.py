"""Issue 18: the run as users expect it. Run identity (the same command resumes), an explicit --run-id
refused when prompts or generation would change, plans extended by --limit/--samples, partial runs never
shown as final (run, score, show, show --json, leaderboard, compare/gate), how every invocation ended,
and files that honour the umask. All through the CLI on real files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli_env


def _answers(path: Path, n: int = 60) -> Path:
    import random

    rng = random.Random(7)
    lines = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(json.dumps({"task": "toy/addition", "index": i, "output": str(a + b + (i % 5 == 0))}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(run: Path, task: str) -> int:
    p = run / task / "samples.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


# -- run identity ------------------------------------------------------------------------------------------

def test_same_command_twice_generates_nothing_the_second_time(cli, tmp_path):
    args = ["run", "--tasks", "toy/addition", "toy/upper", "--backend", "gold", "-T", "n=9", "--json"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    run_id = out["run_id"]
    assert out["n_generated"] == 13 and out["complete"] is True
    # the run id and folder come first on stderr, though stderr is not a terminal here
    assert first.stderr.splitlines()[0] == f"evalsuite: run {run_id} (new) in results/{run_id}"
    assert run_id.startswith("gold-toy-addition-and-1-more-")

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    out2 = json.loads(again.stdout)
    assert out2["run_id"] == run_id and out2["n_generated"] == 0 and out2["n_resumed"] == 13
    assert again.stderr.splitlines()[0] == f"evalsuite: run {run_id} (resuming) in results/{run_id}"
    assert out2["scores"]["toy/addition"]["value"] == out["scores"]["toy/addition"]["value"]

    # the comma spelling and another task order are the same command
    same = cli("run", "--tasks", "toy/upper,toy/addition", "--backend", "gold", "-T", "n=9", "--json")
    assert json.loads(same.stdout)["run_id"] == run_id
    # anything that defines the run makes another run
    other = {json.loads(cli(*a, "--json").stdout)["run_id"] for a in (
        ["run", "--tasks", "toy/addition", "toy/upper", "--backend", "gold", "-T", "n=10"],
        ["run", "--tasks", "toy/addition", "toy/upper", "--backend", "gold", "-T", "n=9", "--limit", "3"],
        ["run", "--tasks", "toy/addition", "toy/upper", "--backend", "gold", "-T", "n=9", "--max-tokens", "5"],
        ["run", "--tasks", "toy/addition", "toy/upper", "--backend", "echo", "-T", "n=9"])}
    assert len(other) == 4 and run_id not in other
    manifest = json.loads((tmp_path / "results" / run_id / "manifest.json").read_text())
    assert manifest["identity"]["tasks"] == ["toy/addition", "toy/upper"]
    assert [inv["status"] for inv in manifest["invocations"]] == ["complete", "complete", "complete"]


def test_explicit_run_id_with_another_length_exits_2_and_leaves_the_run_untouched(cli, tmp_path,
                                                                                   word_tokenizer_dir):
    base = ["run", "--tasks", "ruler/niah_single_1", "--backend", "gold", "--model", str(word_tokenizer_dir),
            "-T", "num_samples=3", "--run-id", "r1"]
    r = cli(*base, "-T", "length=1024")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r1"
    before = _snapshot(run)

    r = cli(*base, "-T", "length=2048")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert "ruler/niah_single_1 option length: 1024 -> 2048" in r.stderr
    assert "Nothing was changed; use a new --run-id" in r.stderr
    assert _snapshot(run) == before

    # several differences are all listed; an option spelled out at its default is no difference
    r = cli(*base, "-T", "length=1024", "--temperature", "0.5", "-B", "tail=3", "--backend", "echo")
    assert r.returncode == 2
    for part in ("backend: gold -> echo", "generation parameter temperature: (none) -> 0.5",
                 "backend option tail: (none) -> 3"):
        assert part in r.stderr
    assert _snapshot(run) == before
    r = cli(*base, "-T", "length=1024", "-T", "tokens_to_generate=128", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_generated"] == 0


def test_limit_and_samples_extend_the_plan_and_scores_cover_all_of_it(cli, tmp_path):
    base = ["run", "--tasks", "toy/addition", "--backend", "gold", "--run-id", "ext", "--json"]
    out = json.loads(cli(*base, "--limit", "10").stdout)
    assert out["scores"]["toy/addition"]["n"] == 10
    # a smaller limit does not shrink what the run planned: nothing new, scores over the 10
    out = json.loads(cli(*base, "--limit", "4").stdout)
    assert out["n_generated"] == 0 and out["scores"]["toy/addition"]["n"] == 10
    # --samples adds to the plan
    out = json.loads(cli(*base, "--samples", "toy/addition:30,add-31").stdout)
    assert out["n_generated"] == 2 and out["scores"]["toy/addition"]["n"] == 12
    assert out["scores"]["toy/addition"]["n_planned"] == 12
    per = [json.loads(x)["index"] for x in (tmp_path / "results/ext/toy/addition/per_sample.jsonl").read_text().splitlines()]
    assert per == list(range(10)) + [30, 31]
    manifest = json.loads((tmp_path / "results/ext/manifest.json").read_text())
    assert manifest["selections"] == [{"limit": 10, "samples": None}, {"limit": 4, "samples": None},
                                      {"limit": None, "samples": ["toy/addition:30", "add-31"]}]


# -- partial is never final ------------------------------------------------------------------------------

def _kill_when(cmd: list[str], cwd: Path, run: Path, task: str, at_least: int, env: dict) -> None:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while _rows(run, task) < at_least and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert 0 < _rows(run, task) < 60


def test_killed_run_is_partial_in_show_json_score_leaderboard_and_compare(cli, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl")
    env = cli_env()
    common = ["--tasks", "toy/addition", "-T", "n=60", "--backend", "replay", "-B", f"file={answers}"]
    # a complete run to compare with
    r = cli("run", *common, "--run-id", "full", "--json")
    assert r.returncode == 0, r.stderr
    cmd = [sys.executable, "-m", "evalsuite.cli", "run", *common, "-B", "delay=0.03", "--run-id", "killed",
           "--no-progress"]
    run = tmp_path / "results" / "killed"
    _kill_when(cmd, tmp_path, run, "toy/addition", 5, env)
    done = _rows(run, "toy/addition")

    show = cli("show", "killed")
    assert show.returncode == 0, show.stderr
    assert "PARTIAL toy/addition" in show.stdout and f"{60 - done} of 60 planned samples missing" in show.stdout
    assert "run killed: partial:" in show.stdout
    js = json.loads(cli("show", "killed", "--json").stdout)
    assert js["complete"] is False and js["counts"] == {"planned": 60, "scored": done, "missing": 60 - done,
                                                        "failed": 0}
    assert js["tasks"]["toy/addition"]["complete"] is False
    man = json.loads((run / "manifest.json").read_text())
    assert man["invocations"][-1]["status"] == "running"  # SIGKILL: nothing could record the end

    # score what is there: the numbers come with PARTIAL, n as done/planned
    sc = cli("score", "killed")
    assert sc.returncode == 0, sc.stderr
    assert "PARTIAL" in sc.stdout and f"{done}/60" in sc.stdout
    sj = json.loads(cli("score", "killed", "--json").stdout)
    assert sj["complete"] is False and sj["scores"]["toy/addition"]["n_missing"] == 60 - done

    # the leaderboard lists it apart (replay is scripted: rank scripted runs to see the partial rule alone)
    site = tmp_path / "site"
    lb = cli("leaderboard", "build", "results", "-o", str(site), "--include-scripted")
    assert lb.returncode == 0, lb.stderr
    index = (site / "index.html").read_text()
    overview, _, unranked = index.partition('id="unranked"')
    assert 'href="runs/full.html"' in overview and 'href="runs/killed.html"' not in overview
    assert 'href="runs/killed.html"' in unranked and "partial:" in unranked
    assert 'class="badge partial"' in (site / "runs" / "killed.html").read_text()
    lb = cli("leaderboard", "build", "results", "-o", str(site), "--include-scripted", "--include-partial")
    overview = (site / "index.html").read_text().partition('id="unranked"')[0]
    assert 'href="runs/killed.html"' in overview and 'class="badge partial"' in overview

    # compare warns; gate fails on a partial candidate unless the policy allows it
    cmp = cli("compare", "full", "killed", "--json")
    assert cmp.returncode == 0, cmp.stderr
    c = json.loads(cmp.stdout)
    assert c["candidate_complete"] is False and c["baseline_complete"] is True
    assert any("candidate run is PARTIAL" in w for w in c["warnings"])
    policy = tmp_path / "policy.toml"
    policy.write_text("[defaults]\ntolerance = 100.0\nmin_samples = 1\n")
    gate = cli("gate", "--baseline", "full", "--candidate", "killed", "--policy", str(policy))
    assert "candidate run is PARTIAL" in gate.stdout
    assert gate.returncode == 1 and "fail" in gate.stdout, gate.stdout + gate.stderr  # partial fails the gate...
    policy.write_text("[defaults]\ntolerance = 100.0\nmin_samples = 1\nallow_partial = true\n")
    gate = cli("gate", "--baseline", "full", "--candidate", "killed", "--policy", str(policy))
    assert gate.returncode == 0 and "candidate run is PARTIAL" in gate.stdout, gate.stdout + gate.stderr  # ...unless allowed

    # finishing the run makes it complete everywhere
    fin = cli("run", *common, "--run-id", "killed", "--json")
    assert fin.returncode == 0, fin.stderr
    assert json.loads(cli("show", "killed", "--json").stdout)["complete"] is True


def test_interrupted_resume_with_a_larger_plan_does_not_show_the_old_score(cli, tmp_path):
    answers = _answers(tmp_path / "answers.jsonl")
    env = cli_env()
    common = ["--tasks", "toy/addition", "-T", "n=60", "--backend", "replay", "-B", f"file={answers}",
              "--run-id", "grow"]
    r = cli("run", *common, "--limit", "10", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["scores"]["toy/addition"]["n"] == 10
    run = tmp_path / "results" / "grow"
    cmd = [sys.executable, "-m", "evalsuite.cli", "run", *common, "-B", "delay=0.03", "--no-progress"]
    _kill_when(cmd, tmp_path, run, "toy/addition", 15, env)
    js = json.loads(cli("show", "grow", "--json").stdout)
    assert js["complete"] is False and js["counts"]["planned"] == 60
    tc = js["tasks"]["toy/addition"]["completeness"]
    assert tc["scores_current"] is False and tc["planned"] == 60
    text = cli("show", "grow").stdout
    assert "PARTIAL toy/addition" in text and "scores out of date" in text


def test_failed_requests_make_run_exit_3_and_every_ending_is_recorded(cli, tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps({"task": "toy/upper", "index": 0, "output": "ALPHA"}) + "\n")
    r = cli("run", "--tasks", "toy/upper", "--backend", "replay", "-B", f"file={f}", "--run-id", "p")
    assert r.returncode == 3
    assert "PARTIAL toy/upper: 3 failed generations (scored as 0)" in r.stdout
    assert "evalsuite: run p PARTIAL" in r.stdout
    man = json.loads((tmp_path / "results/p/manifest.json").read_text())
    assert man["invocations"][-1]["status"] == "partial"


def test_interrupt_message_names_the_run_and_the_invocation_says_interrupted(tmp_path):
    answers = _answers(tmp_path / "answers.jsonl")
    cmd = [sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "toy/addition", "-T", "n=60", "--backend",
           "replay", "-B", f"file={answers}", "-B", "delay=0.05", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first = proc.stderr.readline()  # "evalsuite: run <id> (new) in results/<id>"
    run_id = first.split()[2]
    run = tmp_path / "results" / run_id
    deadline = time.time() + 60
    while _rows(run, "toy/addition") < 3 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"completed generations are saved in results/{run_id}" in err and f"--run-id {run_id}" in err
    man = json.loads((run / "manifest.json").read_text())
    assert man["invocations"][-1]["status"] == "interrupted" and man["invocations"][-1]["ended"]


def test_an_error_after_the_manifest_is_written_is_recorded(cli, tmp_path, fake_openai):
    server = fake_openai()
    # endpoint=completions must render chats locally: without -B tokenizer= that fails once generation starts
    r = cli("run", "--tasks", "toy/upper", "--backend", "openai", "--model", "test-model", "-B",
            f"base_url={server.url}", "-B", "endpoint=completions", "--run-id", "err")
    assert r.returncode == 2 and "pass the model's tokenizer folder" in r.stderr
    inv = json.loads((tmp_path / "results/err/manifest.json").read_text())["invocations"][-1]
    assert inv["status"] == "error" and "tokenizer" in inv["error"] and inv["ended"]


# -- files ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_run_files_honour_the_umask(tmp_path, umask, file_mode, dir_mode):
    cmd = [sys.executable, "-m", "evalsuite.cli", "run", "--tasks", "toy", "--backend", "gold", "--run-id", "u",
           "--log-prompts", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                       preexec_fn=lambda: os.umask(umask), timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", "score", "u"], cwd=tmp_path, env=cli_env(),
                       capture_output=True, text=True, preexec_fn=lambda: os.umask(umask), timeout=120)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "u"
    files = [p for p in run.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"manifest.json", "scores.json", "per_sample.jsonl", "plan.json", "samples.jsonl", "prompts.jsonl"} <= names
    assert {str(p.relative_to(run)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == \
        {str(p.relative_to(run)): oct(file_mode) for p in files}
    for d in [run, *(p for p in run.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) == dir_mode, d
    assert not [p for p in run.rglob("*.tmp")]
