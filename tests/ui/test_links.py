"""Shared links: a link carries every sidebar setting (and the Cost page's $/GPU-hour) and
gives the same answer; every bad parameter is ignored with one warning line naming it, on
every page, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.report import views
from planner.report.views import ViewConfig
from planner.ui.state import link_params, url_state

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ("capacity", "frontier", "cost", "compare", "simulate")

# Every setting away from its default.
LINK = {
    "models": "deepseek-v3.2,deepseek-v4-pro,deepseek-v4-flash",
    "gpus": "h200,b200",
    "n": "8",
    "tp": "2",
    "ep": "4",
    "engine": "sglang",
    "kv": "fp8",
    "ctx": "256K",
    "rps": "3.5",
    "in": "32768",
    "ans": "1024",
    "mix": "20,30,50",
    "hit": "40",
    "slo": "40",
    "ttft": "3",
    "ttftp": "99",
    "price": "h200:2.5",
}
# The same view written out by hand.
EXPECTED = ViewConfig(
    models=("deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash"),
    gpus=("h200", "b200"),
    gpus_per_replica=8,
    tensor_parallel=2,
    expert_parallel=4,
    engine="sglang",
    kv_dtype="fp8",
    context_tokens=262_144,
    requests_per_s=3.5,
    input_tokens=32_768,
    answer_tokens=1024,
    reasoning_mix=(0.2, 0.3, 0.5),
    prefix_hit_ratio=0.4,
    tpot_slo_ms=40.0,
    ttft_slo_s=3.0,
    ttft_percentile=0.99,
    gpu_prices=(("h200", 2.5),),
)


def open_link(query: dict[str, str], page: str = "capacity") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page != "capacity":
        at.switch_page(str(ROOT / "planner" / "ui" / "pages" / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


def test_a_link_carries_every_setting_and_the_same_answer():
    at = open_link(LINK, "cost")
    assert [w.value for w in at.sidebar.warning] == []
    config = at.session_state["view_config"]
    assert config == EXPECTED
    # The link the page writes back is the one it was opened with.
    assert {k: at.query_params[k] for k in LINK} == LINK
    # Attention TP, expert parallel and the price change the answer, and the page shows the
    # answer for them, not for the defaults.
    shown = [m.value for m in at.metric if m.label == "self-hosted, per month"]
    rows = views.cost_rows(EXPECTED)
    assert shown == [
        "—" if r.get("usd_per_month") is None else f"${r['usd_per_month']:,.0f}" for r in rows
    ]
    default_layout = views.cost_rows(
        ViewConfig(**{**EXPECTED.__dict__, "tensor_parallel": None, "expert_parallel": None})
    )
    assert [r.get("usd_per_month") for r in rows] != [
        r.get("usd_per_month") for r in default_layout
    ]
    h200 = next(r for r in rows if r["gpu"] == "h200" and r.get("usd_per_gpu_hour"))
    assert h200["usd_per_gpu_hour"] == 2.5


def test_link_params_and_url_state_are_inverse():
    widgets = {
        "w_tp": 2,
        "w_ep": 4,
        "w_kv": "fp8",
        "w_hit": 40,
        "w_ttftp": 99,
        "w_mix_non-think": 20,
        "w_mix_think-high": 30,
        "w_mix_think-max": 50,
    }
    params = link_params(EXPECTED, widgets)
    assert params == LINK
    state, problems = url_state(params)
    assert problems == []
    assert state["w_models"] == list(EXPECTED.models)
    assert (state["w_tp"], state["w_ep"], state["w_engine"]) == (2, 4, "sglang")
    assert state["_prices"] == {"h200": 2.5}


BAD = {
    "mix": "200,0,0",
    "ctx": "9" * 400,
    "rps": "-3",
    "in": "1e400",
    "ans": "nan",
    "n": "3",
    "tp": "3",
    "ep": "auto,2",
    "engine": "tgi",
    "kv": "fp4",
    "hit": "100",
    "slo": "inf",
    "ttft": "0",
    "ttftp": "42",
    "price": "h200:-1",
}


@pytest.mark.parametrize("key", sorted(BAD))
def test_each_bad_parameter_gets_one_line_naming_it(key):
    state, problems = url_state({key: BAD[key]})
    assert len(problems) == 1
    assert problems[0].startswith(f"link parameter {key}=")
    assert "\n" not in problems[0] and len(problems[0]) < 300
    # The view keeps its default for that setting.
    default_state, _ = url_state({})
    assert state == default_state


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_every_bad_parameter(page):
    at = open_link({**BAD, "models": "deepseek-v4-flash,nope"}, page)
    warnings = [w.value for w in at.sidebar.warning]
    assert len(warnings) == len(BAD) + 1
    for key in BAD:
        assert sum(w.startswith(f"link parameter {key}=") for w in warnings) == 1
    assert at.session_state["view_config"].models == ("deepseek-v4-flash",)


def test_an_uploaded_model_is_named_in_the_link_and_warned_about():
    at = open_link({"models": "deepseek-v4-flash", "uploaded": "my-model"})
    warnings = [w.value for w in at.sidebar.warning]
    assert len(warnings) == 1
    assert warnings[0].startswith("link parameter uploaded") and "my-model" in warnings[0]
