"""COMET through unbabel-comet, against ``comet.load_from_checkpoint(...).predict(...)`` itself.

A session fixture makes (or reuses) the separate COMET environment with the user command
``python -m evalsuite.metrics.comet create-env <dir>`` (torch==2.13.0 + unbabel-comet and its pins;
``<dir>`` = ``$EVALSUITE_COMET_TEST_ENV`` or ``~/.cache/evalsuite/comet-env``, kept between runs; the first
creation takes about 2-3 minutes), then builds a tiny random COMET checkpoint there with no network
(``evalsuite/metrics/_comet_tiny.py``). Goldens are the scores upstream's ``predict`` returns in that
environment; our plugin is checked in-process (inside the COMET environment) and in separate-environment
mode (from this environment, through the worker subprocess).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARED

from evalsuite.errors import UserError
from evalsuite.metrics.comet import Comet, default_env_dir
from evalsuite.types import Generation, Record, Sample

DRT = SHARED / "data" / "drt-o1" / "data" / "test.jsonl"
TINY = REPO / "evalsuite" / "metrics" / "_comet_tiny.py"
TOL = 1e-6  # batch composition moves float32 scores by ~1e-7


@pytest.fixture(scope="session")
def comet_python() -> Path:
    env_dir = Path(os.environ.get("EVALSUITE_COMET_TEST_ENV") or default_env_dir())
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "evalsuite.metrics.comet", "create-env", str(env_dir)],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, f"creating the COMET environment failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"\nCOMET environment {env_dir}: ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def tiny_ckpt(comet_python, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-comet")
    text = out / "text.jsonl"
    text.write_text("\n".join(DRT.read_text(encoding="utf-8").splitlines()[:600]) + "\n", encoding="utf-8")
    r = subprocess.run([str(comet_python), "-I", str(TINY), str(out), "--text", str(text)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return Path(r.stdout.strip().splitlines()[-1])


def _triples(n: int = 240) -> list[dict[str, str]]:
    rows = [json.loads(x) for x in DRT.read_text(encoding="utf-8").splitlines()[:n]]
    rng = random.Random(5)
    out = [{"src": r["en"], "mt": r["zh"][: max(1, len(r["zh"]) - rng.randrange(12))], "ref": r["zh"]} for r in rows]
    return out + out[:40]  # duplicates: scored once by us, every time by predict


def _records(triples: list[dict[str, str]]) -> list[Record]:
    return [Record(Sample(str(i), i, None, t["ref"], {"source": t["src"]}), t["mt"], Generation(t["mt"], "stop"))
            for i, t in enumerate(triples)]


_UPSTREAM = """
import json, sys
from comet import load_from_checkpoint
ckpt, data_path, out_path = sys.argv[1:4]
data = json.load(open(data_path))
model = load_from_checkpoint(ckpt, local_files_only=True)
pred = model.predict(data, batch_size=8, gpus=0, progress_bar=False)
json.dump({"scores": list(pred.scores), "system_score": pred.system_score}, open(out_path, "w"))
"""


def _upstream(comet_python: Path, ckpt: Path, triples: list[dict[str, str]], d: Path) -> dict:
    (d / "data.json").write_text(json.dumps(triples, ensure_ascii=False), encoding="utf-8")
    (d / "up.py").write_text(_UPSTREAM)
    r = subprocess.run([str(comet_python), "-I", str(d / "up.py"), str(ckpt), str(d / "data.json"),
                        str(d / "out.json")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((d / "out.json").read_text())


@pytest.fixture(scope="session")
def upstream_scores(comet_python, tiny_ckpt, tmp_path_factory) -> dict:
    """upstream ``predict`` on the test triples (batch_size 8, CPU), in the COMET environment."""
    return _upstream(comet_python, tiny_ckpt, _triples(), tmp_path_factory.mktemp("comet-upstream"))


def _check(per_sample, value, gold) -> None:
    assert len(per_sample) == len(gold["scores"])
    assert max(abs(a - b) for a, b in zip(per_sample, gold["scores"])) < TOL
    assert value == pytest.approx(100 * gold["system_score"], abs=100 * TOL)


@pytest.mark.slow
def test_separate_environment_equals_predict(comet_python, tiny_ckpt, upstream_scores):
    metric = Comet(model=str(tiny_ckpt), python=str(comet_python))
    assert metric.mode() == ("subprocess", str(comet_python))
    res = metric.score(_records(_triples()))
    _check(res.per_sample, res.value, upstream_scores)
    assert res.details["n_unique"] == 240 and res.details["n_segments"] == 280
    assert res.details["mode"].startswith("subprocess:")
    assert "class:RegressionMetric" in res.signature and "refs:yes" in res.signature
    assert "comet:2.2.7" in res.signature and f"model:{tiny_ckpt}" in res.signature
    assert "version:" in res.signature and res.details["model"]["sha256"].startswith(res.signature.split("version:")[1][:16])


_IN_PROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from evalsuite.metrics.comet import Comet
from evalsuite.types import Generation, Record, Sample
triples = json.load(open(sys.argv[3]))
recs = [Record(Sample(str(i), i, None, t["ref"], {"source": t["src"]}), t["mt"], Generation(t["mt"], "stop"))
        for i, t in enumerate(triples)]
m = Comet(model=sys.argv[2])
res = m.score(recs)
json.dump({"mode": m.mode()[0], "per_sample": list(res.per_sample), "value": res.value,
           "signature": res.signature}, open(sys.argv[4], "w"))
"""


