"""The Migration page: runs the quick example and shows what `kvplan migrate` computes."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from planner.migrate.load import load_migration
from planner.migrate.run import run_migration

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "planner" / "ui" / "pages" / "migration.py")


def test_migration_page_matches_the_command_line():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="mig_example").value == "migration-quick.yaml"
    at.button(key="mig_run").click().run()
    assert not at.exception, at.exception
    s = load_migration(ROOT / "scenarios" / "migration-quick.yaml")
    expected = run_migration(s, scheduler="serial").summary
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["migration extra ($)"] == f"${expected['migration']['extra_usd']:,.0f}"
    assert metrics["steady after ($/day)"] == (f"${expected['steady_after']['usd_per_day']:,.0f}")
    charts = at.get("plotly_chart")
    assert len(charts) == 4
    gpus = json.loads(charts[0].proto.spec)
    source = next(t for t in gpus["data"] if t["name"] == "source GPUs")
    assert source["y"][0] == 8.0  # one V3.2 replica of 8 GPUs in hour 0
    assert at.query_params["mig_example"] == "migration-quick.yaml"


def test_the_view_comes_back_from_the_url():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["mig_rate"] = "0.2"
    at.query_params["mig_mode"] = "hybrid"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.number_input(key="mig_rate").value == 0.2
    assert at.selectbox(key="mig_mode").value == "hybrid"
    # The sidebar writes its own parameters and leaves the page's alone.
    assert at.query_params["mig_rate"] == "0.2" and "models" in at.query_params


def test_bad_link_parameters_are_ignored_with_a_warning():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["mig_rate"] = "-3"
    at.query_params["mig_mode"] = "fastest"
    at.query_params["mig_phases"] = "[1, 2]"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    for key in ("mig_rate='-3'", "mig_mode='fastest'", "mig_phases="):
        assert key in warnings
    # The quick example's own values stand.
    quick = load_migration(ROOT / "scenarios" / "migration-quick.yaml")
    assert at.number_input(key="mig_rate").value == quick.traffic.rate_per_s
    assert at.selectbox(key="mig_mode").value == quick.simulation.mode
    assert json.loads(at.query_params["mig_phases"])[0]["kind"] == quick.phases[0].kind


def test_a_deeply_nested_phases_link_is_a_warning_not_a_recursion_error():
    # Fuzz finding: mig_phases of 5,000 '[' raised RecursionError in json.loads on the page.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["mig_phases"] = "[" * 5000
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning if w.value.startswith("link parameter mig_phases")]
    assert "\n" not in warning and warning.endswith(
        "expected a JSON list of at most 1000 phase objects"
    )
