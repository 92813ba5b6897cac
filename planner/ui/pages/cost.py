"""Cost: $ per million tokens per GPU type, the monthly bill, and API list prices."""

from __future__ import annotations

import streamlit as st

from planner.report.figures import cost_figure
from planner.ui.common import api_rows, cost_rows, table, timed
from planner.ui.state import current_config

config = current_config()
st.title("Cost")
st.caption(
    f"Traffic: {config.requests_per_s:g} requests/s, {config.mean_input_tokens:,} prompt and "
    f"{config.mean_output_tokens:,} output tokens per request (reasoning mix included), TPOT "
    f"SLO {config.tpot_slo_ms:g} ms. $ per million tokens are for this traffic (prompts of "
    "the mean length, decoding at the mean context), not the sidebar's context. GPU prices "
    "are estimates per GPU-hour (hardware_profiles/); API prices are third-party quotes "
    "that disagree."
)
with timed("cost"):
    rows = cost_rows(config)
    api = api_rows(config)
    priced = [r for r in rows if r.get("usd_per_month") is not None]
    columns = st.columns(max(min(len(priced), 4), 1))
    for i, row in enumerate(priced):
        columns[i % len(columns)].metric(
            f"{row['model']} on {row['gpu']}",
            f"${row['usd_per_month']:,.0f}/month",
            f"{row['replicas']} replicas, {row['gpus_total']} GPUs",
            delta_color="off",
        )
    for row in rows:
        if row.get("note"):
            st.warning(f"{row['model']} on {row['gpu']}: {row['note']}")
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
        },
    )
    st.subheader("API list prices (for the same traffic)")
    if api:
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
