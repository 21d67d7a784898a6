"""HELMET's data through the data engine, against a local fake Hub (tests/fake_hub.py): the real
huggingface_hub download path, the cache, the archive unpacked once, offline use and ``evalsuite data``.

The fake serves HELMET's ``data.tar.gz`` as a small tar in HELMET's layout (``data/kilt/...``, made from the
synthetic fixture of tests/helmet_fixture.py) and the Hub datasets HELMET loads at run time in their upstream
formats (TREC, BANKING77, CLINC150 and NarrativeQA as parquet, InfiniteBench as JSON lines). Files whose real
pins a small fake cannot match get their sha256 through ``EVALSUITE_DATA_PINS``, as in tests/engine/test_data_sources.py.
The prompts built from the fetched files are checked against those built from the same rows in a
``-T data_dir`` folder, so the source path reads exactly the rows the local path reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
from conftest import cli_env  # noqa: E402
from fake_hub import FakeHub  # noqa: E402

from evalsuite.tasks.helmet import _data as D  # noqa: E402

TASKS = "helmet/json_kv,helmet/kilt_nq,helmet/alce_asqa,helmet/icl_trec_coarse,helmet/icl_banking77"


def _members() -> list[str]:
    """Every member of HELMET's archive a HELMET task declares (all lengths)."""
    from evalsuite.tasks.helmet import _TASKS, task_class

    return sorted({n.member for d in _TASKS for n in task_class(d).data_needs({}) if n.member})


def _tar(data: Path) -> bytes:
    """HELMET's data.tar.gz layout, everything under ``data/``: the fixture's files, and for the lengths the
    fixture has no file for (16K, 64K, 128K) a copy of a file of the same folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for member in _members():
            p = data / member.removeprefix("data/")
            if not p.is_file():
                p = sorted(x for x in p.parent.iterdir() if x.suffix == p.suffix)[0]
            t.add(p, arcname=member)
    return buf.getvalue()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


class Hub:
    """The fake Hub with every file HELMET's tasks declare, and the pins the fake's bytes need."""

    def __init__(self, tmp: Path, data: Path, tok: Path):
        self.tmp, self.data, self.tok = tmp, data, tok
        self.hub = FakeHub()
        self.archive = _tar(data)
        pins: dict[str, dict] = {}

        def serve(src: D.Source, path: str, content: bytes) -> None:
            self.hub.add_hf(src.repo, src.revision, path, content)
            if src.file(path).sha256 or src.file(path).git_blob:  # a real pin the fake cannot match
                pins.setdefault(src.id, {"files": {}})["files"][path] = {
                    "sha256": hashlib.sha256(content).hexdigest()}

        serve(D.HELMET, D.ARCHIVE, self.archive)
        for spec, contents in hub_files(data).items():
            for need, content in zip(spec.needs, contents):
                serve(need.source, need.path, content)
        self.pins = tmp / "pins.json"
        self.pins.write_text(json.dumps(pins))
        self.cache = tmp / "cache"
        self.hub.start()

    def env(self, online: bool = True, **extra: str) -> dict[str, str]:
        e = {"EVALSUITE_CACHE": str(self.cache), "EVALSUITE_DATA_PINS": str(self.pins), **extra}
        if online:
            e.update(self.hub.env())
        else:
            e.update({"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"})
        return cli_env(e, plugin=False)

    def evalsuite(self, *args: str, online: bool = True, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evalsuite.cli", *args], cwd=self.tmp, capture_output=True,
                              text=True, env=self.env(online, **extra), timeout=600)

    def run(self, run_id: str, *extra: str, tasks: str = TASKS, online: bool = True, **env: str):
        return self.evalsuite("run", "--tasks", tasks, "--backend", "gold", "--model", str(self.tok),
                              "-T", "lengths=8k", "-T", "max_test_samples=1", "--judge-backend", "echo",
                              "-J", "text=yes", "--run-id", run_id, "--json", "--no-progress", *extra,
                              online=online, **env)


def hub_files(data: Path) -> dict[D.Rows, list[bytes]]:
    """The content of every file of every Hub split the HELMET tasks declare, in the upstream format of its
    source, made from the fixture's JSON lines (a split in several shards: the rows dealt out over them)."""
    out: dict[D.Rows, list[bytes]] = {}
    for dataset, splits in D.HUB.items():
        for spec in splits.values():
            if any(isinstance(n.source, D.ManualSource) for n in spec.needs):
                continue
            rows = _jsonl(data / spec.local)
            shards = [rows[i::len(spec.needs)] or rows[:1] for i in range(len(spec.needs))]
            out[spec] = [_parquet(s) if n.path.endswith(".parquet") else
                         "".join(json.dumps(r) + "\n" for r in s).encode() for n, s in zip(spec.needs, shards)]
    return out


