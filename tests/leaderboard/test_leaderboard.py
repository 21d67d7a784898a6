"""`evalsuite leaderboard build` on real run folders: pages, metadata from the registry (a plugin task
included), escaping, charts, the compressed sample data, byte-identical rebuilds, and an overview that loads
no per-sample data. Incremental rebuilds: test_leaderboard_incremental.py; in a browser:
test_leaderboard_browser.py."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import run_cli  # noqa: E402
from leaderboard_site import DUMMY, XSS, built_site, lb_runs, read, sample_items  # noqa: E402,F401


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pages_and_charts(built_site):
    site = built_site
    for rel in ("index.html", "static/site.css", "static/site.js", "benchmarks/ruler.html",
                "benchmarks/longbench_e.html", "tasks/ruler--niah_single_1.html", "tasks/longbench_e--hotpotqa.html",
                "runs/gold-ruler.html", "runs/xss-ruler.html", "samples/xss-ruler/ruler--niah_single_1.html",
                "samples/xss-ruler/ruler--niah_single_1.1.js", "samples/lbe/longbench_e--hotpotqa.html"):
        assert (site / rel).is_file(), rel
    task = read(site, "tasks/ruler--niah_single_1.html")
    # depth x length heatmaps are HTML tables, one per model, coloured by CSS class (no inline style: CSP)
    tables = re.findall(r'<figure class="heatmap"><table class="heatmap">\n<caption>([^<]*)</caption>(.*?)</table>',
                        task, re.S)
    assert len(tables) == 2
    for _, body in tables:
        assert re.search(r"<th scope=\"row\">1k</th>", body) and re.search(r"<th scope=\"row\">2k</th>", body)
        assert re.findall(r'<td class="h(?:[0-9]|1[0-9]|20|n)"', body)
    assert 'style=' not in task and not list(site.glob("charts/*heatmap*"))
    assert 'charts/task-ruler--niah_single_1-length.svg' in task  # per-length curves
    for rel in ("charts/task-ruler--niah_single_1-length.svg", "charts/task-longbench_e--hotpotqa-buckets.svg",
                "charts/group-ruler-length.svg"):
        svg = read(site, rel)
        ET.fromstring(svg.encode())  # well-formed XML
        assert svg.startswith("<?xml") and "<svg" in svg and "<script" not in svg and "<dc:date>" not in svg
    assert "context length" in read(site, "charts/task-ruler--niah_single_1-length.svg")
    assert "charts/task-longbench_e--hotpotqa-buckets.svg" in read(site, "tasks/longbench_e--hotpotqa.html")
    assert "charts/group-ruler-length.svg" in read(site, "benchmarks/ruler.html")
    # no CDN, no absolute URLs: the site works from file:// and any static host
    for rel, data in _files(site).items():
        if rel.endswith((".html", ".css", ".js")):
            text = data.decode()
            assert not re.search(r'(?:src|href)="(?:https?:)?//', text), rel


def test_heatmap_table_bins_and_classes():
    from evalsuite.leaderboard.charts import heatmap_table

    grid = {"8192": {str(d): float(d) for d in range(0, 100, 5)}, "4096": {"0": 100.0, "50": None}}
    t = heatmap_table(grid)
    assert t["cols"] == [f"{a}-{a + 10}" for a in range(0, 100, 10)]  # 20 depths -> tenths
    assert [r["label"] for r in t["rows"]] == ["4k", "8k"]
    assert t["rows"][0]["cells"][0] == {"value": 100.0, "text": "100", "cls": "h20"}
    assert t["rows"][0]["cells"][5]["cls"] == "hn"  # None and missing cells stay empty
    assert t["rows"][1]["cells"][0] == {"value": 2.5, "text": "2", "cls": "h0"}
    few = heatmap_table({"1024": {"10": 50.0, "90": 12.0}})
    assert few["cols"] == ["10", "90"] and [c["cls"] for c in few["rows"][0]["cells"]] == ["h10", "h2"]


def test_svg_charts_escape_text_and_survive_odd_values():
    from evalsuite.leaderboard.charts import bucket_bars, length_curves

    evil = 'm</text><script>alert(1)</script>&"\x01$x^2$'
    for svg in (length_curves({evil: {"1024": 50.0, "2048": float("nan")}, "b": {"1024": -3.0}}, evil, "score"),
                bucket_bars({evil: {"0-4k": 1e9, "4k+": None}}, ["0-4k", "4k+", evil], evil, "score")):
        root = ET.fromstring(svg)  # parses: the label is text, the control character replaced
        texts = "".join(root.itertext())
        assert b"<script>" not in svg and "alert(1)" in texts and "$x^2$" in texts and "\ufffd" in texts
    ET.fromstring(length_curves({}, "empty", "score"))
    assert b"nan" not in length_curves({"a": {"1": float("nan")}, "b": {"1": 3.0}}, "t", "s").lower()

def test_overview_lists_runs_with_ci_and_n_and_loads_no_per_sample_data(built_site):
    index = read(built_site, "index.html")
    for run in ("gold-ruler", "xss-ruler", "lbe", "toy"):
        assert f'href="runs/{run}.html"' in index
    assert re.search(r'<span class="v">100\.00</span> <span class="ci">\[100\.0, 100\.0\]</span><span class="n">n=8',
                     index)
    refs = re.findall(r'(?:src|href)="([^"]+)"', index)
    assert refs and not [r for r in refs if r.startswith("samples/") or r.endswith((".json", ".jsonl"))]
    assert "<script" not in index.replace('<script src="static/site.js" defer></script>', "")


def test_sample_data_is_stored_compressed_and_never_as_markup(built_site):
    """The samples are data (decoded here exactly as the page's script decodes them): the payload is kept
    verbatim there, and no HTML or script file of the site carries it as markup."""
    items = sample_items(built_site, "xss-ruler", "ruler--niah_single_1")
    assert len(items) == 8 and [i["i"] for i in items] == sorted(i["i"] for i in items)
    s = items[0]
    assert s["o"].startswith(XSS.split(" 42")[0]) and "reasoning with <b>markup</b>" in s["t"]
    assert s["r"] and ["string_match_all", "0.000"] in s["m"] and s["x"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", s["h"]) and s["pt"] and s["pc"]
    assert len(s["pv"]) == 120  # --prompt-preview 120 on a run that logged prompts
    page = read(built_site, "samples/xss-ruler/ruler--niah_single_1.html")
    assert 'data-chunks="1"' in page and 'data-base="ruler--niah_single_1"' in page and "8 samples, 8 below" in page
    chunk = read(built_site, "samples/xss-ruler/ruler--niah_single_1.1.js")
    assert re.fullmatch(r'evalsuiteSamples\(1, "[A-Za-z0-9+/=]+"\);\n', chunk)
    for f in built_site.rglob("*"):
        if f.suffix in (".html", ".js", ".svg", ".css"):
            text = f.read_text()
            assert "onerror=\"document" not in text and "window.__xss=1</script>" not in text, f
            if "samples" in f.parts:  # the sample pages hold no sample text at all: it is in the chunks
                assert "document.title=" not in text and "pwned" not in text, f
    # the script that shows them never parses strings as markup nor evaluates them
    js = read(built_site, "static/site.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                 "setTimeout(\"", "DOMParser", "createContextualFragment", "fetch(", "XMLHttpRequest"):
        assert sink not in js, sink
    assert "textContent" in js and "DecompressionStream" in js


def test_model_output_is_escaped_in_pages(built_site):
    """Names and labels from results that do reach the HTML are escaped (the run page's manifest)."""
    page = read(built_site, "runs/xss-ruler.html")
    assert "&lt;script&gt;document.title=" in page and "<script>document" not in page
    assert "&lt;img src=x onerror=" in page and "<img src=x" not in page


def test_run_page_shows_the_manifest(built_site):
    page = read(built_site, "runs/xss-ruler.html")
    assert "manifest.json" in page and "&#34;evalsuite_version&#34;" in page
    assert "&#34;text&#34;: &#34;&lt;think&gt;" in page  # the echo option, escaped inside the manifest
    # the registry's benchmark-level summaries for the run's tasks
    assert "<td>ruler Avg</td>" in read(built_site, "runs/gold-ruler.html")


def test_plugin_task_appears_from_its_own_metadata(built_site):
    """The dummy task lives only in a plugin on PYTHONPATH; its page, group and overview column come from
    the attributes on its class, read through the registry."""
    index = read(built_site, "index.html")
    assert f'href="benchmarks/{DUMMY["group"]}.html"' in index
    page = read(built_site, "tasks/dummyplug--echo_word.html")
    assert f"<h1>{DUMMY['display_name']}</h1>" in page and DUMMY["description"] in page
    assert "<dt>primary metric</dt><dd>dummy_match</dd>" in page and "higher is better" in page
    group = read(built_site, f"benchmarks/{DUMMY['group']}.html")
    assert DUMMY["display_name"] in group and DUMMY["description"] in group
    # the toy plugin's task has no metadata attributes: its docstring and group prefix are used
    assert "Add two numbers (a deterministic toy task)." in read(built_site, "tasks/toy--addition.html")


def test_rebuild_is_byte_identical_and_output_folder_is_guarded(lb_runs, built_site, tmp_path):
    again = tmp_path / "again"
    r = run_cli(["leaderboard", "build", str(lb_runs["results"]), "-o", str(again), "--prompt-preview", "120",
                 "--include-scripted"], cwd=lb_runs["dir"], env=lb_runs["env"])
    assert r.returncode == 0, r.stderr
    a, b = _files(built_site), _files(again)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), [k for k in a if a[k] != b.get(k)]
    # rebuilding into a site folder replaces it; a foreign non-empty folder is refused (a usage error)
    from evalsuite.errors import UserError
    from evalsuite.leaderboard import build_site

    build_site([lb_runs["results"] / "lbe"], again)
    assert (again / "runs" / "lbe.html").exists() and not (again / "runs" / "toy.html").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        build_site([lb_runs["results"]], foreign)
    assert (foreign / "notes.txt").exists()
    with pytest.raises(UserError, match="not a run folder"):
        build_site([tmp_path / "none"], tmp_path / "x")


def test_synthetic_many_runs_group_ci_and_pagination(tmp_path):
    from leaderboard_synth import write_results

    from evalsuite.leaderboard import build_site
    from evalsuite.leaderboard.samples import read_chunk

    write_results(tmp_path / "res", n_runs=3, n_tasks=2, n_samples=260)
    info = build_site([tmp_path / "res"], tmp_path / "site")
    assert info["n_runs"] == 3 and info["n_tasks"] == 2
    # 260 samples -> two chunks of 250 and 10, behind one page
    site = tmp_path / "site"
    assert [len(read_chunk(site / f"samples/run00/synth_lb--t00.{n}.js")[1]) for n in (1, 2)] == [250, 10]
    assert not (site / "samples/run00/synth_lb--t00.3.js").exists()
    page = read(site, "samples/run00/synth_lb--t00.html")
    assert 'data-chunks="2" data-chunk-size="250" data-n="260"' in page
    assert [i["i"] for i in sample_items(site, "run00", "synth_lb--t00")] == list(range(260))
    index = read(site, "index.html")
    assert index.count('<span class="ci">[') == 6  # 3 runs x 2 groups, each with a CI
    # worker processes write the same files
    build_site([tmp_path / "res"], tmp_path / "site2", jobs=2)
    a, b = _files(tmp_path / "site"), _files(tmp_path / "site2")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def test_site_bytes_per_sample_at_500_samples(tmp_path):
    """The issue's budget: at most 200 bytes of site per sample at 500 samples per task (the per-sample HTML
    of the old site was ~531 B)."""
    from leaderboard_synth import write_results

    from evalsuite.leaderboard import build_site

    write_results(tmp_path / "res", n_runs=2, n_tasks=4, n_samples=500)
    build_site([tmp_path / "res"], tmp_path / "site")
    total = sum(len(v) for v in _files(tmp_path / "site").values())
    assert total / (2 * 4 * 500) <= 200, total / 4000
