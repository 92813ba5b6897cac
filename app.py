"""kvplan dashboard (placeholder until the dashboard issue): the V3.2 vs V4 comparison."""

from __future__ import annotations

import streamlit as st

from planner import load_model
from planner.report.compare import compare_models
from planner.units import format_bytes

st.set_page_config(page_title="kvplan", layout="wide")
st.title("kvplan — KV-cache capacity planner")
context_tokens = st.select_slider(
    "Context length (tokens)", options=[2**k for k in range(12, 21)], value=2**17
)
names = ["deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash"]
result = compare_models([load_model(n) for n in names], int(context_tokens))
st.table(
    [
        {
            "model": r["name"],
            "KV per sequence": format_bytes(r["kv_bytes_per_sequence"]),
            "KV vs first": f"{r['kv_ratio_vs_first']:.1%}",
            "decode GFLOP/token": f"{r['decode_flops_per_token'] / 1e9:,.1f}",
            "beyond max context": r["beyond_max_context"],
        }
        for r in result["models"]
    ]
)
