"""Data on demand through a local fake Hub (tests/fake_hub.py): the real huggingface_hub download path, the
GitHub raw path, the cache, pins, unpacking, offline behaviour and ``evalsuite data status|fetch``.

The fake serves small files in each upstream layout: LongBench's ``data.zip`` (JSONL files under ``data/``),
the RULER essay source (a parquet file of essays), SQuAD v2 validation as parquet, the DRT test set from
GitHub. Files whose real pins the fake cannot match (a small data.zip is not the 114 MB release) get their
sha256 through ``EVALSUITE_DATA_PINS``, which is part of what is tested; DRT is served byte-identical when
shared/data holds the release, so its real sha256 and git blob pins are checked as they are for users.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SHARED, cli_env
from fake_hub import FakeHub

LB_REV = "5e628be450b7e67fb7ae6e201bd6d8f7056f7672"
ESSAY_REV = "792d672b77d1a67720f7e9820d646358fc18792e"
SQUAD_REV = "3ffb306f725f7d2ce8394bc1873b24868140c412"
DRT_REV = "dde638108377df5ff551e305feb9d5d31e1a6086"
DRT_SHARED = SHARED / "data" / "drt-o1" / "data" / "test.jsonl"
TASKS = "longbench/trec,ruler/niah_single_2,drt/direct"


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def _essays() -> list[str]:
    import random

    rng = random.Random(0)
    words = ["startup", "users", "growth", "essay", "founders", "ideas", "money", "work", "great", "hackers"]
    return [". ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() for _ in range(300)) + ".\n"
            for _ in range(6)]


def _squad_rows() -> list[dict]:
    rows = []
    for a in range(3):
        for p in range(2):
            ctx = f"Paragraph {a}-{p}: the river number {a * 10 + p} runs through the valley of town {a}."
            for q in range(2):
                rows.append({"id": f"q{a}{p}{q}", "title": f"Article {a}", "context": ctx,
                             "question": f"Which river runs through town {a} ({p}, {q})?",
                             "answers": {"text": [f"river number {a * 10 + p}"], "answer_start": [16]}})
    return rows


class Setup:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.hub = FakeHub()
        self.zip = _zip({"data/trec.jsonl": "".join(json.dumps(
            {"input": f"What is {i}?", "context": f"Question: x{i}\nType: Abbreviation\n", "answers": ["Abbreviation"],
             "all_classes": ["Abbreviation", "Entity"], "length": 5, "dataset": "trec", "language": "en",
             "_id": f"t{i}"}) + "\n" for i in range(3))})
        self.essays = _parquet([{"text": t} for t in _essays()])
        self.squad = _parquet(_squad_rows())
        if DRT_SHARED.is_file():
            self.drt = DRT_SHARED.read_bytes()
        else:  # a clean clone without shared/: DRT's pins are overridden like the others
            self.drt = "".join(json.dumps({"en": f"Line {i}.", "zh": f"第{i}行。"}) + "\n" for i in range(3)).encode()
        self.hub.add_hf("THUDM/LongBench", LB_REV, "data.zip", self.zip)
        self.hub.add_hf("baber/paul_graham_essays", ESSAY_REV, "essays.parquet", self.essays)
        self.hub.add_hf("rajpurkar/squad_v2", SQUAD_REV, "squad_v2/validation-00000-of-00001.parquet", self.squad)
        self.hub.add_github("krystalan/DRT", DRT_REV, "data/test.jsonl", self.drt)
        pins = {"longbench": {"files": {"data.zip": {"sha256": hashlib.sha256(self.zip).hexdigest()}}},
                "ruler-essays": {"files": {"essays.parquet": {"sha256": hashlib.sha256(self.essays).hexdigest()}}}}
        if not DRT_SHARED.is_file():
            pins["drt"] = {"files": {"data/test.jsonl": {"sha256": hashlib.sha256(self.drt).hexdigest()}}}
        self.pins = tmp / "pins.json"
        self.pins.write_text(json.dumps(pins))
        self.cache = tmp / "cache"
        self.tok = tmp / "tok"
        shutil.copytree(REPO / "tasks" / "ruler" / "fixtures" / "toy_tokenizer", self.tok)
        cfg = json.loads((self.tok / "tokenizer_config.json").read_text())
        (self.tok / "tokenizer_config.json").write_text(json.dumps({**cfg, "model_max_length": 8192}))
        self.hub.start()

    def env(self, online: bool = True, **extra: str) -> dict[str, str]:
        e = {"EVALSUITE_CACHE": str(self.cache), "EVALSUITE_DATA_PINS": str(self.pins), **extra}
        if online:
            e.update(self.hub.env())
        else:
            e.update({"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "EVALSUITE_GITHUB_ENDPOINT":
                      "http://127.0.0.1:9"})
        return cli_env(e, plugin=False)

    def evalsuite(self, *args: str, online: bool = True, timeout: float = 300, **extra: str):
        return subprocess.run([sys.executable, "-m", "evalsuite.cli", *args], cwd=self.tmp, capture_output=True,
                              text=True, env=self.env(online, **extra), timeout=timeout)

    def run_tasks(self, tasks: str = TASKS, *extra: str, online: bool = True, **env: str):
        length = ["-T", "ruler.length=2048"] if "ruler" in tasks else []
        return self.evalsuite("run", "--tasks", tasks, "--backend", "gold", "--model", str(self.tok), "--limit", "2",
                              *length, "--json", "--no-progress", *extra, online=online, **env)


@pytest.fixture
def fh(tmp_path):
    s = Setup(tmp_path)
    yield s
    s.hub.stop()


def _scores(r) -> dict[str, float]:
    assert r.returncode == 0, r.stderr
    return {t: s["value"] for t, s in json.loads(r.stdout)["scores"].items()}


def test_first_run_downloads_second_run_uses_the_cache_without_the_server(fh):
    r = fh.run_tasks()
    assert _scores(r) == pytest.approx({"longbench/trec": 100.0, "ruler/niah_single_2": 100.0, "drt/direct": 100.0})
    got = {p for _, p in fh.hub.requests}
    assert f"/datasets/THUDM/LongBench/resolve/{LB_REV}/data.zip" in got
    assert f"/gh/krystalan/DRT/{DRT_REV}/data/test.jsonl" in got
    manifest = json.loads(next((fh.tmp / "results").glob("*/manifest.json")).read_text())
    drt = manifest["tasks"]["drt/direct"]["describe"]["data"]
    assert drt["repo"] == "krystalan/DRT" and drt["revision"] == DRT_REV and drt["sha256"] == \
        hashlib.sha256(fh.drt).hexdigest()
    lb = manifest["tasks"]["longbench/trec"]["describe"]["data"]
    assert lb["member"] == "data/trec.jsonl" and lb["pins"].startswith("pins from EVALSUITE_DATA_PINS")
    essays = manifest["tasks"]["ruler/niah_single_2"]["describe"]["haystack_data"]
    assert essays["rows"] == 6 and essays["equals_ruler_json"] is False  # six made-up essays, not RULER's text
    unpacked = list(fh.cache.rglob(".evalsuite-unpacked.json"))
    assert len(unpacked) == 1

    fh.hub.stop()
    n = len(fh.hub.requests)
    r2 = fh.run_tasks(online=False)
    assert _scores(r2) == _scores(r) and len(fh.hub.requests) == n


def test_offline_without_a_copy_fails_at_once_naming_fetch_and_data_dir(fh):
    t0 = time.perf_counter()
    r = fh.run_tasks("longbench/trec", online=False)
    assert time.perf_counter() - t0 < 20 and r.returncode == 2
    line, = r.stderr.strip().splitlines()
    assert "evalsuite data fetch longbench/trec" in line and "-T data_dir=" in line and "Traceback" not in r.stderr


def test_a_tampered_cache_file_is_refused(fh):
    assert fh.run_tasks("drt/direct,longbench/trec").returncode == 0
    drt = next(fh.cache.rglob("data/test.jsonl"))
    drt.write_bytes(drt.read_bytes().replace(b'"zh"', b'"zh" ', 1))
    r = fh.run_tasks("drt/direct", online=False)
    assert r.returncode == 2 and "was modified or damaged" in r.stderr and str(drt) in r.stderr
    member = next(fh.cache.rglob("data.zip.d/data/trec.jsonl"))
    member.write_text(member.read_text().replace("Abbreviation", "Entity"))
    r = fh.run_tasks("longbench/trec", online=False)
    assert r.returncode == 2 and "was modified after unpacking" in r.stderr


def test_a_changed_upstream_file_under_the_same_pin_is_an_error(fh):
    fh.hub.add_github("krystalan/DRT", DRT_REV, "data/test.jsonl", fh.drt.replace(b"\n", b"\n\n", 1))
    r = fh.run_tasks("drt/direct")
    assert r.returncode == 2 and "upstream file changed: data/test.jsonl of github:krystalan/DRT@dde63810" in r.stderr
    assert not list(fh.cache.rglob("data/test.jsonl"))  # nothing half-verified left in the cache
    fh.hub.add_hf("THUDM/LongBench", LB_REV, "data.zip", fh.zip + b"\0")
    r = fh.run_tasks("longbench/trec")
    assert r.returncode == 2 and "upstream file changed: data.zip" in r.stderr


def test_trust_on_first_use_records_the_hash_and_checks_it_later(fh):
    r = fh.evalsuite("run", "--tasks", "ruler/qa_1", "--backend", "gold", "--model", str(fh.tok), "--limit", "2",
                     "-T", "length=1024", "--json", "--no-progress")
    assert _scores(r) == {"ruler/qa_1": 100.0}
    lock = json.loads(next(fh.cache.rglob(f"{SQUAD_REV}/.evalsuite-lock.json")).read_text())
    entry = lock["squad_v2/validation-00000-of-00001.parquet"]
    assert entry["pin"] == "trust-on-first-use" and entry["sha256"] == hashlib.sha256(fh.squad).hexdigest()
    parquet = next(fh.cache.rglob("validation-00000-of-00001.parquet"))
    parquet.write_bytes(_parquet(_squad_rows()[:4]))
    r = fh.evalsuite("run", "--tasks", "ruler/qa_1", "--backend", "gold", "--model", str(fh.tok), "--limit", "2",
                     "-T", "length=1024", "--no-progress", online=False)
    assert r.returncode == 2 and "was modified or damaged" in r.stderr


def test_fetch_to_a_folder_then_offline_with_data_dir(fh, tmp_path):
    pack = tmp_path / "pack"
    r = fh.evalsuite("data", "fetch", TASKS + ",ruler/qa_1", "--to", str(pack), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["tasks"]) == set((TASKS + ",ruler/qa_1").split(","))
    assert (pack / "evalsuite-data.json").is_file() and not fh.cache.exists()
    fh.hub.stop()
    empty = str(tmp_path / "empty-cache")
    r = fh.evalsuite("data", "status", TASKS, "-T", f"data_dir={pack}", "--json", online=False, EVALSUITE_CACHE=empty)
    rows = [f for t in json.loads(r.stdout)["tasks"].values() for f in t["files"]]
    assert rows and all(f["present"] and f["where"].startswith(str(pack)) for f in rows)
    r = fh.run_tasks(TASKS, "-T", f"data_dir={pack}", online=False, EVALSUITE_CACHE=empty)
    assert all(v == pytest.approx(100.0) for v in _scores(r).values())
    assert not Path(empty).exists() or not list(Path(empty).rglob("*.zip"))  # nothing was downloaded again


def test_fetch_to_a_folder_after_the_cache_has_the_archive_unpacked(fh, tmp_path):
    """The cache already holds LongBench's data.zip unpacked (an earlier run): `data fetch --to` must still
    unpack into the folder, so that the folder alone, unchanged (it may be read-only there), serves an
    offline machine."""
    assert _scores(fh.run_tasks("longbench/trec")) == pytest.approx({"longbench/trec": 100.0})
    pack = tmp_path / "pack"
    r = fh.evalsuite("data", "fetch", "longbench/trec", "--to", str(pack), "--json")
    assert r.returncode == 0, r.stderr
    (rec,) = json.loads(r.stdout)["tasks"]["longbench/trec"]
    assert Path(rec["path"]).is_relative_to(pack) and Path(rec["path"]).is_file(), rec
    fh.hub.stop()
    before = sorted(p.relative_to(pack) for p in pack.rglob("*"))
    r = fh.run_tasks("longbench/trec", "-T", f"data_dir={pack}", online=False,
                     EVALSUITE_CACHE=str(tmp_path / "empty-cache"))
    assert _scores(r) == pytest.approx({"longbench/trec": 100.0})
    assert sorted(p.relative_to(pack) for p in pack.rglob("*")) == before  # nothing had to be written there


def test_status_offline_lists_every_file_with_its_source(fh):
    r = fh.evalsuite("data", "status", "ruler,longbench,longbench_v2,longproc,deltabench,ragtrans,drt,punchbench",
                     "--json", online=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tasks = doc["tasks"]
    from evalsuite.registry import Registry

    reg = Registry()
    assert list(tasks) == reg.expand_tasks(["ruler", "longbench", "longbench_v2", "longproc", "deltabench",
                                            "ragtrans", "drt", "punchbench"])
    for name, entry in tasks.items():
        for f in entry["files"]:
            assert f["present"] is False and f["license"] and f["source"]
            if f["kind"] == "manual":
                assert name.startswith("punchbench/") and "-T data_dir=" in f["step"]
            else:
                assert f["kind"] in ("hf", "github") and len(f["revision"]) == 40 and f["url"].startswith("https://")
    assert tasks["ruler/niah_single_1"]["files"] == []  # generated haystack: nothing to fetch
    lb = tasks["longbench/trec"]["files"][0]
    assert (lb["repo"], lb["file"], lb["member"], lb["pin"]) == ("THUDM/LongBench", "data.zip", "data/trec.jsonl",
                                                                "sha256")
    assert len(tasks["longproc/html_to_tsv_0.5k"]["files"]) == 101  # the JSON file + its 100 pages
    assert {f["pin"] for f in tasks["ragtrans/test"]["files"]} == {"git-blob"}
    fh.run_tasks("drt/direct")
    r = fh.evalsuite("data", "status", "drt", online=False)
    assert r.returncode == 0 and "yes" in r.stdout


def test_list_tasks_data_column_names_the_source_and_what_is_cached(fh):
    def listed() -> dict:
        r = fh.evalsuite("list", "tasks", "--json", online=False)
        assert r.returncode == 0, r.stderr
        return {t["name"]: t.get("data") for t in json.loads(r.stdout)["tasks"]}

    before = listed()
    assert before["drt/direct"]["source"].startswith("github:krystalan/DRT@") and before["drt/direct"]["available"] is False
    assert before["longbench/trec"]["source"].startswith("hf:THUDM/LongBench@")
    assert before["punchbench/perception_matching/original"]["manual"] is True
    assert before["ruler/niah_single_1"] == {"source": "none (generated or bundled)", "available": True,
                                             "manual": False}  # a noise haystack: nothing to fetch
    fh.run_tasks("drt/direct")
    after = listed()
    assert after["drt/direct"]["available"] is True and after["longbench/trec"]["available"] is False
    r = fh.evalsuite("list", "tasks", online=False)
    line = r.stdout.splitlines()[[i for i, x in enumerate(r.stdout.splitlines()) if x.startswith("drt/direct ")][0] + 1]
    assert "github:krystalan/DRT@" in line and "not cached" not in line


def test_data_status_and_help_import_neither_hub_library():
    code = ("import sys, contextlib, io\nfrom evalsuite import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['data', 'status', 'longbench,drt,ruler', '--json'])\n"
            "    cli.main(['list', 'tasks'])\n"
            "print(sorted(m for m in ('huggingface_hub', 'datasets', 'pyarrow', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(plugin=False),
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_archive_member_escaping_the_folder_is_refused(tmp_path, monkeypatch):
    from evalsuite import sources
    from evalsuite.errors import UserError

    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    data = _zip({"data/ok.jsonl": "{}\n", "../evil.txt": "x"})
    src = sources.Source("t", sources.HF, "o/r", "a" * 40, (sources.RemoteFile("data.zip"),), "x", "x")
    store = sources.Store(tmp_path / "store")
    archive = store.path(src, "data.zip")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(data)
    with pytest.raises(UserError, match="unsafe member name '../evil.txt'"):
        sources.unpack("t", store, src, src.files[0], archive)
    assert not (tmp_path / "store" / "hf" / "o" / "evil.txt").exists()
    assert not sources.unpacked_dir(store, src, src.files[0]).exists()


def test_unknown_revision_or_file_at_the_hub_is_one_line(fh):
    pins = json.loads(fh.pins.read_text())
    pins["longbench"]["revision"] = "f" * 40
    fh.pins.write_text(json.dumps(pins))
    r = fh.run_tasks("longbench/trec")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "could not download data.zip" in r.stderr


def test_an_unwritable_cache_is_one_line(fh, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    r = fh.run_tasks("drt/direct", EVALSUITE_CACHE=str(blocker))
    assert r.returncode == 2 and "cannot write the data cache" in r.stderr and "EVALSUITE_CACHE" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
