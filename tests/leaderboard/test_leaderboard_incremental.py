"""Incremental leaderboard builds (issue 22 item 5): a rebuild touches only what changed, never serves a stale
page, removes what is gone, and gives the same bytes as a fresh build of the same runs."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import run_cli  # noqa: E402
from leaderboard_site import sample_items  # noqa: E402
from leaderboard_synth import write_results  # noqa: E402

from evalsuite.leaderboard import build_site  # noqa: E402
from evalsuite.leaderboard import incremental  # noqa: E402


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    # the input-digest record goes to $EVALSUITE_CACHE: one per test, never the user's
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _state(site: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(site).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(site.rglob("*")) if p.is_file()}


def _changed(before: dict, after: dict) -> set[str]:
    """Files added, removed, or written again (new bytes or new modification time)."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def _same_as_fresh(site: Path, results: list[Path], tmp: Path, **kw) -> None:
    fresh = tmp / f"fresh-{time.perf_counter_ns()}"
    build_site(results, fresh, **kw)
    a = {k: v[0] for k, v in _state(site).items()}
    b = {k: v[0] for k, v in _state(fresh).items()}
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    assert [k for k in a if a[k] != b[k]] == []


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def runs(tmp_path):
    write_results(tmp_path / "res", n_runs=3, n_tasks=2, n_samples=40)
    return tmp_path / "res"


def test_changing_one_runs_scores_rewrites_only_its_pages_and_the_rankings(runs, tmp_path):
    site = tmp_path / "site"
    first = build_site([runs], site)
    assert first["n_units_reused"] == 0 and first["n_units"] == 6
    time.sleep(0.01)
    noop = build_site([runs], site)
    before = _state(site)
    assert noop["n_units_reused"] == 6 and noop["n_written"] == 0 and noop["n_removed"] == 0

    # run01 is scored again on synth_lb/t00: a prediction and its score change
    task = runs / "run01" / "synth_lb" / "t00"
    per = _rows(task / "per_sample.jsonl")
    per[3]["prediction"], per[3]["metrics"]["acc"] = "rescored answer", 1.0 - per[3]["metrics"]["acc"]
    _write_rows(task / "per_sample.jsonl", per)
    scores = json.loads((task / "scores.json").read_text())
    scores["metrics"][0]["value"] = scores["value"] = 99.5
    scores["metrics"][0]["details"]["buckets"]["0-4k"] = 12.0
    (task / "scores.json").write_text(json.dumps(scores))
    time.sleep(0.01)
    info = build_site([runs], site)
    assert info["n_units_reused"] == 5  # the other 5 run x task sample data untouched
    changed = _changed(before, _state(site))
    assert changed == {"index.html", "benchmarks/synth_lb.html", "tasks/synth_lb--t00.html",
                       "charts/task-synth_lb--t00-buckets.svg", "runs/run01.html",
                       "samples/run01/synth_lb--t00.1.js", "samples/run01/synth_lb--t00.html",  # its counts
                       incremental.MARKER}, sorted(changed)
    assert info["n_written"] == len(changed) - 1  # (the marker is counted apart)
    assert "rescored answer" in [i["o"] for i in sample_items(site, "run01", "synth_lb--t00")]
    assert "99.50" in (site / "runs" / "run01.html").read_text()
    _same_as_fresh(site, [runs], tmp_path)


def test_adding_and_deleting_a_run(runs, tmp_path):
    site = tmp_path / "site"
    build_site([runs], site)
    first = {k: v[0] for k, v in _state(site).items()}
    # a fourth run appears: its pages are made, the others' sample data reused
    write_results(tmp_path / "more", n_runs=4, n_tasks=2, n_samples=40)
    (tmp_path / "more" / "run03").rename(runs / "run03")
    (tmp_path / "parked").mkdir()
    info = build_site([runs], site)
    assert info["n_units_reused"] == 6 and info["n_units"] == 8
    assert (site / "runs" / "run03.html").is_file() and (site / "samples" / "run03" / "synth_lb--t00.1.js").is_file()
    _same_as_fresh(site, [runs], tmp_path)
    # run01 is deleted: every file of it goes, and nothing else of it stays referenced
    import shutil

    (runs / "run01").rename(tmp_path / "parked" / "run01")
    info = build_site([runs], site)
    assert info["n_removed"] == 1 + 2 * 2  # its run page, and per task a page and a chunk
    assert not (site / "runs" / "run01.html").exists() and not (site / "samples" / "run01").exists()
    assert "run01" not in (site / "index.html").read_text()
    assert "samples/run01" not in (site / incremental.MARKER).read_text()
    _same_as_fresh(site, [runs], tmp_path)
    # and back to the first three runs: the very same bytes as the first build
    (tmp_path / "parked" / "run01").rename(runs / "run01")
    shutil.rmtree(runs / "run03")
    assert build_site([runs], site)["n_units_reused"] == 4  # run01's data went with it: made again
    assert {k: v[0] for k, v in _state(site).items()} == first


