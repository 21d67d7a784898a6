"""Run folders written before files carried ``schema_version`` (tests/fixtures/run_v0, made by the code
of that time) still load: re-scoring reproduces their numbers without asking the judge again, and
show, compare, export, load_run and the leaderboard read them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "run_v0"
TASKS = ["toy/addition", "longbench_v2/cot", "longgenbench_wu/short", "ragtrans/test"]


@pytest.fixture
def old_runs(tmp_path):
    for name in ("results", "verdicts.jsonl", "replay.jsonl"):
        src = FIXTURE / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def _recorded(run: str) -> dict[str, dict]:
    return {t: json.loads((FIXTURE / "results" / run / t / "scores.json").read_text()) for t in TASKS}


def _values(scores: dict) -> dict:
    return {m["name"]: (m["value"], m.get("ci95"), m.get("stderr"), m["signature"]) for m in scores["metrics"]}


@pytest.mark.parametrize("run", ["gold", "replay"])
def test_rescoring_an_old_run_reproduces_its_numbers(cli, old_runs, run):
    r = cli("score", f"results/{run}", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] is True
    old = _recorded(run)
    for task in TASKS:
        new = out["scores"][task]
        assert _values(new) == _values(old[task]), task
        for k in ("n", "n_planned", "n_missing", "n_errors", "n_truncated", "main", "value"):
            assert new[k] == old[task][k], (task, k)
    # the judge's verdicts come from the run's cache: not one call
    judge = out["scores"]["longgenbench_wu/short"]["judge"][0]
    assert judge["calls"] == 0 and judge["cached"] > 0
    # per-sample values are the recorded ones
    for task in TASKS:
        rec = [json.loads(x) for x in (FIXTURE / "results" / run / task / "per_sample.jsonl").read_text().splitlines()]
        new = [json.loads(x) for x in (old_runs / "results" / run / task / "per_sample.jsonl").read_text().splitlines()]
        assert [(r["sample_id"], r["metrics"], r["prediction"], r.get("stats")) for r in rec] == \
               [(r["sample_id"], r["metrics"], r["prediction"], r.get("stats")) for r in new], task


def test_show_reads_an_old_run(cli, old_runs):
    r = cli("show", "results/replay", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] is True
    r = cli("show", "results/replay", "--samples", "--failed")
    assert r.returncode == 0, r.stderr
    assert "toy/addition" in r.stdout


def test_compare_and_export_read_old_runs(cli, old_runs):
    r = cli("compare", "results/gold", "results/replay", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(x["task"], x["metric"]): x for x in json.loads(r.stdout)["rows"]}
    assert rows[("toy/addition", "toy_exact")]["delta"] == pytest.approx(-100 / 3)
    assert rows[("ragtrans/test", "bleu")]["test"] == "corpus_bootstrap"
    assert rows[("longbench_v2/cot", "accuracy")]["test"] == "mcnemar"
    r = cli("export", "results/gold", "results/replay", "-o", "s.csv", "--table", "samples")
    assert r.returncode == 0, r.stderr
    import evalsuite

    run = evalsuite.load_run(old_runs / "results" / "replay")
    assert run.complete
    scores = run.scores()
    assert set(scores["task"]) == set(TASKS)
    assert len(run.samples()) == 12


def test_leaderboard_builds_from_old_runs(cli, old_runs):
    r = cli("leaderboard", "build", "results/gold", "results/replay", "-o", "site", "--include-scripted")
    assert r.returncode == 0, r.stderr
    assert (old_runs / "site" / "index.html").is_file()
