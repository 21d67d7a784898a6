"""``--workers N``: Ray actors holding warm backends, one queue, nothing lost when a worker dies."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from evalsuite.runner import RunConfig, run  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster for the module (starting one costs seconds); workers see the toy plugin."""
    import sys

    import evalsuite.registry as registry_mod

    plugin = str(Path(__file__).resolve().parents[1].parent / "docs" / "template")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (plugin, os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, plugin)
    saved, registry_mod._default = registry_mod._default, None  # rebuilt with the toy plugin visible
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"], "HF_HUB_OFFLINE": "1"}})
    yield
    ray.shutdown()
    sys.path.remove(plugin)
    registry_mod._default = saved


def _rows(run_dir: Path, task: str) -> list[dict]:
    p = run_dir / task / "samples.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def _per_sample(run_dir: Path, task: str) -> list[dict]:
    return [json.loads(x) for x in (run_dir / task / "per_sample.jsonl").read_text().splitlines()]


def _cfg(tmp_path: Path, run_id: str, **kw) -> RunConfig:
    base = dict(tasks=["toy"], task_options={"n": "10"}, output=str(tmp_path / "results"), run_id=run_id,
                progress=False)
    base.update(kw)
    return RunConfig(**base)


def test_two_workers_equal_one_process_on_a_real_model(local_ray, tmp_path, tiny_llama_dir):
    opts = {"dtype": "float32", "batch_size": "4"}
    one = run(_cfg(tmp_path, "one", model=str(tiny_llama_dir), backend="hf", backend_options=dict(opts),
                   max_tokens=12))
    two = run(_cfg(tmp_path, "two", model=str(tiny_llama_dir), backend="hf", backend_options=dict(opts),
                   max_tokens=12, workers=2))
    assert two.n_generated == one.n_generated == 14
    for task in ("toy/addition", "toy/upper"):
        a = {r["key"]: r["generation"]["text"] for r in _rows(Path(one.run_dir), task)}
        b = {r["key"]: r["generation"]["text"] for r in _rows(Path(two.run_dir), task)}
        assert a == b and len(a) == (10 if task == "toy/addition" else 4)
        assert _per_sample(Path(one.run_dir), task) == _per_sample(Path(two.run_dir), task)
    man = json.loads((Path(two.run_dir) / "manifest.json").read_text())
    assert man["backend"]["id"] == json.loads((Path(one.run_dir) / "manifest.json").read_text())["backend"]["id"]
    ex = man["backend"]["describe"]["executor"]
    assert ex["kind"] == "ray" and ex["workers"] == 2 and ex["threads_per_worker"] >= 1
    assert man["invocations"][-1]["backend_timings"]["worker_deaths"] == []


def test_a_killed_worker_loses_nothing_and_duplicates_nothing(local_ray, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "toy/addition", "index": i, "output": str(i)}) + "\n"
                               for i in range(40)))
    from evalsuite.executors.ray_pool import RayPool

    pool = RayPool("replay", None, {"file": str(answers), "missing": "empty", "delay": "0.1"}, workers=2)
    pids = pool.worker_pids()
    killed: list[int] = []

    def on_generation(item, gen):
        if len(killed) == 0 and item.sample.index >= 0 and on_generation.count == 6:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        on_generation.count += 1

    on_generation.count = 0
    try:
        out = run(_cfg(tmp_path, "kill", tasks=["toy/addition"], task_options={"n": "40"}, backend="replay"),
                  backend=pool, on_generation=on_generation)
        deaths = pool.deaths
        replaced = pool.replacements
    finally:
        pool.close()
    assert killed and deaths and deaths[0]["slot"] == 0 and replaced == 1
    rows = _rows(Path(out.run_dir), "toy/addition")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 40, "a generation was lost or written twice"
    assert all(r["generation"]["finish_reason"] == "stop" for r in rows)
    assert {r["index"]: r["generation"]["text"] for r in rows} == {i: str(i) for i in range(40)}
    assert out.scores["toy/addition"]["n"] == 40


def test_gold_through_the_pool_scores_100(local_ray, tmp_path):
    out = run(_cfg(tmp_path, "gold", backend="gold", workers=2))
    assert out.scores["toy/addition"]["value"] == 100 and out.scores["toy/upper"]["value"] == 100