def test_nothing_stale_when_what_the_data_is_made_from_changes(runs, tmp_path, monkeypatch):
    """The key covers the builder, the environment's secrets and local folders, and the options."""
    site = tmp_path / "site"
    build_site([runs], site)
    # the builder changed (another evalsuite version, an edited template or module): everything is redone
    monkeypatch.setattr(incremental, "_FINGERPRINT", "another builder")
    assert build_site([runs], site)["n_units_reused"] == 0
    # a credential in the environment that appears in an error text: redacted on the next build
    task = runs / "run00" / "synth_ruler" / "t00"
    per = _rows(task / "per_sample.jsonl")
    secret = "Zq7sEcret" + "x" * 20
    per[0]["error"] = f"server said: bad token {secret}"
    _write_rows(task / "per_sample.jsonl", per)
    build_site([runs], site)
    assert secret in sample_items(site, "run00", "synth_ruler--t00")[0]["e"]
    monkeypatch.setenv("MY_SERVICE_API_KEY", secret)
    info = build_site([runs], site)
    assert info["n_units_reused"] == 5
    assert secret not in json.dumps(sample_items(site, "run00", "synth_ruler--t00"))
    # a local folder named by an error: rewritten relative to the cache root that is set now
    per[0]["error"] = f"cannot read {tmp_path}/cache/data/x.json"
    _write_rows(task / "per_sample.jsonl", per)
    build_site([runs], site)
    assert "<evalsuite cache>/data/x.json" in sample_items(site, "run00", "synth_ruler--t00")[0]["e"]
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "elsewhere"))
    build_site([runs], site)
    assert sample_items(site, "run00", "synth_ruler--t00")[0]["e"] == "cannot read <local>/x.json"
    # the prompt preview is an input too
    info = build_site([runs], site, prompt_preview=10)
    assert info["n_units_reused"] == 0
    _same_as_fresh(site, [runs], tmp_path, prompt_preview=10)


def test_a_damaged_or_edited_site_is_repaired_not_trusted(runs, tmp_path):
    site = tmp_path / "site"
    build_site([runs], site)
    chunk = site / "samples" / "run02" / "synth_ruler--t00.1.js"
    good = chunk.read_bytes()
    chunk.write_bytes(good.replace(b'(1, "', b'(1, "AAAA'))  # edited by hand
    (site / "samples" / "run00" / "synth_lb--t00.1.js").unlink()  # deleted
    (site / "runs" / "run01.html").write_text("defaced")
    (site / "stray.html").write_text("left over")
    info = build_site([runs], site)
    assert info["n_units_reused"] == 4 and chunk.read_bytes() == good
    assert not (site / "stray.html").exists()
    _same_as_fresh(site, [runs], tmp_path)
    # a marker from an older version (plain text) or a damaged one: a full build, then reuse again
    for text in ("built by evalsuite leaderboard build\n", "{not json"):
        (site / incremental.MARKER).write_text(text)
        assert build_site([runs], site)["n_units_reused"] == 0
        assert build_site([runs], site)["n_units_reused"] == 6


