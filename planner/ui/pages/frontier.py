"""Frontier: concurrency vs context for every chosen model and GPU."""

from __future__ import annotations

import streamlit as st

from planner.errors import KvplanError
from planner.report.figures import frontier_figure
from planner.ui.common import frontier_rows, plural, table, timed
from planner.ui.state import current_config

config = current_config()
st.title("Concurrency vs context")
st.caption(
    f"Most sequences one replica of {plural(config.gpus_per_replica, 'GPU')} (with attention "
    "TP on auto, each model's best layout, named below) holds at each "
    "context (paged blocks, fixed per-sequence state included). Hover for exact "
    "numbers; 0 beyond a model's maximum context."
)
with timed("frontier"):
    try:
        rows = frontier_rows(config)
    except KvplanError as err:
        st.error(str(err))
        st.stop()
    layouts = {(r["model"], r["gpu"]): r["layout"] for r in rows}
    for (model, gpu), layout in layouts.items():
        st.caption(f"{model} on {gpu}: layout {layout}")
    st.plotly_chart(frontier_figure(rows), width="stretch")
    not_fitting = sorted({(r["model"], r["gpu"]) for r in rows if not r["fits"]})
    for model, gpu in not_fitting:
        st.warning(f"{model} does not fit on {config.gpus_per_replica} x {gpu}")
    table(
        rows,
        "frontier",
        columns={
            "context_tokens": st.column_config.NumberColumn("context (tokens)", format="%d"),
            "max_concurrent_sequences": st.column_config.NumberColumn(
                "max concurrent sequences", format="%d"
            ),
        },
    )
