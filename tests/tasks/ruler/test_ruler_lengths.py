"""RULER over several lengths: per-length samples and ids, per-length / per-depth breakdowns in
scores.json, the README table aggregates, and the tokenizer work spent on fitting prompts.

Offline: the toy tokenizer (tasks/ruler/fixtures/toy_tokenizer) and the noise haystack (no essays).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

import evalsuite.tasks.ruler as ruler
from evalsuite.registry import Registry
from evalsuite.task import TaskContext
from evalsuite.tokenizer import load_tokenizer, render_request

REPO = Path(__file__).resolve().parents[2].parent
TOY = REPO / "tasks" / "ruler" / "fixtures" / "toy_tokenizer"

LLAMA31_8B = {4096: 95.5, 8192: 93.8, 16384: 91.6, 32768: 87.4, 65536: 84.7, 131072: 77.0}


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(TOY)


@pytest.fixture(scope="module")
def registry():
    reg = Registry()
    ruler.register(reg)
    return reg


def make(registry, tok, name, **opts):
    task = registry.task(name).factory(**opts)
    task.prepare(TaskContext(tokenizer=tok))
    return task


def prompt_hash(task, samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(render_request(task._tok, task.request(s)).encode())
    return h.hexdigest()


def test_lengths_option_yields_num_samples_per_length_with_stable_ids(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", lengths="1024,2048", num_samples=3)
    got = list(task.samples())
    assert [s.id for s in got] == ["1024-0", "1024-1", "1024-2", "2048-0", "2048-1", "2048-2"]
    assert [s.index for s in got] == list(range(6))
    assert [s.metadata["max_seq_length"] for s in got] == [1024] * 3 + [2048] * 3
    assert all(s.metadata["length"] <= s.metadata["max_seq_length"] for s in got)
    assert all(len(s.metadata["depths"]) == 1 for s in got)
    # each length is its own RULER run: the same samples as a single-length task at that length
    single = list(make(registry, tok, "ruler/niah_single_1", length=2048, num_samples=3).samples())
    assert [(s.input, s.target, s.metadata) for s in got[3:]] == [(s.input, s.target, s.metadata) for s in single]
    # -T length= still means one length and plain ids
    assert [s.id for s in single] == ["0", "1", "2"]


def test_lengths_must_exceed_tokens_to_generate(registry):
    from evalsuite.errors import UserError
    with pytest.raises(UserError, match="must exceed"):
        registry.task("ruler/niah_single_1").factory(lengths="1024,100")


@pytest.mark.parametrize("length", [4096, 16384])
@pytest.mark.parametrize("name", ["ruler/niah_single_1", "ruler/niah_multikey_2"])
def test_prompts_fit_and_fill_the_target(registry, tok, name, length):
    task = make(registry, tok, name, length=length, num_samples=6)
    samples = list(task.samples())
    fit = task.fit_info()
    (n0, t0), (n1, t1) = fit["probes"][0], max(fit["probes"][1:])
    unit = task._incremental() * (t1 - t0) / (n1 - n0)  # tokens of one haystack step
    for s in samples:
        n = len(tok.encode(render_request(tok, task.request(s)), add_special_tokens=False))
        assert n == s.metadata["prompt_tokens"]
        assert n + 128 <= length
        # at the searched size: within 1% or one haystack step; a sample stepped down (RULER's per-sample
        # decrement) loses one more step
        steps = 1 + (fit["num_haystack"] - s.metadata["num_haystack"]) // task._incremental()
        assert length - (n + 128) <= max(0.01 * length, steps * unit + 16), (s.id, n)


def test_same_seed_same_prompts_other_seed_other_prompts(registry, tok):
    def run(seed):
        task = make(registry, tok, "ruler/niah_multikey_3", lengths="1024,2048", num_samples=4, seed=seed)
        return prompt_hash(task, list(task.samples()))
    assert run(42) == run(42)
    assert run(42) != run(7)


def test_tokenizer_work_ratio_is_at_most_1_5(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=8192, num_samples=50)
    list(task.samples())
    ratio = task.encoded_tokens / task.fit_stats["prompt_tokens"]
    assert ratio <= 1.5, (ratio, task.fit_info())


# -- aggregates ---------------------------------------------------------------------------------------

def test_readme_aggregates_from_the_published_llama31_8b_row():
    agg = ruler.aggregate(LLAMA31_8B)
    assert round(agg["avg"], 1) == 88.3
    assert round(agg["wavg_inc"], 1) == 85.4
    assert round(agg["wavg_dec"], 1) == 91.3
    assert agg["effective_length"] == 32768  # 87.4 > 85.6 at 32K, 84.7 at 64K is below


def test_summary_from_scores(registry):
    names = registry.groups["ruler"]
    scores = {n: {"metrics": [{"name": "string_match_all", "value": 0.0,
                               "details": {"by_length": {str(L): v for L, v in LLAMA31_8B.items()}}}]}
              for n in names}
    out = {r["name"]: r for r in registry.summarize(scores)}
    assert out["ruler 4096"]["value"] == 95.5 and out["ruler 4096"]["n_tasks"] == len(names)
    assert out["ruler Avg"]["value"] == 88.33 and out["ruler wAvg (inc)"]["value"] == 85.38
    assert out["ruler wAvg (dec)"]["value"] == 91.29
    assert out["ruler effective length"]["value"] == 32768
    assert registry.summarize({"other/x": {"metrics": []}}) == [] or \
        not any(r["name"].startswith("ruler") for r in registry.summarize({"other/x": {"metrics": []}}))


# -- end to end: scores.json ----------------------------------------------------------------------------

def test_cli_multiple_lengths_write_per_length_breakdowns(tmp_path):
    from conftest import cli_env, run_cli
    r = run_cli(["run", "--tasks", "ruler/niah_single_1,ruler/niah_multikey_2", "--backend", "gold",
                 "--model", str(TOY), "-T", "lengths=1024,2048", "-T", "num_samples=3", "--run-id", "len"],
                cwd=tmp_path, env=cli_env(plugin=False))
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("ruler/niah_single_1", "ruler/niah_multikey_2"):
        scores = json.loads((tmp_path / "results" / "len" / name / "scores.json").read_text())
        det = scores["metrics"][0]["details"]
        assert det["by_length"] == {"1024": 100.0, "2048": 100.0}
        assert det["n_by_length"] == {"1024": 3, "2048": 3}
        assert set(det["by_depth_length"]) == {"1024", "2048"}
        assert all(v == 100.0 for d in det["by_depth_length"].values() for v in d.values())
