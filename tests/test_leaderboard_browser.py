"""The built leaderboard in a real headless Chromium (Debian's chromium + chromium-driver), over file://.

Checks that the overview table sorts, a per-benchmark page and the RULER heatmap render, and that model
output carrying ``<script>`` and ``<img onerror>`` is shown as text and never runs. Screenshots go to
``$EVALSUITE_TEST_ARTIFACTS`` (default ``tests/artifacts/``).

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from leaderboard_site import DUMMY, built_site, lb_runs  # noqa: E402,F401

ARTIFACTS = Path(os.environ.get("EVALSUITE_TEST_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")
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
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(drv, path: Path):
    drv.get(path.resolve().as_uri())
    # site.js marks the document once its handlers are attached
    for _ in range(100):
        if drv.execute_script("return document.documentElement.getAttribute('data-site-ready')") == "1":
            return
        drv.implicitly_wait(0)
        import time

        time.sleep(0.05)
    raise AssertionError(f"site.js did not run on {path}")


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
    _open(browser, built_site / "benchmarks" / "ruler.html")
    assert browser.find_element("css selector", "h1").text == "ruler"
    assert browser.find_elements("css selector", "#group-scores tbody tr")
    _open(browser, built_site / "tasks" / "ruler--niah_single_1.html")
    imgs = browser.find_elements("css selector", "figure.heatmap img")
    assert len(imgs) == 2
    for img in imgs:
        loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
        assert loaded and loaded > 100, img.get_attribute("src")
    _shot(browser, "leaderboard-ruler-task.png")
    _open(browser, built_site / "tasks" / "dummyplug--echo_word.html")
    assert browser.find_element("css selector", "h1").text == DUMMY["display_name"]


def test_model_output_with_script_and_img_onerror_stays_text(browser, built_site):
    page = built_site / "samples" / "xss-ruler" / "ruler--niah_single_1.html"
    _open(browser, page)
    import time

    time.sleep(0.3)  # give a (wrongly) injected <img onerror> time to fire
    assert browser.execute_script("return window.__xss === undefined")
    assert "pwned" not in browser.title
    # no element came from the payload; its text is visible verbatim
    assert browser.execute_script("return document.querySelectorAll('main img, main script').length") == 0
    outputs = [e.text for e in browser.find_elements("css selector", "pre.output")]
    assert outputs and all(o.startswith('<script>document.title="pwned";window.__xss=1</script><img src=x onerror=')
                           for o in outputs)
    # the think text is folded, and the failed-only filter works
    think = browser.find_element("css selector", "details.think")
    assert think.get_attribute("open") is None
    box = browser.find_element("id", "only-failed")
    box.click()
    assert browser.execute_script("return document.body.classList.contains('only-failed')")
    _shot(browser, "leaderboard-samples-xss.png")
