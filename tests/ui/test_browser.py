"""The dashboard in a real browser: `streamlit run app.py` on 127.0.0.1, driven by headless
Chromium (Debian's package) through Playwright.

- Every page renders its charts with no error element, at 1280 and 1920 px wide, and no
  metric (value, label or note) is cut off; a screenshot of each is saved
  (KVPLAN_SCREENSHOT_DIR, default screenshots/: `<page>-<width>.png`).
- A view is exported ("Download this view as scenarios"), uploaded on the Simulate page and
  run: the simulated replica count is the plan's and the goodput holds the plan's SLOs.
- "Simulate this view" runs the view and shows the plan beside the simulation.
- A link opened in a fresh browser context brings every setting back (the app rewrites the
  same link from its widgets, and shows the same bill).
- An invalid upload shows an inline error; a name typed for an upload never becomes a path.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse

import pytest
import yaml
from small_view import SMALL_VIEW

from planner.report import views
from planner.report.views import ViewConfig
from planner.ui.pages.simulate import SIM_TIME_LIMIT_S

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("KVPLAN_SCREENSHOT_DIR", ROOT / "screenshots"))
PAGES = {"capacity": "", "frontier": "frontier", "cost": "cost", "compare": "compare"}
WIDTHS = (1280, 1920)
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
RENDER_TIMEOUT_MS = 90_000
# A simulation may run up to the Simulate page's own limit; wait that long and 30 s more
# (on a loaded 2-core machine the small view's 300-s simulation takes about 100 s).
SIM_WAIT_MS = int((SIM_TIME_LIMIT_S + 30) * 1000)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it with apt-get)"
)
playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    # The server's output goes to a file: an undrained pipe would block a chatty server.
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    log = log_path.open("wb")
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
        stdout=log,
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
        pytest.fail(f"streamlit did not start: {log_path.read_text()[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _idle(page: object, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)


def _settle(page: object, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Wait until the script has finished and a chart is drawn."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=timeout_ms)
    _idle(page, timeout_ms)


def _no_errors(page: object) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


# Elements whose text must fit: a metric's value, label and note.
CUT_OFF_JS = """() => {
  const sel = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"],'
            + ' [data-testid="stMetricDelta"]';
  const cut = [];
  for (const el of document.querySelectorAll(sel)) {
    for (const node of [el, ...el.querySelectorAll('*')]) {
      if (node.scrollWidth > node.clientWidth + 1) { cut.push(el.innerText); break; }
    }
  }
  return cut;
}"""


def _metric(page: object, label: str, index: int = 0) -> tuple[str, str]:
    """(value, note) of the index-th metric with this label."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).nth(index)
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    delta = metric.locator('[data-testid="stMetricDelta"]')
    return value, delta.inner_text() if delta.count() else ""


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_and_nothing_is_cut_off(server, browser, name):
    page = browser.new_page(viewport={"width": WIDTHS[0], "height": 1100})
    page.goto(f"{server}/{PAGES[name]}")
    _settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1100})
        page.wait_for_timeout(1000)  # let the layout and charts resize
        _no_errors(page)
        assert page.locator(".js-plotly-plot").count() >= 1
        assert page.evaluate(CUT_OFF_JS) == [], f"cut off at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.close()


def test_an_exported_view_simulates_to_its_plan(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    page.goto(f"{server}/cost?{urlencode(SMALL_VIEW)}")
    _settle(page)
    _no_errors(page)
    planned_replicas = int(_metric(page, "self-hosted, per month")[1].split()[0])
    with page.expect_download(timeout=RENDER_TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download this view as scenarios").click()
    bundle = tmp_path / "kvplan-view.zip"
    download.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as z:
        doc = yaml.safe_load(z.read("kvplan-view/deepseek-v4-flash-on-h200.yaml"))
    assert doc["replicas"] == planned_replicas
    # Attention TP on auto: the best layout of a search around n = 4 GPUs per replica.
    view = ViewConfig(
        models=("deepseek-v4-flash",),
        gpus=("h200",),
        gpus_per_replica=4,
        requests_per_s=6,
        input_tokens=4096,
        answer_tokens=256,
        reasoning_mix=(1.0, 0.0, 0.0),
        tpot_slo_ms=50,
        ttft_slo_s=1,
    )
    plan = views.best_plan(view, "deepseek-v4-flash", "h200")
    assert plan is not None and plan.mode == "aggregated"
    assert doc["deployment"]["gpus_per_replica"] == plan.pools[0].layout.deployment.gpus_per_replica
    # Run the downloaded file on the Simulate page.
    page.get_by_role("link", name="Simulate").click()
    _idle(page)
    page.locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    _idle(page)
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bundle))
    # The page has read the zip when it describes the scenario (slow on a loaded machine).
    page.get_by_text("deepseek-v4-flash-on-h200: deepseek-v4-flash on").wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    _idle(page)
    page.get_by_role("button", name="Run simulation").click(timeout=RENDER_TIMEOUT_MS)
    _settle(page, SIM_WAIT_MS)
    _no_errors(page)
    replicas, _ = _metric(page, "replicas")
    goodput, _ = _metric(page, "goodput")
    assert int(replicas) == planned_replicas
    # The plan sizes for the TPOT SLO and the TTFT SLO at p90: at least 90% of requests
    # meet both in simulation.
    assert float(goodput.rstrip("%")) >= 90.0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "simulate-1500.png"), full_page=True)
    page.close()


