"""The dashboard's Search page under AppTest: the chosen plan it draws and lists is the
search's answer for the sidebar's view (the same numbers as `kvplan search --json`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.report.search_view import search_data, search_spec_for
from planner.report.views import ViewConfig

ROOT = Path(__file__).resolve().parents[2]


def test_search_page_shows_the_searched_best():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["s_gpus"] = [8]  # a small space keeps the test quick
    at.run()
    at.switch_page(str(ROOT / "planner" / "ui" / "pages" / "search.py"))
    at.run()
    assert not at.exception, at.exception
    config = at.session_state["view_config"]
    assert isinstance(config, ViewConfig)
    data = search_data(search_spec_for(config, (8,)))
    best = data["best"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["USD per month"] == f"${best['usd_per_month']:,.0f}"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star = next(t for t in spec["data"] if t["name"] == "chosen plan")
    assert star["x"][0] == pytest.approx(best["output_tokens_per_s_per_user"])
    assert star["y"][0] == pytest.approx(best["output_tokens_per_s_per_gpu"])
    assert any("vllm serve" in c.value for c in at.code)
