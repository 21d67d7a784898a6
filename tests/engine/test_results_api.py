"""Issue 18: runs in pandas. evalsuite.load_run(path).scores() / .samples(), and `evalsuite export` to CSV,
parquet and JSONL that pandas reads back with the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env

pd = pytest.importorskip("pandas")


def _replay(path: Path, n: int = 40, wrong_every: int = 3) -> Path:
    import random

    rng = random.Random(7)
    lines = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(json.dumps({"task": "toy/addition", "index": i, "output": str(a + b + (i % wrong_every == 0))}))
    lines.append(json.dumps({"task": "toy/upper", "index": 0, "output": "ALPHA"}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def two_runs(cli, tmp_path):
    answers = _replay(tmp_path / "a.jsonl")
    r = cli("run", "--tasks", "toy", "--backend", "replay", "-B", f"file={answers}", "-B", "missing=empty",
            "--run-id", "rp")
    assert r.returncode == 0, r.stderr
    r = cli("run", "--tasks", "toy/addition", "--backend", "gold", "--run-id", "gd", "--limit", "10")
    assert r.returncode == 0, r.stderr
    return tmp_path


def test_load_run_from_python_as_in_the_readme(two_runs):
    code = "import evalsuite; r = evalsuite.load_run('results/rp'); print(r.scores())"
    r = subprocess.run([sys.executable, "-c", code], cwd=two_runs, env=cli_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "toy/addition" in r.stdout and "toy_exact" in r.stdout and "65.0" in r.stdout


def test_scores_and_samples_frames_match_the_files(two_runs, monkeypatch):
    import evalsuite

    monkeypatch.chdir(two_runs)
    r = evalsuite.load_run("rp")
    assert r.complete is True and r.run_id == "rp"
    s = r.scores()
    assert list(s["task"]) == ["toy/addition", "toy/upper"] and set(s["metric"]) == {"toy_exact"}
    files = {t: json.loads((two_runs / "results/rp" / t / "scores.json").read_text()) for t in s["task"]}
    for _, row in s.iterrows():
        f = files[row["task"]]
        assert row["value"] == f["value"] and row["n"] == f["n"] and row["stderr"] == f["metrics"][0]["stderr"]
        assert [row["ci_low"], row["ci_high"]] == f["metrics"][0]["ci95"] and bool(row["complete"])
    sm = r.samples()
    assert len(sm) == 44 and sm["sample_id"].is_unique
    add = sm[sm["task"] == "toy/addition"].sort_values("index")
    per = [json.loads(x) for x in (two_runs / "results/rp/toy/addition/per_sample.jsonl").read_text().splitlines()]
    assert list(add["metrics.toy_exact"]) == [p["metrics"]["toy_exact"] for p in per]
    assert list(add["prediction"]) == [p["prediction"] for p in per]
    assert add["metrics.toy_exact"].mean() * 100 == pytest.approx(files["toy/addition"]["value"])
    assert set(add["reference"].map(type)) == {str}
    assert {"metadata.a", "metadata.b", "prompt_tokens", "finish_reason", "flags", "error"} <= set(sm.columns)
    up = sm[sm["task"] == "toy/upper"]
    assert list(up["prediction"]) == ["ALPHA", "", "", ""]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_stacks_runs_and_reads_back_with_the_same_numbers(cli, two_runs, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    import evalsuite

    out = two_runs / f"scores.{fmt}"
    r = cli("export", "results/rp", "gd", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote 3 rows (scores of 2 runs) to {out} as {fmt}" in r.stdout
    back = {"csv": pd.read_csv, "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](out)
    want = pd.concat([evalsuite.load_run(two_runs / "results" / x).scores() for x in ("rp", "gd")], ignore_index=True)
    assert list(back["run_id"]) == ["rp", "rp", "gd"]
    for col in ("value", "ci_low", "ci_high", "stderr", "n", "n_planned"):
        assert list(back[col]) == list(want[col]), col

    samples = two_runs / f"samples.{fmt}"
    r = cli("export", "rp", "gd", "--table", "samples", "-o", str(samples), "--format", fmt)
    assert r.returncode == 0, r.stderr
    back = {"csv": pd.read_csv, "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](samples)
    assert len(back) == 44 + 10
    assert list(back["metrics.toy_exact"]) == list(
        pd.concat([evalsuite.load_run(two_runs / "results" / x).samples() for x in ("rp", "gd")],
                  ignore_index=True)["metrics.toy_exact"])


def test_export_errors_are_one_line(cli, two_runs):
    r = cli("export", "rp", "-o", str(two_runs / "x.xlsx"))
    assert r.returncode == 2 and "pass --format csv|parquet|jsonl" in r.stderr
    r = cli("export", "nope", "-o", str(two_runs / "x.csv"))
    assert r.returncode == 2 and "no run at" in r.stderr
    r = cli("export", "rp", "-o", str(two_runs / "no" / "dir" / "x.csv"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_partial_run_exports_with_complete_false_and_a_warning(cli, tmp_path):
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps({"task": "toy/upper", "index": 0, "output": "ALPHA"}) + "\n")
    assert cli("run", "--tasks", "toy/upper", "--backend", "replay", "-B", f"file={f}", "--run-id", "p").returncode == 3
    r = cli("export", "p", "-o", str(tmp_path / "p.csv"))
    assert r.returncode == 0 and "run p is partial" in r.stderr
    assert list(pd.read_csv(tmp_path / "p.csv")["complete"]) == [False]