@pytest.fixture
def fh(tmp_path, helmet_data, helmet_word_tokenizer):
    h = Hub(tmp_path, helmet_data, helmet_word_tokenizer)
    yield h
    h.hub.stop()


def _manifest(tmp: Path, run_id: str) -> dict:
    return json.loads((tmp / "results" / run_id / "manifest.json").read_text())


def _scores(r: subprocess.CompletedProcess) -> dict[str, float]:
    assert r.returncode == 0, r.stderr
    return {t: s["value"] for t, s in json.loads(r.stdout)["scores"].items()}


def test_first_run_fetches_helmets_data_then_runs_offline_from_the_cache(fh):
    r = fh.run("online")
    assert _scores(r) == pytest.approx({t: 100.0 for t in TASKS.split(",")})
    got = {p for _, p in fh.hub.requests}
    assert f"/datasets/princeton-nlp/HELMET/resolve/{D.HELMET_HUB_REVISION}/data.tar.gz" in got
    assert f"/datasets/CogComp/trec/resolve/{D.TREC.revision}/default/train/0000.parquet" in got
    assert len(list(fh.cache.rglob(".evalsuite-unpacked.json"))) == 1  # the archive is unpacked once
    m = _manifest(fh.tmp, "online")
    kilt = m["tasks"]["helmet/kilt_nq"]["describe"]["data"]
    assert kilt["kind"] == "source" and kilt["sha256"]
    members = {f["member"] for f in kilt["files"]}
    assert members == {"data/kilt/nq-dev-multikilt_1000_k50_dep6.jsonl",
                       "data/kilt/nq-train-multikilt_1000_k3_dep6.jsonl"}
    assert all(f["repo"] == "princeton-nlp/HELMET" and f["revision"] == D.HELMET_HUB_REVISION and
               f["pins"].startswith("pins from EVALSUITE_DATA_PINS") and f["member_sha256"] for f in kilt["files"])
    trec = m["tasks"]["helmet/icl_trec_coarse"]["describe"]["data"]["files"]
    assert {f["pin"] for f in trec} == {"trust-on-first-use"} and all(f["sha256"] for f in trec)

    # the same rows as from a -T data_dir folder in HELMET's layout: the same prompts
    local = fh.run("local", "-T", f"data_dir={fh.data}", online=False)
    assert _scores(local) == _scores(r)
    ml = _manifest(fh.tmp, "local")
    for t in TASKS.split(","):
        assert m["tasks"][t]["prompts_sha256"] == ml["tasks"][t]["prompts_sha256"], t
        assert ml["tasks"][t]["describe"]["data"]["kind"] == "dir"

    # offline, from the cache: the same scores, not one request
    fh.hub.stop()
    n = len(fh.hub.requests)
    r2 = fh.run("offline", online=False)
    assert _scores(r2) == _scores(r) and len(fh.hub.requests) == n
    offline = _manifest(fh.tmp, "offline")["tasks"]["helmet/kilt_nq"]["describe"]["data"]["files"]
    assert {f["location"] for f in offline} == {"cache"}
    # alce/* reads the same archive: served from the same cache
    r3 = fh.evalsuite("run", "--tasks", "alce/asqa", "--backend", "gold", "--model", str(fh.tok), "-T", "length=8k",
                      "-T", "limit_samples=1", "--judge-backend", "echo", "-J", "text=yes", "--run-id", "alce",
                      "--json", "--no-progress", online=False)
    assert all(v == pytest.approx(100.0) for v in _scores(r3).values())
    alce = _manifest(fh.tmp, "alce")["tasks"]["alce/asqa"]["describe"]["data"]
    assert (alce["repo"], alce["member"], alce["location"]) == ("princeton-nlp/HELMET",
                                                                 "data/alce/asqa_eval_gtr_top2000.json", "cache")


