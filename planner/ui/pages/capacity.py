"""Capacity: memory per GPU, whether the model fits, and how many sequences fit."""

from __future__ import annotations

import streamlit as st

from planner.report.figures import memory_figure
from planner.ui.common import capacity_rows, table, timed
from planner.ui.state import current_config
from planner.units import format_tokens

config = current_config()
st.title("Capacity")
st.caption(
    f"Per GPU, {config.gpus_per_replica} GPUs per replica, context "
    f"{format_tokens(config.context_tokens)} tokens; the decode batch is as many "
    "sequences as fit (up to max_num_seqs 256)."
)
with timed("capacity"):
    rows = capacity_rows(config)
    columns = st.columns(min(len(rows), 4))
    for i, row in enumerate(rows):
        col = columns[i % len(columns)]
        label = f"{row['model']} on {row['gpu']}"
        if "weights_gib" in row:
            col.metric(
                label,
                f"{row['max_concurrent_sequences']:,} sequences",
                "fits" if row["fits"] else "does not fit",
                delta_color="normal" if row["fits"] else "inverse",
            )
        else:
            col.metric(label, "—", "does not fit", delta_color="inverse")
            col.caption(row["note"])
    if any("weights_gib" in r for r in rows):
        st.plotly_chart(memory_figure(rows), width="stretch")
    table(
        rows,
        "capacity",
        columns={
            "weights_gib": st.column_config.NumberColumn("weights (GiB)", format="%.2f"),
            "kv_gib": st.column_config.NumberColumn("KV (GiB)", format="%.2f"),
            "activation_gib": st.column_config.NumberColumn("activations (GiB)", format="%.2f"),
            "reserved_gib": st.column_config.NumberColumn("reserved (GiB)", format="%.2f"),
            "free_gib": st.column_config.NumberColumn("free (GiB)", format="%.2f"),
            "total_gib": st.column_config.NumberColumn("total (GiB)", format="%.2f"),
            "decode_step_ms": st.column_config.NumberColumn("decode step (ms)", format="%.2f"),
            "decode_tokens_per_s": st.column_config.NumberColumn(
                "decode tokens/s per replica", format="%.0f"
            ),
        },
    )