def test_resume_across_modes_regenerates_nothing(local_ray, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "toy/addition", "index": i, "output": str(i)}) + "\n"
                               for i in range(12)))
    opts = {"file": str(answers), "missing": "empty"}
    first = run(_cfg(tmp_path, "mix", tasks=["toy/addition"], task_options={"n": "12"}, backend="replay",
                     backend_options=dict(opts), limit=5))
    assert first.n_generated == 5
    second = run(_cfg(tmp_path, "mix", tasks=["toy/addition"], task_options={"n": "12"}, backend="replay",
                      backend_options=dict(opts), workers=2))
    assert second.n_reused == 5 and second.n_generated == 7
    keys = [r["key"] for r in _rows(Path(second.run_dir), "toy/addition")]
    assert len(keys) == len(set(keys)) == 12


def test_every_worker_dead_gives_failed_generations_not_a_crash(local_ray, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "toy/addition", "index": i, "output": str(i)}) + "\n"
                               for i in range(20)))
    from evalsuite.executors.ray_pool import RayPool

    pool = RayPool("replay", None, {"file": str(answers), "missing": "empty", "delay": "0.2"}, workers=1)
    pool.max_replacements = 0
    pid = pool.worker_pids()[0]
    timer = threading.Timer(1.0, lambda: os.kill(pid, signal.SIGKILL))
    timer.start()
    try:
        out = run(_cfg(tmp_path, "dead", tasks=["toy/addition"], task_options={"n": "20"}, backend="replay"),
                  backend=pool)
    finally:
        timer.cancel()
        pool.close()
    rows = _rows(Path(out.run_dir), "toy/addition")
    ok = [r for r in rows if r["generation"]["finish_reason"] != "error"]
    failed = [r for r in rows if r["generation"]["finish_reason"] == "error"]
    assert ok and failed and len(ok) + len(failed) == 20
    assert "re-run to resume" in failed[0]["generation"]["error"]
    assert out.scores["toy/addition"]["n_errors"] == len(failed)


def test_cli_workers_flag_starts_a_local_cluster(cli):
    res = cli("run", "--tasks", "toy", "--backend", "gold", "--workers", "2", "--run-id", "w", "--json",
              "--no-progress", timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["scores"]["toy/addition"]["value"] == 100 and out["n_generated"] == 44


def test_chunks_shrink_as_the_queue_drains_but_keep_batches_full():
    from evalsuite.executors.ray_pool import chunk_size

    assert chunk_size(1000, 4, 256) == 125 and chunk_size(1000, 1, 256) == 256
    assert chunk_size(10, 2, 8) == 4 and chunk_size(3, 2, 8) == 3 and chunk_size(1, 2, 8) == 1
    assert chunk_size(40, 1, 8) == 8 and chunk_size(5, 1, 8) == 5
    assert chunk_size(40, 2, 1) == 1  # a one-at-a-time backend: single requests


def test_an_idle_survivor_takes_over_a_dead_workers_requests(local_ray, tmp_path):
    # 40 one-at-a-time requests: worker 0 draws a chunk of 32, worker 1 one of 8 and then has nothing
    # left to do. Worker 0 is killed with no replacement allowed: worker 1 must finish its requests.
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"task": "toy/addition", "index": i, "output": str(i)}) + "\n"
                               for i in range(40)))
    from evalsuite.executors.ray_pool import RayPool

    pool = RayPool("replay", None, {"file": str(answers), "missing": "empty", "delay": "0.1"}, workers=2)
    pool.max_replacements = 0
    pid0 = pool.worker_pids()[0]

    def on_generation(item, gen):
        on_generation.count += 1
        if on_generation.count == 20:
            os.kill(pid0, signal.SIGKILL)

    on_generation.count = 0
    try:
        out = run(_cfg(tmp_path, "idle", tasks=["toy/addition"], task_options={"n": "40"}, backend="replay"),
                  backend=pool, on_generation=on_generation)
        deaths, replaced = list(pool.deaths), pool.replacements
    finally:
        pool.close()
    assert len(deaths) == 1 and deaths[0]["slot"] == 0 and deaths[0]["requeued"] > 0 and replaced == 0
    rows = _rows(Path(out.run_dir), "toy/addition")
    assert len({r["key"] for r in rows}) == len(rows) == 40
    assert {r["index"]: r["generation"]["text"] for r in rows} == {i: str(i) for i in range(40)}
