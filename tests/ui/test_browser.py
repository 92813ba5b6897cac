"""The dashboard in a real browser: `streamlit run app.py` on 127.0.0.1, driven by headless
Chromium (Debian's package) through Playwright. Every page renders its Plotly charts with
no error element; a screenshot of each page is saved (KVPLAN_SCREENSHOT_DIR, default
screenshots/). An invalid upload shows an inline error and the page keeps working.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("KVPLAN_SCREENSHOT_DIR", ROOT / "screenshots"))
PAGES = {"capacity": "", "frontier": "frontier", "cost": "cost", "compare": "compare"}
# Chromium flags for a sandboxed, offline machine (no background network, no GPU).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT_S = 60
RENDER_TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it with apt-get)"
)
playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + SERVER_START_TIMEOUT_S
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode()[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _settle(page: object) -> None:
    """Wait until Streamlit has finished running the script and drawn a chart."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=RENDER_TIMEOUT_MS)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=RENDER_TIMEOUT_MS,
    )
    page.wait_for_timeout(500)


def _no_errors(page: object) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_charts(server, browser, name):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/{PAGES[name]}")
    _settle(page)
    _no_errors(page)
    assert page.locator(".js-plotly-plot").count() >= 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.close()


def test_simulate_page_runs_in_the_browser(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/simulate")
    page.wait_for_selector('[data-testid="stApp"]', timeout=RENDER_TIMEOUT_MS)
    page.get_by_label("Arrivals for (s), 0 = as in the scenario").fill("10")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Run simulation").click()
    _settle(page)
    _no_errors(page)
    assert page.locator(".js-plotly-plot").count() == 4
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "simulate.png"), full_page=True)
    page.close()


def test_bad_upload_shows_inline_error_and_page_keeps_working(server, browser, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "gpt2", "hidden_size": 768}')
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/")
    _settle(page)
    page.get_by_text("Add a model from config.json").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
    error = page.locator('[data-testid="stAlertContentError"]')
    error.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "model_type" in error.first.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= 1  # the page still works
    page.close()
