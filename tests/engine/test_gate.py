"""`evalsuite compare` and `evalsuite gate` through the CLI on real run folders (the toy plugin task run
by the scripted backends), plus policy parsing and report formats."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leaderboard_synth import write_run  # noqa: E402

from evalsuite.errors import UserError  # noqa: E402
from evalsuite.gate import load_policy, run_gate  # noqa: E402

N = 400
POLICY = """
[defaults]
tolerance = 1.0
alpha = 0.05
min_samples = 100
iterations = 1000
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Baseline 85% (wrong on 0..59) and candidates on 400 toy/addition samples."""
    from conftest import PLUGIN_DIR, cli_env, run_cli

    d = tmp_path_factory.mktemp("gate")

    def run(*args):
        r = run_cli(list(args), cwd=d, env=cli_env())
        assert r.returncode == 0, r.stderr[-2000:]

    # the toy plugin's own samples give the right answers
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        from evalsuite_toy_plugin import Addition
    finally:
        sys.path.remove(str(PLUGIN_DIR))
    gold = [{"sample_id": x.id, "index": x.index, "prediction": x.target} for x in Addition(n=N).samples()]

    def replay(run_id, wrong, **extra):
        f = d / f"{run_id}.jsonl"
        f.write_text("".join(json.dumps({"task": "toy/addition", "sample_id": r["sample_id"],
                                         "output": "no" if r["index"] in wrong else r["prediction"]}) + "\n"
                             for r in gold))
        args = ["run", "--tasks", "toy/addition", "-T", f"n={N}", "--backend", "replay", "-B", f"file={f}",
                "--run-id", run_id, "--no-progress"]
        for k, v in extra.items():
            args += ["-T", f"{k}={v}"]
        run(*args)

    replay("base", set(range(60)))
    replay("base_again", set(range(60)))
    # fixes 0..9, breaks 60..89: a net planted drop of 20/400 = 5 points, McNemar b=30, c=10
    replay("drop5", set(range(10, 90)))
    # breaks 60..65 only: 1.5 points worse, significant at 0.05? b=6, c=0 -> p=0.031
    replay("drop1_5", set(range(66)))
    (d / "policy.toml").write_text(POLICY)
    return d


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli_inproc(capsys, monkeypatch):
    """`evalsuite ...` through cli.main in this process (compare/gate import nothing heavy); the
    subprocess `cli` fixture covers the same commands end to end in the planted-drop test."""
    from evalsuite.cli import main

    for k in [k for k in __import__("os").environ if k.startswith("EVALSUITE_")]:
        monkeypatch.delenv(k)

    def _run(*args):
        capsys.readouterr()
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
        out = capsys.readouterr()
        return _Result(rc, out.out, out.err)

    return _run


def _gate(cli, d, cand, *extra, base="base", policy="policy.toml"):
    return cli("gate", "--baseline", str(d / "results" / base), "--candidate", str(d / "results" / cand),
               "--policy", str(d / policy), *extra)


def test_planted_5_point_drop_fails_with_exit_1(cli, runs, tmp_path):
    r = _gate(cli, runs, "drop5", "--json", str(tmp_path / "g.json"), "--junit", str(tmp_path / "g.xml"),
              "--markdown", str(tmp_path / "summary.md"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "## evalsuite gate: FAILED" in r.stdout
    rep = json.loads((tmp_path / "g.json").read_text())
    assert rep["status"] == "fail" and rep["exit_code"] == 1 and rep["n_failed"] == 1
    c = rep["checks"][0]
    assert (c["task"], c["metric"], c["status"], c["test"]) == ("toy/addition", "toy_exact", "fail", "mcnemar")
    assert c["baseline"] == pytest.approx(85.0) and c["candidate"] == pytest.approx(80.0)
    assert c["delta"] == pytest.approx(-5.0) and c["n_shared"] == N
    scipy_stats = pytest.importorskip("scipy.stats")
    assert c["p_value"] == pytest.approx(scipy_stats.binomtest(10, 40, 0.5).pvalue, rel=1e-9)
    assert c["ci_low"] < -5.0 < c["ci_high"] < 0
    xml = ET.parse(tmp_path / "g.xml").getroot()
    suite = xml.find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case.get("classname") == "toy/addition" and case.find("failure") is not None
    assert (tmp_path / "summary.md").read_text() == r.stdout


def test_identical_candidate_passes(cli_inproc, runs):
    for cand in ("base", "base_again"):
        r = _gate(cli_inproc, runs, cand)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "## evalsuite gate: passed" in r.stdout and "no regression" in r.stdout


def test_identical_candidate_never_fails_over_many_baselines(tmp_path):
    """Across baselines of different sizes and accuracies, a copy of the baseline always passes, even with
    zero tolerance and a lax significance level."""
    pol = tmp_path / "p.toml"
    pol.write_text("[defaults]\ntolerance = 0.0\nalpha = 0.5\nmin_samples = 1\niterations = 200\n")
    policy = load_policy(pol)
    for seed in range(12):
        n = 20 + 37 * seed
        base = write_run(tmp_path / "r", f"b{seed}", ["synth_ruler/a", "synth_lb/b"], n, 0.3 + 0.05 * seed, seed)
        cand = tmp_path / "r" / f"c{seed}"
        shutil.copytree(base, cand)
        res = run_gate(str(base), str(cand), policy)
        assert res.exit_code == 0 and len(res.checks) == 2 and not res.failed


def test_small_drop_within_tolerance_passes_and_tighter_policy_fails(cli_inproc, runs):
    r = _gate(cli_inproc, runs, "drop1_5")
    assert r.returncode == 1  # 1.5 > 1.0 tolerance and p = 0.031 < 0.05
    (runs / "loose.toml").write_text(POLICY + '\n[[rule]]\ntask = "toy/*"\ntolerance = 2.0\n')
    assert _gate(cli_inproc, runs, "drop1_5", policy="loose.toml").returncode == 0
    (runs / "strict_alpha.toml").write_text(POLICY.replace("alpha = 0.05", "alpha = 0.01"))
    r = _gate(cli_inproc, runs, "drop1_5", policy="strict_alpha.toml")
    assert r.returncode == 0 and "not significant" in r.stdout


def test_direction_lower_turns_an_improvement_into_a_regression(cli_inproc, runs):
    (runs / "lower.toml").write_text(POLICY + '\n[[rule]]\nmetric = "toy_exact"\ndirection = "lower"\n')
    assert _gate(cli_inproc, runs, "base", base="drop5").returncode == 0
    assert _gate(cli_inproc, runs, "base", base="drop5", policy="lower.toml").returncode == 1


def test_min_samples_and_missing_task_fail(cli_inproc, runs, tmp_path):
    (runs / "many.toml").write_text(POLICY.replace("min_samples = 100", "min_samples = 1000"))
    r = _gate(cli_inproc, runs, "base_again", policy="many.toml")
    assert r.returncode == 1 and "fewer than min_samples 1000" in r.stdout
    # the candidate lost the task entirely
    cand = tmp_path / "results" / "empty"
    shutil.copytree(runs / "results" / "base", cand)
    shutil.rmtree(cand / "toy")
    r = cli_inproc("gate", "--baseline", str(runs / "results/base"), "--candidate", str(cand), "--policy",
            str(runs / "policy.toml"))
    assert r.returncode == 1 and "missing from the candidate" in r.stdout


def test_usage_errors_exit_2(cli_inproc, runs, tmp_path):
    bad = tmp_path / "bad.toml"
    for text, msg in (("[defaults]\ntolerance = -1\n", "tolerance"), ("[defaults\n", "not valid TOML"),
                      ("[defaults]\nalpah = 0.1\n", "unknown key"), ("[[rule]]\ndirection = 'up'\n", "direction"),
                      ("[extra]\n", "unknown table")):
        bad.write_text(text)
        r = cli_inproc("gate", "--baseline", str(runs / "results/base"), "--candidate", str(runs / "results/base"),
                "--policy", str(bad))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (text, r.stderr)
    r = _gate(cli_inproc, runs, "nope")
    assert r.returncode == 2 and "no run at" in r.stderr
    r = cli_inproc("gate", "--baseline", str(runs / "results/base"), "--policy", str(runs / "policy.toml"))
    assert r.returncode == 2
    r = _gate(cli_inproc, runs, "base", policy="missing.toml")
    assert r.returncode == 2 and "cannot read policy" in r.stderr


def test_compare_json_reports_paired_difference(cli_inproc, runs):
    r = cli_inproc("compare", str(runs / "results/base"), str(runs / "results/drop5"), "--json", "--iterations", "500")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (row,) = out["rows"]
    assert row["delta"] == pytest.approx(-5.0) and row["discordant"] == [30, 10] and row["test"] == "mcnemar"
    assert out["options"]["iterations"] == 500 and not out["warnings"]
    table = cli_inproc("compare", str(runs / "results/base"), str(runs / "results/drop5"))
    assert table.returncode == 0 and "toy_exact" in table.stdout and "-5.00" in table.stdout


def test_compare_refuses_different_prompts_unless_overridden(cli, cli_inproc, runs, tmp_path):
    # same sample ids, other numbers: the prompts differ
    r = cli("run", "--tasks", "toy/addition", "-T", f"n={N}", "-T", "seed=8", "--backend", "gold",
            "--run-id", "other", "--no-progress")
    assert r.returncode == 0, r.stderr
    other = str(tmp_path / "results" / "other")
    r = cli_inproc("compare", str(runs / "results/base"), other)
    assert r.returncode == 2 and "prompts differ on 400 of 400" in r.stderr and "--allow-mismatch" in r.stderr
    r = cli_inproc("gate", "--baseline", str(runs / "results/base"), "--candidate", other, "--policy",
                   str(runs / "policy.toml"))
    assert r.returncode == 2 and "refusing to compare" in r.stderr
    r = cli_inproc("compare", str(runs / "results/base"), other, "--allow-mismatch", "--json")
    assert r.returncode == 0 and any("prompts differ" in w for w in json.loads(r.stdout)["warnings"])


def test_compare_refuses_task_version_and_data_hash_changes(tmp_path):
    from evalsuite.compare import CompareOptions, Incomparable, compare_runs

    a = write_run(tmp_path, "a", ["synth_lb/x"], 50, 0.7, 1)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    man = json.loads((b / "manifest.json").read_text())
    man["tasks"]["synth_lb/x"]["describe"]["data_sha256"] = "0" * 64
    (b / "manifest.json").write_text(json.dumps(man))
    scores = json.loads((b / "synth_lb/x/scores.json").read_text())
    scores["version"] = "2"
    (b / "synth_lb/x/scores.json").write_text(json.dumps(scores))
    with pytest.raises(Incomparable) as e:
        compare_runs(str(a), str(b))
    assert "task version '1' vs '2'" in str(e.value) and "data_sha256" in str(e.value)
    assert isinstance(e.value, UserError)
    res = compare_runs(str(a), str(b), CompareOptions(allow_mismatch=True, iterations=200))
    assert len(res.warnings) == 2 and res.rows[0]["delta"] == 0.0


def test_corpus_metric_uses_segment_statistics(tmp_path, monkeypatch):
    """A corpus metric (no per-sample values) with per-segment statistics and corpus_from_stats gets the
    paired corpus bootstrap."""
    from evalsuite import compare as cmp_mod
    from evalsuite.compare import CompareOptions, compare_runs

    def ratio(stats):
        return 100.0 * sum(s[0] for s in stats) / sum(s[1] for s in stats)

    monkeypatch.setattr(cmp_mod, "_corpus_fn", lambda name: ratio if name == "acc" else None)
    a = write_run(tmp_path, "a", ["synth_lb/x"], 120, 0.7, 1)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for run, shift in ((a, 0), (b, 2)):
        f = run / "synth_lb/x/per_sample.jsonl"
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        for r in rows:
            r["metrics"] = {"acc": None}
            r["stats"] = {"acc": [min(10, 5 + shift * (r["index"] % 2)), 10]}
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = compare_runs(str(a), str(b), CompareOptions(iterations=300))
    row = res.rows[0]
    assert row["test"] == "corpus_bootstrap" and row["delta"] == pytest.approx(10.0)
    assert row["ci_low"] > 0 and row["p_value"] < 0.01
