"""URL-parameter fuzzing: whatever a link carries, the sidebar gets in-range widget values
and one warning line per bad parameter, and every page renders without an exception.

Bounded and derandomized under CI (tests/conftest.py): the pure check draws 400 links, the
rendering check 10 (each a full script run of a page).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from planner.hardware import gpu_names
from planner.model.catalog import catalog_names
from planner.report.views import REASONING_MODES
from planner.ui.state import (
    CONTEXT_OPTIONS,
    ENGINE_OPTIONS,
    GPU_COUNT_OPTIONS,
    HIT_RANGE,
    KV_OPTIONS,
    PRICE_RANGE,
    RATE_RANGE,
    SIDEBAR_PARAMS,
    TOKEN_RANGE,
    TPOT_RANGE_MS,
    TTFT_PERCENTILES,
    TTFT_RANGE_S,
    url_state,
)

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("capacity", "frontier", "cost", "compare", "simulate", "search", "migration")

HOSTILE = [
    "", " ", "0", "-1", "1", "3", "8", "auto", "nan", "inf", "-inf", "1e400", "1e-400",
    "9" * 400, "1K", "128K", "1M", "1T", "2**31", "0x10", "1,2", "200,0,0", "0,0,0",
    "50,40,10", "-5,50,55", "1.5,2,3", "h200:2.5", "h200:-1", "h200:nan", "nope:1",
    "h200:1,b200:1e9", "vllm", "sglang", "tgi", "fp8", "fp4", "model default",
    "deepseek-v4-flash", "deepseek-v3.2,nope", ",,,", "../../../etc/passwd", "%00", "\x00",
    "\u00e9\u4e2d", "x" * 300, "True", "None", "[1]", "{}", "view", "example", "upload",
    "chat-shared-prompt.yaml", "exact", "fast", "3600", "3601",
]  # fmt: skip
PHASE_LINKS = [
    '[{"kind":"stand_up","at_h":0.5},{"kind":"cutover","class":"chat","at_h":1}]',
    '[{"kind":"cutover","class":"nope","at_h":1e9}]', '[{"kind":[1]}]', '[{"at_h":"x"}]',
    "[" * 5000, '[{"kind":"decommission","at_h":-1}]', "[]", "{}", '[{"kind":null}]',
]  # fmt: skip
values = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(PHASE_LINKS),
    st.sampled_from(["Example", "Upload scenario YAML", "migration-quick.yaml", "hybrid"]),
    st.integers(-(10**6), 10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=40),
    st.lists(st.sampled_from([*catalog_names(), *gpu_names(), "x"]), max_size=4).map(",".join),
)
SIMULATE_PARAMS = ("sim_src", "sim_ex", "sim_mode", "sim_seed", "sim_for")
MIGRATION_PARAMS = ("mig_source", "mig_example", "mig_mode", "mig_rate", "mig_phases")
PAGE_PARAMS = (*SIMULATE_PARAMS, *MIGRATION_PARAMS)
keys = st.one_of(st.sampled_from([*SIDEBAR_PARAMS, *PAGE_PARAMS]), st.text(max_size=8))
links = st.dictionaries(keys, values, max_size=8)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _within(value: object, bounds: tuple[float, float]) -> bool:
    return isinstance(value, int | float) and bounds[0] <= value <= bounds[1]


@settings(max_examples=400, deadline=None)
@given(links)
def test_any_link_gives_in_range_widgets_and_one_line_per_problem(query):
    check_link(query)


def check_link(query: dict[str, str]) -> None:
    """The sidebar state a link gives is in range, with one line per bad parameter
    (AssertionError otherwise); also run by the fuzz campaign (benchmarks/fuzz.py)."""
    state, problems = url_state(query)
    assert state["w_models"] and set(state["w_models"]) <= set(catalog_names())
    assert state["w_gpus"] and set(state["w_gpus"]) <= set(gpu_names())
    assert state["w_n"] in GPU_COUNT_OPTIONS
    for key in ("w_tp", "w_ep"):
        assert state[key] in ["auto", *_divisors(state["w_n"])]
    assert state["w_engine"] in ENGINE_OPTIONS
    assert state["w_kv"] in KV_OPTIONS
    assert state["w_ctx"] in CONTEXT_OPTIONS
    assert _within(state["w_rps"], RATE_RANGE)
    assert isinstance(state["w_in"], int) and _within(state["w_in"], TOKEN_RANGE)
    assert isinstance(state["w_ans"], int) and _within(state["w_ans"], TOKEN_RANGE)
    assert isinstance(state["w_hit"], int) and _within(state["w_hit"], HIT_RANGE)
    assert _within(state["w_slo"], TPOT_RANGE_MS)
    assert _within(state["w_ttft"], TTFT_RANGE_S)
    assert state["w_ttftp"] in TTFT_PERCENTILES
    shares = [state[f"w_mix_{m}"] for m in REASONING_MODES]
    assert all(isinstance(s, int) and 0 <= s <= 100 for s in shares) and sum(shares) > 0
    for gpu, usd in state.get("_prices", {}).items():
        assert gpu in gpu_names() and _within(usd, PRICE_RANGE)
    # One line per bad parameter, naming it; parameters the sidebar does not own are
    # left to the pages.
    named = [p.split("link parameter ", 1)[1] for p in problems]
    assert all(p.startswith("link parameter ") for p in problems)
    assert all("\n" not in p and len(p) < 400 for p in problems)
    assert len(problems) <= len([k for k in query if k in SIDEBAR_PARAMS])
    assert all(any(n.startswith(k) for k in query) for n in named)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(links, st.sampled_from(PAGES))
def test_every_page_renders_whatever_the_link(query, page):
    check_page(query, page)


def check_page(query: dict[str, str], page: str, timeout_s: float = 180) -> None:
    """The page renders without an exception and with one-line link warnings."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout_s)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page != "capacity":
        at.switch_page(str(ROOT / "planner" / "ui" / "pages" / f"{page}.py")).run()
    assert not at.exception, at.exception
    for warning in at.sidebar.warning:
        assert warning.value.startswith("link parameter ") and "\n" not in warning.value
    for warning in at.warning:
        if warning.value.startswith("link parameter "):
            assert "\n" not in warning.value and len(warning.value) < 400
