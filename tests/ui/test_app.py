"""Dashboard pages under Streamlit's AppTest: no exception, and what is shown equals what
planner computes for the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.report import views
from planner.report.views import ViewConfig
from planner.sim.run import load_scenario, run_scenario
from planner.units import format_bytes

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ROOT / "planner" / "ui" / "pages"
DEFAULT = ViewConfig()


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(str(PAGES / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


def chart_spec(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_defaults_are_v4_flash_vs_v32_on_h200_at_128k(app):
    # First load: V4-Flash vs V3.2 on H200, 128K context (the defaults).
    assert app.session_state["view_config"] == DEFAULT
    assert set(DEFAULT.models) == {"deepseek-v4-flash", "deepseek-v3.2"}
    assert DEFAULT.gpus == ("h200",) and DEFAULT.context_tokens == 131_072


def test_capacity_page_numbers_match_planner(app):
    rows = views.capacity_rows(DEFAULT)
    metrics = {m.label: m.value for m in app.metric}
    for row in rows:
        assert metrics[f"{row['model']} on {row['gpu']}"] == (
            f"{row['max_concurrent_sequences']:,}"
        )
    spec = chart_spec(app)
    weights = next(t for t in spec["data"] if t["name"] == "weights")
    assert weights["x"] == pytest.approx([r["weights_gib"] for r in rows])
    kv = next(t for t in spec["data"] if t["name"] == "kv")
    assert kv["x"] == pytest.approx([r["kv_gib"] for r in rows])


def test_engine_selector_changes_capacity_to_that_engines_numbers(app):
    app.sidebar.selectbox(key="w_engine").set_value("sglang").run()
    assert not app.exception
    config = app.session_state["view_config"]
    assert config.engine == "sglang" and config.deployment().engine == "sglang"
    rows = views.capacity_rows(config)
    assert rows != views.capacity_rows(DEFAULT)  # the engine's layout and admission apply
    metrics = {m.label: m.value for m in app.metric}
    for row in rows:
        label = f"{row['model']} on {row['gpu']}"
        assert metrics[label] == f"{row['max_concurrent_sequences']:,}"


def test_frontier_page_curves_match_planner(app):
    at = goto(app, "frontier")
    rows = views.frontier_rows(DEFAULT)
    spec = chart_spec(at)
    assert len(spec["data"]) == len(DEFAULT.models) * len(DEFAULT.gpus)
    flash = next(t for t in spec["data"] if t["name"] == "deepseek-v4-flash on h200")
    expected = [r["max_concurrent_sequences"] for r in rows if r["model"] == "deepseek-v4-flash"]
    assert flash["y"] == expected
    assert spec["layout"]["xaxis"]["type"] == "log"
    assert max(flash["x"]) == 2**20


def test_cost_page_numbers_match_planner(app):
    at = goto(app, "cost")
    rows = views.cost_rows(DEFAULT)
    api = views.api_rows(DEFAULT)
    shown = [m.value for m in at.metric if m.label == "self-hosted, per month"]
    assert shown == [f"${r['usd_per_month']:,.0f}" for r in rows]
    first_api = {}
    for a in api:
        first_api.setdefault(a["model"], a)
    shown_api = [m.value for m in at.metric if m.label == "API, per month"]
    assert shown_api == [f"${first_api[r['model']]['usd_per_month']:,.0f}" for r in rows]
    spec = chart_spec(at)
    output = next(t for t in spec["data"] if t["name"] == "self-hosted output")
    assert output["y"] == pytest.approx(
        [r["usd_per_million_output_tokens"] for r in rows if r.get("usd_per_million_output_tokens")]
    )


def test_compare_page_numbers_match_planner(app):
    at = goto(app, "compare")
    rows = views.compare_rows(DEFAULT)
    metrics = {m.label: m.value for m in at.metric}
    for row in rows:
        label = row["model"] + (" *" if row["beyond_max_context"] else "") + ": KV per sequence"
        assert metrics[label] == format_bytes(
            row["kv_bytes_per_sequence"] + row["state_bytes_per_sequence"]
        )
    spec = chart_spec(at)
    kv = next(t for t in spec["data"] if t["name"] == "KV cache per sequence")
    assert kv["y"] == pytest.approx([100 * r["kv_ratio_vs_first"] for r in rows])


def test_sidebar_changes_reach_every_page(app):
    # Switch to V4-Pro vs V4-Flash at 1M on B200: the frontier shows those curves.
    app.sidebar.multiselect(key="w_models").set_value(["deepseek-v4-pro", "deepseek-v4-flash"])
    app.sidebar.multiselect(key="w_gpus").set_value(["b200"])
    app.sidebar.select_slider(key="w_ctx").set_value(2**20)
    app.run()
    assert not app.exception
    config = app.session_state["view_config"]
    assert config.models == ("deepseek-v4-pro", "deepseek-v4-flash")
    assert config.context_tokens == 2**20
    rows = views.capacity_rows(config)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["deepseek-v4-pro on b200"] == (f"{rows[0]['max_concurrent_sequences']:,}")
    # The URL carries the view.
    assert app.query_params["models"] == "deepseek-v4-pro,deepseek-v4-flash"
    assert app.query_params["ctx"] == "1M"


def test_url_sets_the_view_and_bad_values_warn():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["models"] = "deepseek-v4-pro,not-a-model"
    at.query_params["ctx"] = "512K"
    at.query_params["rps"] = "-3"
    at.run()
    assert not at.exception
    config = at.session_state["view_config"]
    assert config.models == ("deepseek-v4-pro",)
    assert config.context_tokens == 2**19
    warnings = [w.value for w in at.sidebar.warning]
    assert any("not-a-model" in w and w.startswith("link parameter models") for w in warnings)
    assert any(w.startswith("link parameter rps=") for w in warnings)


def test_simulate_page_runs_a_scenario_and_matches_the_simulator(app):
    at = goto(app, "simulate")
    at.radio(key="sim_source").set_value("Example").run()
    at.selectbox(key="sim_example").set_value("chat-shared-prompt.yaml")
    at.number_input(key="sim_duration").set_value(10.0)
    at.number_input(key="sim_seed").set_value(4)
    at.button(key="sim_run").click().run()
    assert not at.exception
    scenario = load_scenario(ROOT / "scenarios" / "chat-shared-prompt.yaml")
    expected = run_scenario(scenario.model_copy(update={"duration_s": 10.0}), seed=4).summary
    metrics = {m.label: m.value for m in at.metric}
    req = expected["requests"]
    assert metrics["finished / arrived"] == f"{req['finished']:,} / {req['arrived']:,}"
    assert metrics["prefix hit ratio"] == f"{expected['prefix_hit_ratio']:.1%}"
    assert len(at.get("plotly_chart")) == 4
