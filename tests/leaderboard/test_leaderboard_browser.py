"""The built leaderboard in a real headless Chromium (Debian's chromium + chromium-driver), over file://.

Checks that the overview table sorts, a per-benchmark page, its charts and the RULER heatmap tables render,
that the sample browser loads its compressed data on demand from file:// under the pages' Content-Security-
Policy (pages, the failed-only filter, a link to one sample, a missing chunk), that model output carrying
``<script>`` and ``<img onerror>`` is shown as text and never runs, and that no page logs a CSP violation or
script error. Screenshots go to ``$EVALSUITE_TEST_ARTIFACTS`` (default ``tests/artifacts/``).

Skipped with a reason when chromium, its driver or selenium is missing, except under ``CI=true``,
where a missing browser is a failure (CI installs it: ``apt-get install -y chromium chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leaderboard_site import DUMMY, built_site, lb_runs  # noqa: E402,F401

ARTIFACTS = Path(os.environ.get("EVALSUITE_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000"]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {reason} (install: apt-get install -y chromium chromium-driver; "
                    "pip install 'evalsuite[test]')")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ModuleNotFoundError:
        _missing("selenium is not installed")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        _missing("chromium and chromium-driver are not installed")
    profile = tempfile.mkdtemp(prefix="evalsuite-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for f in CHROME_FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP reports, script errors
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(drv, script: str, what: str, tries: int = 200):
    import time

    for _ in range(tries):
        v = drv.execute_script(script)
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(what)


def _open(drv, path: Path, fragment: str = ""):
    drv.get(path.resolve().as_uri() + fragment)
    # site.js marks the document once its handlers are attached
    _wait(drv, "return document.documentElement.getAttribute('data-site-ready') === '1'", f"site.js did not run on {path}")


def _samples_ready(drv, page: int) -> None:
    _wait(drv, "var r = document.documentElement; if (r.getAttribute('data-samples-error')) {"
               " throw new Error(r.getAttribute('data-samples-error')); }"
               f" return r.getAttribute('data-samples-ready') === '{page}'", f"sample page {page} not shown")


def _console(drv) -> list[str]:
    """Console messages since the last call that point at a problem (CSP violations, script errors)."""
    return [e["message"] for e in drv.get_log("browser") if e.get("level") in ("SEVERE", "WARNING")]


def _column(drv, table_id: str, col: int) -> list[str]:
    return drv.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".map(r => r.cells[arguments[1]].getAttribute('data-sort') || '');", table_id, col)


def _shot(drv, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(ARTIFACTS / name))


def test_overview_sorts(browser, built_site):
    _open(browser, built_site / "index.html")
    headers = browser.find_elements("css selector", "#overview thead th")
    names = [h.text.strip() for h in headers]
    ruler = names.index("ruler")
    headers[ruler].click()  # numbers sort best first
    vals = [v for v in _column(browser, "overview", ruler) if v]
    assert len(vals) == 2 and [float(v) for v in vals] == sorted((float(v) for v in vals), reverse=True)
    assert headers[ruler].get_attribute("aria-sort") == "descending"
    headers[ruler].click()
    vals_up = [v for v in _column(browser, "overview", ruler) if v]
    assert [float(v) for v in vals_up] == sorted(float(v) for v in vals_up)
    # runs without that group stay at the bottom either way
    col = _column(browser, "overview", ruler)
    assert col[:2] == vals_up and all(v == "" for v in col[2:])
    headers[1].click()  # run ids, A-Z
    runs = _column(browser, "overview", 1)
    assert runs == sorted(runs, key=str.lower)
    _shot(browser, "leaderboard-overview.png")


def test_benchmark_page_and_heatmap_render(browser, built_site):
    _console(browser)
    _open(browser, built_site / "benchmarks" / "ruler.html")
    assert browser.find_element("css selector", "h1").text == "ruler"
    assert browser.find_elements("css selector", "#group-scores tbody tr")
    _open(browser, built_site / "tasks" / "ruler--niah_single_1.html")
    # the depth x length heatmaps are tables whose cells the stylesheet colours (classes, no inline style)
    tables = browser.find_elements("css selector", "figure.heatmap table.heatmap")
    assert len(tables) == 2
    colours = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.heatmap td')).map(td => getComputedStyle(td).backgroundColor);")
    assert colours and all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in colours), colours
    assert "rgb(0, 104, 55)" in colours  # h20, the gold run's 100s
    imgs = browser.find_elements("css selector", "figure img")
    assert imgs
    for img in imgs:  # the SVG charts
        loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
        assert loaded and loaded > 100, img.get_attribute("src")
    _shot(browser, "leaderboard-ruler-task.png")
    _open(browser, built_site / "tasks" / "dummyplug--echo_word.html")
    assert browser.find_element("css selector", "h1").text == DUMMY["display_name"]
    assert _console(browser) == []


def test_model_output_with_script_and_img_onerror_stays_text(browser, built_site):
    _console(browser)
    page = built_site / "samples" / "xss-ruler" / "ruler--niah_single_1.html"
    _open(browser, page)
    _samples_ready(browser, 1)  # the chunk came in through a <script> element and was inflated
    import time

    time.sleep(0.3)  # give a (wrongly) injected <img onerror> time to fire
    assert browser.execute_script("return window.__xss === undefined")
    assert "pwned" not in browser.title
    # no element came from the payload; its text is visible verbatim
    assert browser.execute_script("return document.querySelectorAll('main img, main tbody script').length") == 0
    outputs = [e.text for e in browser.find_elements("css selector", "pre.output")]
    assert len(outputs) == 8
    assert all(o.startswith('<script>document.title="pwned";window.__xss=1</script><img src=x onerror=')
               for o in outputs)
    assert browser.find_element("css selector", "pre.ref").text
    assert "string_match_all: 0.000" in browser.find_element("css selector", "tr.sample").text
    # the think text is folded, the prompt preview too
    think = browser.find_element("css selector", "details.think")
    assert think.get_attribute("open") is None and "think (" in think.text
    assert browser.find_elements("css selector", "details.preview")
    _shot(browser, "leaderboard-samples-xss.png")
    assert _console(browser) == []


@pytest.fixture(scope="module")
def paged_site(tmp_path_factory):
    """One run, 260 samples per task: two chunks, two pages."""
    from leaderboard_synth import write_results

    from evalsuite.leaderboard import build_site

    d = tmp_path_factory.mktemp("paged")
    write_results(d / "res", n_runs=1, n_tasks=2, n_samples=260)
    build_site([d / "res"], d / "site")
    return d / "site"


def _rows(drv) -> list[tuple[str, bool]]:
    return drv.execute_script("return Array.from(document.querySelectorAll('#samples tbody tr'))"
                              ".map(r => [r.id, r.classList.contains('failed')]);")


def test_sample_pages_filter_and_links_from_file_url(browser, paged_site):
    from evalsuite.leaderboard.samples import read_chunk

    items = read_chunk(paged_site / "samples/run00/synth_lb--t00.1.js")[1] + \
        read_chunk(paged_site / "samples/run00/synth_lb--t00.2.js")[1]
    failed = [f"s-{s['i']}" for s in items if s.get("x")]
    assert 0 < len(failed) < 250
    _console(browser)
    page = paged_site / "samples" / "run00" / "synth_lb--t00.html"
    _open(browser, page)
    _samples_ready(browser, 1)
    rows = _rows(browser)
    assert [r[0] for r in rows] == [f"s-{i}" for i in range(250)]
    assert browser.find_element("id", "samples-status").text == "Samples 1–250 of 260."
    # only chunk 1 was loaded for page 1
    assert browser.execute_script("return Array.from(document.scripts).map(s => s.getAttribute('src'))"
                                  ".filter(s => s && s.endsWith('.js') && s.indexOf('static/') < 0);") == \
        ["synth_lb--t00.1.js"]
    browser.find_element("css selector", "#sample-pages a[href='#p2']").click()
    _samples_ready(browser, 2)
    assert [r[0] for r in _rows(browser)] == [f"s-{i}" for i in range(250, 260)]
    assert browser.find_element("id", "samples-status").text == "Samples 251–260 of 260."
    # failed only: every chunk is read, and the rows are exactly the failed samples
    browser.find_element("id", "only-failed").click()
    _samples_ready(browser, 1)
    rows = _rows(browser)
    assert [r[0] for r in rows] == failed and all(r[1] for r in rows)
    _shot(browser, "leaderboard-samples-paged.png")
    # a link to one sample opens the page that holds it
    _open(browser, page, "#s-255")
    _samples_ready(browser, 2)
    assert browser.find_elements("id", "s-255")
    # a page whose chunk is missing says so instead of hanging
    (paged_site / "samples/run00/synth_ruler--t00.2.js").rename(paged_site / "moved.js")
    try:
        _open(browser, paged_site / "samples" / "run00" / "synth_ruler--t00.html", "#p2")
        msg = _wait(browser, "return document.documentElement.getAttribute('data-samples-error')", "no error shown")
        assert "synth_ruler--t00.2.js" in msg
        assert "Cannot show the samples" in browser.find_element("id", "samples-status").text
    finally:
        (paged_site / "moved.js").rename(paged_site / "samples/run00/synth_ruler--t00.2.js")
    problems = _console(browser)
    assert all("synth_ruler--t00.2.js" in m for m in problems), problems  # only the missing file's load error