@pytest.mark.slow
def test_in_process_in_the_comet_environment_equals_predict(comet_python, tiny_ckpt, upstream_scores, tmp_path):
    (tmp_path / "data.json").write_text(json.dumps(_triples(), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "inproc.py").write_text(_IN_PROCESS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_")}
    r = subprocess.run([str(comet_python), "-I", str(tmp_path / "inproc.py"), str(REPO), str(tiny_ckpt),
                        str(tmp_path / "data.json"), str(tmp_path / "out.json")], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["mode"] == "in-process"
    _check(out["per_sample"], out["value"], upstream_scores)


@pytest.mark.slow
def test_cli_drt_with_comet_in_its_own_environment(cli, comet_python, tiny_ckpt, tmp_path):
    """What a user runs: generate in one environment (here: replayed outputs), COMET in the other
    (interpreter from EVALSUITE_COMET_PYTHON); the scores equal upstream predict on the same triples."""
    rows = [json.loads(x) for x in DRT.read_text(encoding="utf-8").splitlines()[:30]]
    outs = [r["zh"][: max(1, len(r["zh"]) - i % 7)] for i, r in enumerate(rows)]
    (tmp_path / "replay.jsonl").write_text("\n".join(json.dumps({"task": "drt/direct", "index": i, "output": o},
                                                              ensure_ascii=False) for i, o in enumerate(outs)))
    r = cli("run", "--tasks", "drt/direct", "--backend", "replay", "-B", f"file={tmp_path / 'replay.jsonl'}",
            "-T", f"data_file={DRT}", "--limit", "30", "-T", f"comet={tiny_ckpt}", "--run-id", "c",
            "--output", "res", "--json", "--no-progress", env={"EVALSUITE_COMET_PYTHON": str(comet_python)},
            timeout=600)
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["drt/direct"]["metrics"]}
    assert m["comet"]["signature"].startswith(f"comet|model:{tiny_ckpt}|version:")
    assert m["comet"]["ci95"] is not None  # per-segment scores -> bootstrap CI of the mean
    assert m["comet"]["details"]["mode"] == f"subprocess:{comet_python}"
    gold = _upstream(comet_python, tiny_ckpt, [{"src": r["en"], "mt": o, "ref": r["zh"]} for r, o in zip(rows, outs)],
                     tmp_path)
    assert m["comet"]["value"] == pytest.approx(100 * gold["system_score"], abs=100 * TOL)


def test_offline_hub_id_fails_fast_naming_the_local_option(cli, tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"prediction": "a", "references": "b", "source": "c"}) + "\n")
    t0 = time.perf_counter()
    r = cli("score-file", "p.jsonl", "--metric", "comet",
            env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "EVALSUITE_COMET_PYTHON": sys.executable})
    assert time.perf_counter() - t0 < 30
    assert r.returncode == 2
    assert "Unbabel/wmt22-comet-da" in r.stderr and "comet_model=" in r.stderr and "offline" in r.stderr


def test_offline_hub_id_found_in_the_local_cache(tmp_path, monkeypatch):
    snap = tmp_path / "hub" / "models--Unbabel--wmt22-comet-da" / "snapshots" / "abc123" / "checkpoints"
    snap.mkdir(parents=True)
    (snap / "model.ckpt").write_bytes(b"x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    req = Comet().request([])
    assert req["local_files_only"] is True and req["model"] == "Unbabel/wmt22-comet-da"


def test_no_comet_anywhere_says_how_to_make_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALSUITE_COMET_PYTHON", raising=False)
    monkeypatch.setenv("EVALSUITE_COMET_ENV", str(tmp_path / "none"))
    import importlib.util

    if importlib.util.find_spec("comet") is not None:
        pytest.skip("comet is importable in this environment")
    with pytest.raises(UserError, match="create-env"):
        Comet(model=str(tmp_path)).mode()


def test_records_need_a_source():
    rec = Record(Sample("0", 0, None, "ref", {}), "mt", Generation("mt", "stop"))
    with pytest.raises(UserError, match="source"):
        Comet(model="x/y", python=sys.executable)._item(0, rec)
    two = Record(Sample("0", 0, None, ["r1", "r2"], {"source": "s"}), "mt", Generation("mt", "stop"))
    with pytest.raises(UserError, match="one"):
        Comet(model="x/y", python=sys.executable)._item(0, two)
