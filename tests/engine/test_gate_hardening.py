"""The gate cannot pass by accident (issue 16 §3): NaN or missing values fail, a gate that checked
nothing exits 2, every malformed policy is one line and exit 2, and a partial candidate fails unless the
policy allows it. Through ``cli.main`` on run folders in the store's layout."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leaderboard_synth import write_run  # noqa: E402

POLICY = "[defaults]\ntolerance = 1.0\nmin_samples = 10\niterations = 200\n"
TASK = "synth_lb/x"


@pytest.fixture
def gate(capsys, monkeypatch, tmp_path):
    from evalsuite.cli import main

    for k in [k for k in __import__("os").environ if k.startswith("EVALSUITE_")]:
        monkeypatch.delenv(k)

    def _run(base, cand, policy=POLICY, *extra):
        p = tmp_path / "policy.toml"
        if isinstance(policy, bytes):
            p.write_bytes(policy)
        else:
            p.write_text(policy)
        capsys.readouterr()
        rc = main(["gate", "--baseline", str(base), "--candidate", str(cand), "--policy", str(p),
                   "--json", str(tmp_path / "gate.json"), *extra])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return _run


@pytest.fixture
def pair(tmp_path):
    base = write_run(tmp_path / "r", "base", [TASK, "synth_lb/y"], 60, 0.7, 1)
    cand = tmp_path / "r" / "cand"
    shutil.copytree(base, cand)
    return base, cand


def _edit_scores(run: Path, task: str, **changes):
    f = run / task / "scores.json"
    s = json.loads(f.read_text())
    for k, v in changes.items():
        if k == "value":
            s["value"] = v
            for m in s["metrics"][:1]:
                m["value"] = v
        else:
            s[k] = v
    f.write_text(json.dumps(s))


def _edit_per_sample(run: Path, task: str, value):
    f = run / task / "per_sample.jsonl"
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    for r in rows:
        r["metrics"] = {"acc": value}
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_identical_runs_still_pass(gate, pair):
    rc, out, err = gate(*pair)
    assert rc == 0, out + err
    rep = json.loads((pair[0].parent.parent / "gate.json").read_text())
    assert rep["n_checks"] == 2 and rep["status"] == "pass"


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_nan_on_either_side_is_a_failed_check(gate, pair, side):
    run = pair[1] if side == "candidate" else pair[0]
    _edit_per_sample(run, TASK, float("nan"))
    _edit_scores(run, TASK, value=float("nan"))
    rc, out, err = gate(*pair)
    assert rc == 1, out + err
    rep = json.loads((pair[0].parent.parent / "gate.json").read_text())
    (c,) = [c for c in rep["checks"] if c["task"] == TASK]
    assert c["status"] == "fail" and "NaN" in c["reason"] and side in c["reason"], c["reason"]


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_a_missing_value_on_either_side_is_a_failed_check(gate, pair, side):
    run = pair[1] if side == "candidate" else pair[0]
    _edit_per_sample(run, TASK, None)
    _edit_scores(run, TASK, value=None)
    rc, out, err = gate(*pair)
    assert rc == 1, out + err
    rep = json.loads((pair[0].parent.parent / "gate.json").read_text())
    (c,) = [c for c in rep["checks"] if c["task"] == TASK]
    assert c["status"] == "fail" and "no value" in c["reason"] and side in c["reason"], c["reason"]


def test_an_unscored_baseline_task_is_a_failed_check(gate, pair):
    # the baseline's scores.json lists no metric (every sample failed before scoring produced one)
    _edit_scores(pair[0], TASK, metrics=[], main=None, value=None)
    rc, out, err = gate(*pair)
    assert rc == 1, out + err
    rep = json.loads((pair[0].parent.parent / "gate.json").read_text())
    (c,) = [c for c in rep["checks"] if c["task"] == TASK]
    assert c["status"] == "fail" and "no metric" in c["reason"]


def test_nothing_gated_exits_2(gate, pair, tmp_path):
    rc, out, err = gate(*pair, POLICY + '[[rule]]\ntask = "*"\nskip = true\n')
    assert rc == 2 and "nothing was gated" in err and "Traceback" not in err, err
    assert json.loads((tmp_path / "gate.json").read_text())["status"] == "error"
    rc, out, err = gate(*pair, POLICY + '[tasks]\ninclude = ["ruler/*"]\n')
    assert rc == 2 and "nothing was gated" in err and "'ruler/*' matches no task" in err, err
    # a baseline with no scored task at all
    empty = tmp_path / "r" / "empty"
    shutil.copytree(pair[0], empty)
    for t in (TASK, "synth_lb/y"):
        (empty / t / "scores.json").unlink()
    rc, out, err = gate(empty, pair[1])
    assert rc == 2 and "nothing was gated" in err


def test_an_include_or_rule_that_matches_nothing_is_reported(gate, pair):
    rc, out, err = gate(*pair, POLICY + '[tasks]\ninclude = ["synth_lb/*", "typo/*"]\n'
                                        '[[rule]]\ntask = "synht_lb/*"\ntolerance = 5.0\n')
    assert rc == 0, out + err
    assert "'typo/*' matches no task" in out and "matches no task and metric" in out and "synht_lb/*" in out


@pytest.mark.parametrize("policy, msg", [
    ("tasks = 5\n", "[tasks] must be a table"),
    ("defaults = 5\n", "[defaults] must be a table"),
    ("rule = [1]\n", "[[rule]] #1 must be a table"),
    ("rule = 'x'\n", "[[rule]]"),
    ("rule = [[1, 2]]\n", "[[rule]] #1 must be a table"),
    (b"[defaults]\ntolerance = 1.0 # \xff\xfe caf\xe9\n", "not UTF-8"),
    ("[tasks]\ninclude = 'ruler/*'\n", "include must be a list"),
    ("[tasks]\ninclude = [1]\n", "include must be a list"),
    ("[tasks]\ninclude = ['a']\nexclude = ['b']\n", "unknown key"),
    ("[[rule]]\ntolerance = 'big'\n", "tolerance"),
    ("[[rule]]\ntolerance = true\n", "tolerance"),
    ("[[rule]]\nskip = 1\n", "skip"),
    ("[[rule]]\ntask = 5\n", "task must be a glob"),
    ("[[rule]]\nmetric = ['a']\n", "metric must be a glob"),
    ("[[rule]]\ndirection = 5\n", "direction"),
    ("[[rule]]\nallow_partial = 'yes'\n", "allow_partial"),
    ("[defaults]\nallow_partial = 1\n", "allow_partial"),
    ("[defaults]\nmin_samples = 2.5\n", "min_samples"),
    ("[defaults]\n[defaults.extra]\nx = 1\n", "unknown key"),
    ("[defaults]\nalpha = nan\n", "alpha"),
    ("[defaults]\ntolerance = inf\n", "tolerance"),
    ("[[rule]]\nfoo = 1\n", "unknown key"),
])
def test_every_malformed_policy_is_one_line_and_exit_2(gate, pair, policy, msg):
    rc, out, err = gate(*pair, policy)
    assert rc == 2, (policy, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalsuite: error: policy") and msg in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("field", ["n_missing", "n_errors"])
def test_a_partial_candidate_fails_unless_allowed(gate, pair, field):
    _edit_scores(pair[1], TASK, **{field: 3})
    rc, out, err = gate(*pair)
    assert rc == 1, out + err
    rep = json.loads((pair[0].parent.parent / "gate.json").read_text())
    failed = [c for c in rep["checks"] if c["status"] == "fail"]
    assert [(c["task"], c["metric"]) for c in failed] == [(TASK, "*")] and "partial" in failed[0]["reason"]
    assert "3" in failed[0]["reason"]
    rc, out, err = gate(*pair, POLICY + "allow_partial = true\n")
    assert rc == 0, out + err
    rc, out, err = gate(*pair, POLICY + f'[[rule]]\ntask = "{TASK}"\nallow_partial = true\n')
    assert rc == 0, out + err


def test_planned_but_unanswered_samples_make_the_candidate_partial(gate, pair):
    # scores.json says complete, but the plan lists samples the log has no answer for
    plan = pair[1] / TASK / "plan.json"
    doc = json.loads(plan.read_text())
    doc["keys"].append("f" * 32)
    plan.write_text(json.dumps(doc))
    rc, out, err = gate(*pair)
    assert rc == 1 and f"the candidate is partial for {TASK}: 1 of 61 planned samples have no answer" in out, out + err


def test_a_partial_baseline_is_a_warning(gate, pair):
    _edit_scores(pair[0], TASK, n_errors=2)
    rc, out, err = gate(*pair)
    assert rc == 0 and f"the baseline is partial for {TASK}: 2 errors" in out, out + err


def test_real_run_with_failed_requests_fails_the_gate(cli, tmp_path):
    """End to end: a candidate whose requests errored (a replay file without the answers: like a code task
    whose compiler is missing) does not pass, whatever its score."""
    gold = tmp_path / "gold.jsonl"
    from conftest import PLUGIN_DIR  # noqa: F401 - the toy plugin is on the CLI's path

    r = cli("run", "--tasks", "toy/addition", "-T", "n=30", "--backend", "gold", "--run-id", "base", "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "results/base/toy/addition/samples.jsonl").read_text().splitlines()]
    gold.write_text("".join(json.dumps({"task": "toy/addition", "sample_id": x["sample_id"],
                                        "output": x["generation"]["text"]}) + "\n" for x in rows[:27]))
    r = cli("run", "--tasks", "toy/addition", "-T", "n=30", "--backend", "replay", "-B", f"file={gold}",
            "--run-id", "cand", "--no-progress")
    assert r.returncode == 3, r.stderr  # the run itself says it is partial
    (tmp_path / "p.toml").write_text("[defaults]\ntolerance = 50\nmin_samples = 1\niterations = 200\n")
    r = cli("gate", "--baseline", "results/base", "--candidate", "results/cand", "--policy", "p.toml")
    assert r.returncode == 1 and "partial" in r.stdout and "3 errors" in r.stdout, r.stdout + r.stderr
    (tmp_path / "p.toml").write_text("[defaults]\ntolerance = 50\nmin_samples = 1\niterations = 200\n"
                                     "allow_partial = true\n")
    r = cli("gate", "--baseline", "results/base", "--candidate", "results/cand", "--policy", "p.toml")
    assert r.returncode == 0, r.stdout + r.stderr
