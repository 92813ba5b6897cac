"""Capacity: memory per GPU, whether the model fits, and how many sequences fit."""

from __future__ import annotations

import streamlit as st

from planner.errors import KvplanError
from planner.report.figures import memory_figure
from planner.ui.common import capacity_rows, grid, plural, table, timed
from planner.ui.state import current_config
from planner.units import format_tokens

CARDS_PER_ROW = 2

config = current_config()
st.title("Capacity")
st.caption(
    f"Per GPU, {plural(config.gpus_per_replica, 'GPU')} per replica (with attention TP on "
    "auto, each model's best layout for the traffic, named under its card), context "
    f"{format_tokens(config.context_tokens)} tokens; the decode batch is as many "
    "sequences as fit (up to the engine's max_num_seqs)."
)
with timed("capacity"):
    try:
        rows = capacity_rows(config)
    except KvplanError as err:
        st.error(str(err))
        st.stop()
    for col, row in zip(grid(len(rows), CARDS_PER_ROW), rows, strict=True):
        label = f"{row['model']} on {row['gpu']}"
        if "weights_gib" in row:
            fits = row["fits"]
            col.metric(
                label,
                f"{row['max_concurrent_sequences']:,}",
                "sequences, fits" if fits else "does not fit",
                delta_color="green" if fits else "red",
                delta_arrow="off",
                border=True,
                help="most sequences of this context one replica holds at once",
            )
            col.caption(f"layout: {row['layout']}")
        else:
            col.metric(
                label, "—", "does not fit", delta_color="red", delta_arrow="off", border=True
            )
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
