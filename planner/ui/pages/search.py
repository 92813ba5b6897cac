"""Search: the cheapest deployment for the sidebar's traffic and SLOs over every layout,
the Pareto front with the chosen plan, the top deployments and the launch command."""

from __future__ import annotations

from typing import Any

import streamlit as st

from planner.errors import KvplanError
from planner.report.search_view import search_data, search_figure, search_spec_for, top_rows
from planner.search.spec import DEFAULT_GPU_COUNTS, SearchSpec
from planner.ui.bounded import run_bounded
from planner.ui.common import PAGE_TIME_LIMIT_S, table, timed
from planner.ui.state import current_config


@st.cache_data(show_spinner=False, max_entries=16, hash_funcs={SearchSpec: repr})
def _search(spec: SearchSpec) -> dict[str, Any]:
    # In a child process with a time and memory limit (planner.ui.bounded).
    return run_bounded(search_data, spec, time_limit_s=PAGE_TIME_LIMIT_S, what="the search")


# Replica sizes searched when the page opens (up to two nodes): the wider space of
# `kvplan search` takes longer than a page should.
PAGE_GPU_COUNTS = (1, 2, 4, 8, 16)
config = current_config()
st.title("Deployment search")
st.caption(
    f"Every layout of {', '.join(config.models)} on {', '.join(config.gpus)} "
    f"({config.engine}): GPUs per replica, attention TP / data-parallel attention, expert "
    "parallelism, MTP, micro-batch overlap, EPLB, all-gather or DeepEP MoE dispatch, "
    "aggregated or disaggregated "
    f"prefill/decode, sized for {config.requests_per_s:g} requests/s of "
    f"{config.mean_input_tokens:,} prompt and {config.mean_output_tokens:,} output tokens "
    f"with a {config.tpot_slo_ms:g} ms TPOT SLO, by the same planner as `kvplan search`."
)
left, middle, right = st.columns(3)
if "s_gpus" not in st.session_state:
    st.session_state["s_gpus"] = list(PAGE_GPU_COUNTS)
gpu_counts = left.multiselect("GPUs per replica", list(DEFAULT_GPU_COUNTS), key="s_gpus")
mtp_choice = middle.selectbox("MTP", ["both", "on", "off"], key="s_mtp")
mode = right.selectbox("Prefill / decode", ["both", "aggregated", "disaggregated"], key="s_mode")
if not gpu_counts:
    st.error("Pick at least one replica size")
    st.stop()
mtp = {"both": (False, True), "on": (True,), "off": (False,)}[mtp_choice]
with timed("search"), st.spinner("searching layouts"):
    try:
        spec = search_spec_for(config, tuple(sorted(gpu_counts)), mtp, mode)
        data = _search(spec)
    except KvplanError as err:
        st.error(str(err))
        st.stop()
    best = data["best"]
    slo = data["slo"]
    st.subheader("Cheapest deployment meeting the SLOs")
    st.markdown(f"**{best['label']}**")
    cards = st.columns(4)
    cards[0].metric(
        "USD per month",
        f"${best['usd_per_month']:,.0f}",
        f"{best['gpus_total']:,} GPUs",
        delta_color="off",
        delta_arrow="off",
    )
    cards[1].metric("USD per million tokens", f"${best['usd_per_million_tokens']:.4f}")
    cards[2].metric(
        f"TTFT p{slo['ttft_percentile'] * 100:g} at this load",
        f"{best['ttft_at_percentile_s']:,.3f} s",
        f"mean {best['ttft_s']:,.3f} s",
        delta_color="off",
        delta_arrow="off",
    )
    cards[3].metric("TPOT at this load", f"{best['tpot_s'] * 1e3:,.1f} ms")
    st.plotly_chart(search_figure(data), width="stretch")
    st.subheader("Top deployments")
    table(top_rows(data), "search_top")
    st.subheader("Launch command")
    st.caption(
        "One replica of each pool; run each command on its node, once per replica "
        "(HEAD_IP: the replica's first node)."
    )
    st.code(best["launch"]["script"], language="bash")
    st.download_button(
        "Download launch script",
        best["launch"]["script"],
        file_name="kvplan-launch.sh",
        mime="text/x-shellscript",
        key="launch_script",
    )
    ev = data["evaluated"]
    st.caption(f"{ev['layouts']:,} layouts, {ev['deployments']:,} deployments evaluated")