def test_simulate_this_view_shows_plan_beside_simulation(server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{server}/?{urlencode(SMALL_VIEW)}")
    _settle(page)
    page.get_by_role("button", name="Simulate this view").click()
    page.get_by_text("Plan vs simulation").wait_for(timeout=SIM_WAIT_MS)
    _settle(page)
    _no_errors(page)
    assert page.locator(".js-plotly-plot").count() == 4
    page.close()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlparse(url).query))


def test_a_shared_link_brings_every_setting_back(server, browser):
    first = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = first.new_page()
    link = {**SMALL_VIEW, "models": "deepseek-v3.2,deepseek-v4-flash", "kv": "fp8"}
    page.goto(f"{server}/cost?{urlencode(link)}")
    _settle(page)
    # Settings changed in the page, not in the link: attention TP, expert parallel, the
    # engine and a $/GPU-hour.
    for label, option in (
        ("Attention TP", "1"),
        ("Expert parallel", "2"),
        ("Serving engine", "sglang"),
    ):
        page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
        page.get_by_role("option", name=option, exact=True).click()
        _idle(page)
    price = page.get_by_label("$/GPU-hour for h200", exact=True)
    price.fill("2.75")
    price.press("Enter")
    _settle(page)
    shared = page.url
    bills = [_metric(page, "self-hosted, per month", i)[0] for i in range(2)]
    params = _query(shared)
    assert (params["tp"], params["ep"], params["engine"]) == ("1", "2", "sglang")
    assert params["price"] == "h200:2.75"
    first.close()

    fresh = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = fresh.new_page()
    page.goto(shared)
    _settle(page)
    _no_errors(page)
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    # The app rewrites its link from its widgets: every setting came back.
    assert _query(page.url) == params
    assert [_metric(page, "self-hosted, per month", i)[0] for i in range(2)] == bills
    assert page.get_by_label("$/GPU-hour for h200", exact=True).input_value() == "2.75"
    fresh.close()


def _model_uploader(page):
    """The sidebar's config.json upload (the sidebar also has a calibrated-profile one)."""
    return page.get_by_label("Hugging Face config.json", exact=True).get_by_test_id(
        "stFileUploaderDropzoneInput"
    )


def test_bad_upload_shows_inline_error_and_page_keeps_working(server, browser, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "gpt2", "hidden_size": 768}')
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/")
    _settle(page)
    page.get_by_text("Add a model from config.json").click()
    _model_uploader(page).set_input_files(str(bad))
    error = page.locator('[data-testid="stAlertContentError"]')
    error.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "model_type" in error.first.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= 1  # the page still works
    page.close()


def test_a_typed_name_never_becomes_a_path(server, browser, tmp_path):
    target = tmp_path / "escape"
    config = ROOT / "tests" / "fixtures" / "hf_configs" / "llama-3.1-70b.json"
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/")
    _settle(page)
    page.get_by_text("Add a model from config.json").click()
    name = page.get_by_label("Name for it", exact=True)
    name.fill("../../../../../../.." + str(target / "x"))
    name.press("Enter")
    _idle(page)
    _model_uploader(page).set_input_files(str(config))
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    success.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "/" not in re.sub(r" added: pick it under Models$", "", success.first.inner_text())
    assert not target.exists()
    page.close()


def test_a_calibrated_profile_upload_is_used_and_named(server, browser, tmp_path):
    """The committed H200 profile uploaded in the sidebar: the sidebar and the page name
    it; a raw-measurement file (not a profile) is refused inline first."""
    profile = ROOT / "hardware_profiles" / "calibrated" / "h200-2026-11-25.json"
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/")
    _settle(page)
    page.get_by_text("Calibrated GPU profile (kvplan calibrate)").click()
    uploader = page.get_by_label(
        "Profile from kvplan calibrate --gpu NAME --out FILE", exact=True
    ).get_by_test_id("stFileUploaderDropzoneInput")
    bad = tmp_path / "raw.json"
    bad.write_text('{"format": "kvplan-calibrate-raw", "measurements": []}')
    uploader.set_input_files(str(bad))
    error = page.locator('[data-testid="stAlertContentError"]')
    error.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "not a kvplan calibrated GPU profile" in error.first.inner_text()
    uploader.set_input_files(str(profile))
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    success.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "calibrated h200 (NVIDIA H200" in success.first.inner_text()
    _settle(page)
    _no_errors(page)
    main = page.locator('[data-testid="stMain"]')
    assert "Kernel curves on h200: calibrated h200 (NVIDIA H200" in main.inner_text()
    page.close()