def test_offline_without_the_data_fails_at_once_naming_fetch_and_data_dir(fh):
    t0 = time.perf_counter()
    r = fh.run("nodata", tasks="helmet", online=False)
    assert r.returncode == 2 and time.perf_counter() - t0 < 60
    line, = r.stderr.strip().splitlines()
    assert "evalsuite data fetch helmet/" in line and "-T data_dir=" in line and "Traceback" not in r.stderr
    assert not list(fh.tmp.rglob("samples.jsonl"))


def test_a_manual_source_stops_the_run_before_anything_is_downloaded(fh):
    r = fh.run("manual", tasks="helmet/multi_lexsum,helmet/kilt_nq")
    assert r.returncode == 2
    line, = r.stderr.strip().splitlines()
    assert "helmet/multi_lexsum" in line and "allenai/multi_lexsum" in line and "-T data_dir=" in line
    assert fh.hub.requests == [] and not fh.cache.exists()


def test_data_fetch_helmet_to_a_folder_then_every_task_offline_from_it(fh, tmp_path):
    pack = tmp_path / "pack"
    r = fh.evalsuite("data", "fetch", "helmet", "--to", str(pack), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["tasks"]) == 21 and set(doc["manual"]) == {"helmet-multi_lexsum", "helmet-nlu"}
    assert not fh.cache.exists()
    fh.hub.stop()
    empty = str(tmp_path / "empty-cache")
    st = fh.evalsuite("data", "status", "helmet", "-T", f"data_dir={pack}", "--json", online=False,
                      EVALSUITE_CACHE=empty)
    assert st.returncode == 0, st.stderr
    tasks = json.loads(st.stdout)["tasks"]
    assert len(tasks) == 21
    for name, entry in tasks.items():
        assert entry["files"], name
        for f in entry["files"]:
            if f["kind"] == "manual":
                assert name in ("helmet/multi_lexsum", "helmet/icl_nlu") and "-T data_dir=" in f["step"]
            else:
                assert f["present"] and f["where"].startswith(str(pack)) and len(f["revision"]) == 40, (name, f)
    r = fh.run("pack", "-T", f"data_dir={pack}", online=False, EVALSUITE_CACHE=empty)
    assert _scores(r) == pytest.approx({t: 100.0 for t in TASKS.split(",")})


def test_status_offline_lists_every_helmet_file_with_its_source():
    """Without any server: ``data status helmet`` names, per task and length, every file with its source."""
    env = cli_env({"EVALSUITE_CACHE": "/nonexistent/evalsuite-cache"}, plugin=False)
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", "data", "status", "helmet", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert len(tasks) == 21
    kilt = tasks["helmet/kilt_nq"]["files"]
    assert [f["member"] for f in kilt][:2] == ["data/kilt/nq-dev-multikilt_1000_k50_dep6.jsonl",
                                               "data/kilt/nq-train-multikilt_1000_k3_dep6.jsonl"]
    assert {(f["repo"], f["file"], f["pin"], f["size"]) for f in kilt} == {
        ("princeton-nlp/HELMET", "data.tar.gz", "sha256", 11_271_916_108)}
    assert len(kilt) == 6  # five test files (8K-128K) and the one demo file
    r = subprocess.run([sys.executable, "-m", "evalsuite.cli", "data", "status", "helmet/json_kv", "-T",
                        "lengths=32k", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert [f["member"] for f in json.loads(r.stdout)["tasks"]["helmet/json_kv"]["files"]] == [
        "data/json_kv/test_k440_dep6.jsonl"]
    nqa = tasks["helmet/narrativeqa"]["files"]
    assert len(nqa) == 32 and {f["repo"] for f in nqa} == {"deepmind/narrativeqa"}
    assert sum(f["pin"] == "sha256" for f in nqa) == 8  # the test shards; train shards: trust on first use
