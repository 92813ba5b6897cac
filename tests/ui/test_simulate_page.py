"""The Simulate page: results stay labelled with their inputs, a failed run clears them,
rejection reasons are shown in words, examples whose files are missing are not offered,
"Simulate this view" keeps the view and shows the plan beside the simulation; heavy work
stops at its time and memory limits with one line."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from small_view import SMALL_VIEW
from streamlit.testing.v1 import AppTest

from planner.errors import KvplanError
from planner.schema import Scenario
from planner.ui import sim_jobs
from planner.ui.bounded import WorkStopped, run_bounded
from planner.ui.pages.simulate import example_files

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
SIMULATE = str(ROOT / "planner" / "ui" / "pages" / "simulate.py")


def simulate_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page(SIMULATE).run()
    assert not at.exception
    return at


def run_example(at: AppTest, seconds: float = 10.0) -> AppTest:
    at.radio(key="sim_source").set_value("Example").run()
    at.selectbox(key="sim_example").set_value("chat-shared-prompt.yaml")
    at.number_input(key="sim_duration").set_value(seconds)
    at.button(key="sim_run").click().run()
    assert not at.exception
    return at


def test_results_are_labelled_when_the_inputs_change():
    at = run_example(simulate_page())
    assert not [w.value for w in at.warning if "earlier inputs" in w.value]
    at.number_input(key="sim_seed").set_value(7).run()
    stale = [w.value for w in at.warning if "earlier inputs" in w.value]
    assert len(stale) == 1 and "chat-shared-prompt" in stale[0]


def test_a_failed_run_clears_the_results(monkeypatch):
    at = run_example(simulate_page())
    assert at.session_state["sim_result"] is not None
    monkeypatch.setattr(sim_jobs, "MAX_ARRIVALS", 10)  # checked before the run starts
    at.number_input(key="sim_duration").set_value(20.0)
    at.button(key="sim_run").click().run()
    assert not at.exception
    assert "sim_result" not in at.session_state
    assert any("more than the dashboard simulates" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 0


def test_rejections_are_listed_with_their_reasons():
    # Prompts of 2M tokens are beyond V4-Flash's 1M context: every request is rejected.
    scenario = Scenario.model_validate(
        {
            "name": "too-long",
            "model": "deepseek-v4-flash",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 4},
            "duration_s": 5,
            "workload": {
                "arrival": {"kind": "poisson", "rate_per_s": 2},
                "classes": [
                    {
                        "name": "c",
                        "share": 1,
                        "input_tokens": {"kind": "constant", "value": 2**21},
                        "output_tokens": {"kind": "constant", "value": 10},
                        "slo": {"ttft_s": 2, "tpot_s": 0.1},
                    }
                ],
            },
        }
    )
    result = sim_jobs.simulate(scenario, "fast", 0)
    arrived = result["json"]["requests"]["arrived"]
    assert arrived > 0
    assert result["rejections"] == [
        {
            "reason": "exceeds_max_context",
            "requests": arrived,
            "meaning": "prompt + answer beyond the model's maximum context",
        }
    ]
    # The page shows them as a table.
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.session_state["sim_result"] = {
        "inputs": "",
        "labels": ["too-long"],
        "descriptions": ["too-long"],
        "results": [result],
        "plan": [],
        "percentile": 90,
    }
    at.switch_page(SIMULATE).run()
    assert not at.exception
    assert "Rejected requests" in [h.value for h in at.subheader]
    assert any("exceeds_max_context" in str(t.value) for t in at.dataframe)


def test_examples_missing_their_files_are_not_offered():
    # mooncake-replay.yaml replays ../../shared/traces/... relative to scenarios/: the
    # development material beside the repository, absent from a clean clone.
    runnable, missing = example_files()
    trace = ROOT / "scenarios" / "../../shared/traces/mooncake_synthetic_trace.jsonl"
    present = trace.resolve().is_file()
    assert ("mooncake-replay.yaml" in runnable) == present
    if not present:
        assert any(line.startswith("mooncake-replay.yaml needs") for line in missing)
    assert "chat-shared-prompt.yaml" in runnable


def test_simulate_this_view_keeps_the_view_and_shows_the_plan():
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in SMALL_VIEW.items():
        at.query_params[key] = value
    at.run()
    before = at.session_state["view_config"]
    at.sidebar.button(key="simulate_view").click().run()
    assert not at.exception
    assert at.session_state["view_config"] == before
    assert "Plan vs simulation" in [h.value for h in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    plan = at.dataframe[0].value
    assert int(metrics["replicas"]) == int(plan["planned_replicas"][0])


def _sleep_then_return(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _fail() -> None:
    raise KvplanError("bad input", field="x", value=1)


def _progress_then_return(progress: object = None) -> str:
    for f in (0.25, 0.5, 1.0):
        progress(f)  # type: ignore[operator]
    return "done"


def test_bounded_work_stops_at_its_time_limit():
    start = time.monotonic()
    with pytest.raises(WorkStopped, match="stopped at its 1 s time limit"):
        run_bounded(_sleep_then_return, 30.0, time_limit_s=1.0, what="the test work")
    assert time.monotonic() - start < 10
    assert run_bounded(_sleep_then_return, 0.0, time_limit_s=30.0, what="w") == 0.0


def test_bounded_work_stops_at_its_memory_limit():
    with pytest.raises(WorkStopped, match="memory limit"):
        run_bounded(np.ones, 2**31, time_limit_s=30.0, what="w", memory_limit_bytes=2**30 * 3)


def test_bounded_work_passes_errors_and_progress_through():
    with pytest.raises(KvplanError, match="bad input") as err:
        run_bounded(_fail, time_limit_s=30.0, what="w")
    assert not isinstance(err.value, WorkStopped)
    seen: list[float] = []
    assert run_bounded(_progress_then_return, time_limit_s=30.0, what="w", progress=seen.append)
    assert seen == sorted(seen) and all(0 < f <= 1 for f in seen)


def test_a_link_carries_the_simulate_settings():
    at = AppTest.from_file(APP, default_timeout=180)
    link = {
        "sim_src": "example",
        "sim_ex": "chat-shared-prompt.yaml",
        "sim_mode": "exact",
        "sim_seed": "42",
        "sim_for": "30",
    }
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(SIMULATE).run()
    assert not at.exception and not at.warning
    assert at.radio(key="sim_source").value == "Example"
    assert at.selectbox(key="sim_example").value == "chat-shared-prompt.yaml"
    assert at.selectbox(key="sim_mode").value == "exact"
    assert at.number_input(key="sim_seed").value == 42
    assert at.number_input(key="sim_duration").value == 30.0
    assert {k: at.query_params[k] for k in link} == link


def test_bad_simulate_link_parameters_warn_once_each():
    at = AppTest.from_file(APP, default_timeout=180)
    bad = {"sim_src": "ftp", "sim_ex": "../../x.yaml", "sim_mode": "slow", "sim_seed": "-1"}
    bad["sim_for"] = "1e30"
    for key, value in bad.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(SIMULATE).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    for key in bad:
        assert sum(w.startswith(f"link parameter {key}=") for w in warnings) == 1
    assert at.number_input(key="sim_duration").value == 0.0
