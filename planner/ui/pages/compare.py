"""Compare: models side by side at one context, with replicas and cost for the traffic."""

from __future__ import annotations

import streamlit as st

from planner.report.figures import compare_figure
from planner.ui.common import compare_rows, table, timed
from planner.ui.state import current_config
from planner.units import format_bytes, format_tokens

config = current_config()
st.title("Compare models")
st.caption(
    f"At {format_tokens(config.context_tokens)} tokens of context; replicas and cost "
    f"for the traffic on {config.gpus[0]} x {config.gpus_per_replica}. "
    "* = beyond the model's maximum context (computed hypothetically)."
)
with timed("compare"):
    rows = compare_rows(config)
    columns = st.columns(max(min(len(rows), 4), 1))
    for i, row in enumerate(rows):
        col = columns[i % len(columns)]
        col.metric(
            row["model"] + (" *" if row["beyond_max_context"] else ""),
            format_bytes(row["kv_bytes_per_sequence"] + row["state_bytes_per_sequence"]),
            f"{100 * (row['kv_ratio_vs_first'] or 0):.1f}% KV of the first",
            delta_color="off",
        )
        col.caption(
            f"{row['decode_flops_per_token'] / 1e9:,.1f} GFLOP/token, weights "
            f"{format_bytes(row['weight_bytes'])}"
            + (
                f"; {row['replicas']} replicas, ${row['usd_per_month']:,.0f}/month"
                if row["replicas"]
                else f"; {row['note']}"
            )
        )
    st.plotly_chart(compare_figure(rows), width="stretch")
    table(
        rows,
        "compare",
        columns={
            "decode_flops_per_token": st.column_config.NumberColumn(
                "decode FLOPs per token", format="%.3e"
            ),
            "usd_per_month": st.column_config.NumberColumn("USD per month", format="%.0f"),
        },
    )
