"""Compare: models side by side at one context, with replicas and cost for the traffic."""

from __future__ import annotations

import streamlit as st

from planner.errors import KvplanError
from planner.report.figures import compare_figure
from planner.ui.common import compare_rows, grid, plural, table, timed
from planner.ui.state import current_config
from planner.units import format_bytes, format_tokens

CARDS_PER_ROW = 2

config = current_config()
st.title("Compare models")
st.caption(
    f"At {format_tokens(config.context_tokens)} tokens of context; replicas and cost "
    f"for the traffic on {config.gpus_per_replica} x {config.gpus[0]} per replica. "
    "* = beyond the model's maximum context (computed hypothetically)."
)
with timed("compare"):
    try:
        rows = compare_rows(config)
    except KvplanError as err:
        st.error(str(err))
        st.stop()
    first = rows[0]["model"] if rows else ""
    for i, (col, row) in enumerate(zip(grid(len(rows), CARDS_PER_ROW), rows, strict=True)):
        ratio = row["kv_ratio_vs_first"]
        col.metric(
            row["model"] + (" *" if row["beyond_max_context"] else "") + ": KV per sequence",
            format_bytes(row["kv_bytes_per_sequence"] + row["state_bytes_per_sequence"]),
            "the reference" if i == 0 else f"{100 * (ratio or 0):.1f}% of {first}'s",
            delta_color="gray",
            delta_arrow="off",
            border=True,
        )
        col.caption(
            f"{row['decode_flops_per_token'] / 1e9:,.1f} GFLOP/token, weights "
            f"{format_bytes(row['weight_bytes'])}"
            + (
                f"; {plural(row['replicas'], 'replica')}, ${row['usd_per_month']:,.0f}/month"
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
