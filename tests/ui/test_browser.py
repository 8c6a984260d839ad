"""The UI in real headless Chromium (Debian's, driven by Playwright): every page loads
without console errors, tables sort, runs are picked on a chart, a drawn stroke gets a
prediction and a running study gains epochs on screen. Screenshots go to
$MNISTLAB_SCREENSHOTS (default: a temporary folder)."""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from mnistlab.studies.results_folder import DB_NAME  # noqa: E402
from mnistlab.ui.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no chromium installed")
TIMEOUT_MS = 15_000
LIVE_STUDY = """
name: live-ui
data: {dataset: digits, scaling: minmax, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.01}, epochs: 1500, batch_size: 64}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(results: Path) -> Iterator[str]:
    """The UI for `results` on a free local port, in a thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(results), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the UI server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture(scope="module")
def base_url(results) -> Iterator[str]:
    with serving(results) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("MNISTLAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and uncaught exceptions in `page.errors`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    context.close()


@pytest.fixture(scope="module")
def run_ids(results) -> list[str]:
    with sqlite3.connect(results / DB_NAME) as conn:
        return [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY ord, run_id")]


def test_every_page_loads_without_console_errors(page, base_url, run_ids, shots):
    pages = {
        "studies": "/",
        "study": "/studies/tiny-ui",
        "run": f"/runs/{run_ids[0]}",
        "compare-runs": f"/compare?run={run_ids[0]}&run={run_ids[1]}",
        "compare-studies": "/compare?study=tiny-ui",
        "draw": "/draw",
    }
    for name, url in pages.items():
        response = page.goto(base_url + url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert page.errors == [], f"{url}: {page.errors}"
    page.goto(base_url + "/studies/nope")
    assert "no study named 'nope'" in page.inner_text("#error-message")


def test_a_table_sorts_by_a_clicked_column(page, base_url):
    page.goto(base_url + "/studies/tiny-ui")
    headers = page.locator("#runs thead th").all_inner_texts()
    column = next(i for i, h in enumerate(headers) if "val" in h.lower())
    cells = f"#runs tbody tr td:nth-child({column + 1})"

    def values() -> list[float]:
        return [
            float(v)
            for v in page.eval_on_selector_all(cells, "tds => tds.map(t => t.dataset.sort)")
        ]

    page.locator("#runs thead th").nth(column).click()
    ascending = values()
    assert ascending == sorted(ascending)
    page.locator("#runs thead th").nth(column).click()
    assert values() == sorted(ascending, reverse=True)
    page.fill("#runs-filter", "no such text")
    assert page.locator("#runs tbody tr:visible").count() == 0


def test_runs_are_picked_overlaid_and_banded_on_the_chart(page, base_url, shots):
    page.goto(base_url + "/studies/tiny-ui")
    chart = page.locator("#study-chart")
    series = "document.querySelector('#study-chart').dataset.series === '{}'"
    page.wait_for_function(series.format(4))
    page.locator("#run-picker input.pick").first.uncheck()
    page.wait_for_function(series.format(3))
    page.locator("#run-picker .pick-all").click()
    page.check("#study-chart-controls .bands")  # two configurations: mean, +std, -std each
    page.wait_for_function(series.format(6))
    page.select_option("#study-chart-controls .metric", "loss")
    page.check("#study-chart-controls .log")
    assert chart.locator("canvas").count() == 1
    assert page.locator("#study-chart .u-legend").inner_text().count("n=2") == 2
    page.screenshot(path=str(shots / "study-bands.png"), full_page=True)
    page.locator("#run-picker input.pick").nth(1).uncheck()
    page.click("#run-picker .compare-picked")
    page.wait_for_selector("#compare-runs-table")
    assert page.locator("#compare-runs-table thead th").count() == 1 + 3  # metric + 3 runs
    assert page.errors == []


def test_a_drawn_stroke_gets_a_prediction(page, base_url, shots):
    page.goto(base_url + "/draw")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + 40)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + 150 - step, box["y"] + 40 + 10 * step)
    page.mouse.up()
    page.wait_for_function("/^[0-9]$/.test(document.querySelector('#digit').textContent)")
    assert page.locator("#probs .bar").count() == 10
    assert page.locator("#probs .bar.best").count() == 1
    page.screenshot(path=str(shots / "draw-stroke.png"), full_page=True)
    assert page.errors == []


def test_a_running_study_gains_epochs_on_screen(page, tmp_path, shots):
    study = tmp_path / "live-ui.yaml"
    study.write_text(LIVE_STUDY)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "mnistlab.cli", "run", str(study), "--results", str(results)]
    command += ["--jobs", "1", "--engine", "autograd"]  # slow enough to watch it run
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (results / DB_NAME).is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "the study did not start"
            time.sleep(0.1)
        with serving(results) as url:
            page.goto(url + "/studies/live-ui")
            epochs = "Number(document.querySelector('#live-epochs').textContent)"
            page.wait_for_function(f"{epochs} > 0", timeout=60_000)
            seen = page.evaluate(epochs)
            page.wait_for_function(f"{epochs} > {seen}")
            assert page.locator("#live-counts [data-status='running']").inner_text() == "1"
            page.screenshot(path=str(shots / "live.png"), full_page=True)
            assert page.errors == []
    finally:
        proc.kill()
        proc.wait()