def test_a_killed_build_leaves_nothing_that_a_later_build_would_trust(runs, tmp_path, monkeypatch):
    """Build A; the inputs change and build B dies after writing new sample data but before its record;
    the inputs go back to A's: the recorded key matches again, but the file on disk is B's, so the unit is
    made again, not served stale."""
    site = tmp_path / "site"
    build_site([runs], site)
    task = runs / "run01" / "synth_lb" / "t00"
    original = (task / "per_sample.jsonl").read_bytes()
    per = _rows(task / "per_sample.jsonl")
    per[0]["prediction"] = "from the build that died"
    _write_rows(task / "per_sample.jsonl", per)
    from evalsuite.leaderboard import build as lb_build

    def die(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lb_build, "_env", die)  # after the sample data, before any page and the record
    with pytest.raises(KeyboardInterrupt):
        build_site([runs], site)
    assert "from the build that died" in json.dumps(sample_items(site, "run01", "synth_lb--t00"))
    monkeypatch.undo()
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    (task / "per_sample.jsonl").write_bytes(original)
    info = build_site([runs], site)
    assert info["n_units_reused"] == 5
    assert "from the build that died" not in json.dumps(sample_items(site, "run01", "synth_lb--t00"))
    assert not list(site.rglob(".*.tmp-*"))
    _same_as_fresh(site, [runs], tmp_path)


def test_input_digest_record_is_used_and_a_rewritten_file_is_seen(runs, tmp_path):
    """Unchanged inputs are not read again (their stat signature is recorded in $EVALSUITE_CACHE), and a file
    rewritten with the same size and modification time is still seen (its change time moved)."""
    site = tmp_path / "site"
    build_site([runs], site)
    record = next((tmp_path / "cache" / "leaderboard").glob("inputs-*.json"))
    assert json.loads(record.read_text())["files"]
    assert not list(site.rglob("inputs-*.json"))  # local state, not part of the site

    def later(doc: dict) -> None:
        # as if the build ran a minute after the inputs were written: just-written files are never trusted
        # (a second write within one tick of the filesystem clock could leave the same signature)
        for e in doc["files"].values():
            e["at"] += 60 * 10**9
        record.write_text(json.dumps(doc))

    # the record is trusted: a wrong digest for an unchanged file changes that unit's key
    doc = json.loads(record.read_text())
    doc["files"][str(runs / "run02" / "synth_ruler" / "t00" / "samples.jsonl")]["sha256"] = "0" * 64
    later(doc)
    assert build_site([runs], site)["n_units_reused"] == 5
    # ... while a just-written file's entry is not (the racy window), nor an unreadable record
    record.write_text("{broken")
    assert build_site([runs], site)["n_units_reused"] == 5  # the true digest again: that unit is made again
    assert build_site([runs], site)["n_units_reused"] == 6
    # a same-size rewrite with the old modification time restored: the change time gives it away
    later(json.loads(record.read_text()))
    path = runs / "run00" / "synth_lb" / "t00" / "per_sample.jsonl"
    st = path.stat()
    raw = path.read_bytes()
    i = raw.index(b'"prediction": "') + len(b'"prediction": "')
    path.write_bytes(raw[:i] + (b"X" if raw[i:i + 1] != b"X" else b"Y") + raw[i + 1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert build_site([runs], site)["n_units_reused"] == 5
    _same_as_fresh(site, [runs], tmp_path)


def test_symlinks_in_the_site_are_removed_not_written_through(runs, tmp_path):
    site = tmp_path / "site"
    build_site([runs], site)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    outside = tmp_path / "outside"
    outside.mkdir()
    (site / "runs" / "run00.html").unlink()
    (site / "runs" / "run00.html").symlink_to(victim)
    import shutil

    shutil.rmtree(site / "samples" / "run01")
    (site / "samples" / "run01").symlink_to(outside, target_is_directory=True)
    build_site([runs], site)
    assert victim.read_text() == "precious" and list(outside.iterdir()) == []
    assert not (site / "runs" / "run00.html").is_symlink() and not (site / "samples" / "run01").is_symlink()
    _same_as_fresh(site, [runs], tmp_path)


def test_cli_reports_what_it_reused(runs, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_")}
    env["EVALSUITE_CACHE"] = str(tmp_path / "cache")
    r = run_cli(["leaderboard", "build", str(runs), "-o", str(tmp_path / "site")], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli(["leaderboard", "build", str(runs), "-o", str(tmp_path / "site")], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "6 of 6 run x task sample sets reused, 0 files written" in r.stdout, r.stdout
