"""Cost: the monthly bill self-hosted and through the API side by side (with an editable
$/GPU-hour per GPU), $ per million tokens, and API list prices with their sources."""

from __future__ import annotations

from typing import Any

import streamlit as st

from planner.errors import KvplanError
from planner.report.figures import cost_figure
from planner.ui.common import api_rows, cost_rows, grid, plural, table, timed
from planner.ui.state import current_config, price_input

PAIRS_PER_ROW = 1  # a pair's two figures side by side, full width: nothing cut off

config = current_config()
st.title("Cost")
st.caption(
    f"Traffic: {config.requests_per_s:g} requests/s, {config.mean_input_tokens:,} prompt and "
    f"{config.mean_output_tokens:,} output tokens per request (reasoning mix included), "
    f"{config.prefix_hit_ratio:.0%} of prompt tokens from the prefix cache; TPOT SLO "
    f"{config.tpot_slo_ms:g} ms, TTFT SLO {config.ttft_slo_s:g} s at "
    f"p{config.ttft_percentile * 100:g}. $ per million tokens are for this traffic (prompts "
    "of the mean length, decoding at the mean context), not the sidebar's context."
)
price_columns = st.columns(4)
for i, gpu in enumerate(config.gpus):
    price_input(gpu, price_columns[i % len(price_columns)])
with timed("cost"):
    try:
        rows = cost_rows(config)
        api = api_rows(config)
    except KvplanError as err:
        st.error(str(err))
        st.stop()
    first_api: dict[str, dict[str, Any]] = {}
    for a in api:
        if a["usd_per_month"] is not None:
            first_api.setdefault(a["model"], a)
    for cell, row in zip(grid(len(rows), PAIRS_PER_ROW), rows, strict=True):
        with cell.container(border=True):
            st.markdown(f"**{row['model']}** on **{row['gpu']}**")
            if row.get("layout"):
                st.caption(f"layout: {row['layout']}")
            self_col, api_col = st.columns(2)
            if row.get("usd_per_month") is not None:
                self_col.metric(
                    "self-hosted, per month",
                    f"${row['usd_per_month']:,.0f}",
                    f"{plural(row['replicas'], 'replica')}, {plural(row['gpus_total'], 'GPU')}",
                    delta_color="gray",
                    delta_arrow="off",
                )
            else:
                self_col.metric("self-hosted, per month", "—")
                self_col.caption(row.get("note", ""))
            listed = first_api.get(row["model"])
            if listed is not None:
                api_col.metric(
                    "API, per month",
                    f"${listed['usd_per_month']:,.0f}",
                    help=listed["source"],
                )
                api_col.caption(f"{listed['label']} list price")
            else:
                api_col.metric("API, per month", "—")
                api_col.caption("no API list price on file")
            if row.get("usd_per_month") is not None:
                st.caption(
                    f"At ${row['usd_per_gpu_hour']:.2f}/GPU-hour. "
                    f"Plan at this load: TTFT p{config.ttft_percentile * 100:g} "
                    f"{row['planned_ttft_at_percentile_s']:.2f} s, TPOT "
                    f"{row['planned_tpot_ms']:.1f} ms; ${row['usd_per_month_low']:,.0f}-"
                    f"${row['usd_per_month_high']:,.0f}/month over the price range."
                )
    priced = [r for r in rows if r.get("usd_per_million_output_tokens") is not None]
    if priced or api:
        st.plotly_chart(cost_figure(rows, api), width="stretch")
    st.subheader("Self-hosted")
    money = {
        k: st.column_config.NumberColumn(k.replace("_", " "), format="%.4f")
        for k in (
            "usd_per_million_input_tokens",
            "usd_per_million_output_tokens",
            "usd_per_million_cached_input_tokens",
        )
    }
    table(
        rows,
        "cost",
        columns={
            **money,
            "usd_per_month": st.column_config.NumberColumn("USD per month", format="%.0f"),
            "usd_per_month_low": st.column_config.NumberColumn(
                "USD per month (low)", format="%.0f"
            ),
            "usd_per_month_high": st.column_config.NumberColumn(
                "USD per month (high)", format="%.0f"
            ),
            "planned_ttft_s": st.column_config.NumberColumn("TTFT mean (s)", format="%.3f"),
            "planned_ttft_at_percentile_s": st.column_config.NumberColumn(
                f"TTFT p{config.ttft_percentile * 100:g} (s)", format="%.3f"
            ),
            "planned_tpot_ms": st.column_config.NumberColumn("TPOT (ms)", format="%.1f"),
        },
    )
    st.subheader("API list prices (for the same traffic)")
    if api:
        st.caption(
            "The headline uses each model's first price below: the provider's current list "
            "price on file. Each price names its source and date; check the provider's page "
            "before relying on one."
        )
        table(
            api,
            "api_prices",
            columns={
                **money,
                "usd_per_month": st.column_config.NumberColumn("USD per month", format="%.0f"),
            },
        )
    else:
        st.info("No API list price on file for the chosen models.")
