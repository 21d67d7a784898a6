"""`evalsuite leaderboard build` on real run folders: pages, metadata from the registry (a plugin task
included), escaping, charts, byte-identical rebuilds, and an overview that loads no per-sample data."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_cli  # noqa: E402
from leaderboard_site import DUMMY, XSS, built_site, lb_runs, read  # noqa: E402,F401


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pages_and_charts(built_site):
    site = built_site
    for rel in ("index.html", "static/site.css", "static/site.js", "benchmarks/ruler.html",
                "benchmarks/longbench_e.html", "tasks/ruler--niah_single_1.html", "tasks/longbench_e--hotpotqa.html",
                "runs/gold-ruler.html", "runs/xss-ruler.html", "samples/xss-ruler/ruler--niah_single_1.html",
                "samples/lbe/longbench_e--hotpotqa.html"):
        assert (site / rel).is_file(), rel
    task = read(site, "tasks/ruler--niah_single_1.html")
    heatmaps = re.findall(r'<img src="\.\./(charts/task-ruler--niah_single_1-heatmap-[^"]+\.svg)"', task)
    assert len(heatmaps) == 2  # one per model
    assert 'charts/task-ruler--niah_single_1-length.svg' in task  # per-length curves
    for h in heatmaps:
        svg = read(site, h)
        assert svg.startswith("<?xml") and "<svg" in svg and "needle depth" in svg
        assert "<dc:date>" not in svg  # no build date: rebuilds are byte-identical
    assert "charts/task-longbench_e--hotpotqa-buckets.svg" in read(site, "tasks/longbench_e--hotpotqa.html")
    assert "charts/group-ruler-length.svg" in read(site, "benchmarks/ruler.html")
    # no CDN, no absolute URLs: the site works from file:// and any static host
    for rel, data in _files(site).items():
        if rel.endswith((".html", ".css", ".js")):
            text = data.decode()
            assert not re.search(r'(?:src|href)="(?:https?:)?//', text), rel


def test_overview_lists_runs_with_ci_and_n_and_loads_no_per_sample_data(built_site):
    index = read(built_site, "index.html")
    for run in ("gold-ruler", "xss-ruler", "lbe", "toy"):
        assert f'href="runs/{run}.html"' in index
    assert re.search(r'<span class="v">100\.00</span> <span class="ci">\[100\.0, 100\.0\]</span><span class="n">n=8',
                     index)
    refs = re.findall(r'(?:src|href)="([^"]+)"', index)
    assert refs and not [r for r in refs if r.startswith("samples/") or r.endswith((".json", ".jsonl"))]
    assert "<script" not in index.replace('<script src="static/site.js" defer></script>', "")


def test_model_output_is_escaped_everywhere(built_site):
    page = read(built_site, "samples/xss-ruler/ruler--niah_single_1.html")
    assert "&lt;script&gt;document.title=&#34;pwned&#34;;window.__xss=1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page
    assert "<img src=x" not in page and "<script>document" not in page
    # the think block is folded, escaped, and not part of the shown answer
    assert '<details class="think"><summary>think (' in page and "&lt;b&gt;markup&lt;/b&gt;" in page
    # references, per-sample scores, prompt hash + opt-in preview (the run logged prompts)
    assert '<pre class="ref">' in page and "string_match_all: 0.000" in page
    assert re.search(r'<code class="hash" title="[0-9a-f]{64}">[0-9a-f]{12}</code>', page)
    assert '<details class="preview"><summary>preview</summary>' in page
    for f in built_site.rglob("*.html"):
        text = f.read_text()
        assert "onerror=\"document" not in text and "window.__xss=1</script>" not in text, f


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
    pytest.importorskip("matplotlib")
    from leaderboard_synth import write_results

    from evalsuite.leaderboard import build_site

    write_results(tmp_path / "res", n_runs=3, n_tasks=2, n_samples=260)
    info = build_site([tmp_path / "res"], tmp_path / "site")
    assert info["n_runs"] == 3 and info["n_tasks"] == 2
    # 260 samples -> two sample pages of 250 and 10, linked to each other
    p1 = read(tmp_path / "site", "samples/run00/synth_lb--t00.html")
    p2 = read(tmp_path / "site", "samples/run00/synth_lb--t00-2.html")
    assert p1.count('<tr class="sample') == 250 and p2.count('<tr class="sample') == 10
    assert 'href="synth_lb--t00-2.html"' in p1
    index = read(tmp_path / "site", "index.html")
    assert index.count('<span class="ci">[') == 6  # 3 runs x 2 groups, each with a CI
    # worker processes write the same files
    build_site([tmp_path / "res"], tmp_path / "site2", jobs=2)
    a, b = _files(tmp_path / "site"), _files(tmp_path / "site2")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
