"""Plotly figures for the dashboard, built from the rows in ``planner.report.views``.

Figures only draw: every number in them comes from the rows they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from planner.report.views import MEMORY_PARTS
from planner.units import format_tokens

MEMORY_COLORS = {
    "weights": "#4C78A8",
    "kv": "#F58518",
    "activation": "#54A24B",
    "reserved": "#B279A2",
    "free": "#BAB0AC",
}
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def _label(row: dict[str, Any]) -> str:
    return f"{row['model']} on {row['gpu']}"


def memory_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Stacked per-GPU memory (GiB) for every (model, GPU) that fits."""
    shown = [r for r in rows if "weights_gib" in r]
    fig = go.Figure()
    for part in MEMORY_PARTS:
        fig.add_bar(
            name=part,
            orientation="h",
            y=[_label(r) for r in shown],
            x=[r[f"{part}_gib"] for r in shown],
            marker_color=MEMORY_COLORS[part],
            hovertemplate="%{y}<br>" + part + ": %{x:,.2f} GiB<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        title="Memory per GPU at the chosen context",
        xaxis_title="GiB per GPU",
        **LAYOUT,
    )
    return fig


def frontier_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Max concurrent sequences vs context (log x), one line per (model, GPU)."""
    fig = go.Figure()
    keys = list(dict.fromkeys((r["model"], r["gpu"]) for r in rows))
    for model, gpu in keys:
        pts = [r for r in rows if r["model"] == model and r["gpu"] == gpu]
        fig.add_scatter(
            x=[p["context_tokens"] for p in pts],
            y=[p["max_concurrent_sequences"] for p in pts],
            mode="lines",
            name=f"{model} on {gpu}",
            customdata=[format_tokens(p["context_tokens"]) for p in pts],
            hovertemplate="%{fullData.name}<br>context %{x:,} tokens (%{customdata})"
            "<br>%{y:,} sequences<extra></extra>",
        )
    fig.update_layout(title="Concurrency vs context (per replica)", **LAYOUT)
    fig.update_xaxes(
        type="log",
        title="context (tokens)",
        tickvals=[2**k for k in range(10, 21, 2)],
        ticktext=[format_tokens(2**k) for k in range(10, 21, 2)],
    )
    fig.update_yaxes(type="log", title="max concurrent sequences", dtick=1, tickformat=",d")
    return fig


def cost_figure(rows: list[dict[str, Any]], api: list[dict[str, Any]]) -> go.Figure:
    """$ per million input / output / cached-input tokens, self-hosted and API list."""
    fig = go.Figure()
    priced = [r for r in rows if r.get("usd_per_million_output_tokens") is not None]
    kinds = (
        ("input", "usd_per_million_input_tokens"),
        ("output", "usd_per_million_output_tokens"),
        ("cached input", "usd_per_million_cached_input_tokens"),
    )
    for label, key in kinds:
        fig.add_bar(
            name=f"self-hosted {label}",
            x=[_label(r) for r in priced],
            y=[r[key] for r in priced],
            hovertemplate="%{x}<br>$%{y:,.4f} per million " + label + " tokens<extra></extra>",
        )
    for label, key in kinds:
        listed = [a for a in api if a[key] is not None]
        fig.add_bar(
            name=f"API list {label}",
            x=[f"{a['model']} API ({a['label']})" for a in listed],
            y=[a[key] for a in listed],
            marker_pattern_shape="/",
            hovertemplate="%{x}<br>$%{y:,.4f} per million " + label + " tokens<extra></extra>",
        )
    fig.update_layout(
        barmode="group",
        title="USD per million tokens",
        yaxis_title="USD per million tokens",
        **LAYOUT,
    )
    return fig


def compare_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """KV per sequence and decode FLOPs per token relative to the first model (%)."""
    fig = go.Figure()
    names = [r["model"] + (" *" if r["beyond_max_context"] else "") for r in rows]
    fig.add_bar(
        name="KV cache per sequence",
        x=names,
        y=[100 * (r["kv_ratio_vs_first"] or 0) for r in rows],
        hovertemplate="%{x}<br>KV %{y:.1f}% of the first model<extra></extra>",
    )
    fig.add_bar(
        name="decode FLOPs per token",
        x=names,
        y=[100 * (r["flops_ratio_vs_first"] or 0) for r in rows],
        hovertemplate="%{x}<br>FLOPs %{y:.1f}% of the first model<extra></extra>",
    )
    fig.update_layout(
        barmode="group",
        title="Relative to the first model (%)",
        yaxis_title="% of first model",
        **LAYOUT,
    )
    return fig


def histogram_figure(values: np.ndarray, title: str, unit: str) -> go.Figure:
    fig = go.Figure(
        go.Histogram(
            x=values[~np.isnan(values)],
            nbinsx=60,
            hovertemplate="%{x}<br>%{y} requests<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="requests", **LAYOUT)
    return fig


def timeseries_figure(series: dict[str, list[float] | list[int]]) -> go.Figure:
    """KV utilisation (left axis, %) and queued requests (right axis) over time."""
    fig = go.Figure()
    fig.add_scatter(
        x=series["time_s"],
        y=[100 * u for u in series["kv_utilization"]],
        name="KV blocks in use (%)",
        mode="lines",
    )
    fig.add_scatter(
        x=series["time_s"], y=series["queued"], name="queued requests", mode="lines", yaxis="y2"
    )
    fig.update_layout(
        title="KV utilisation and queue over time",
        xaxis_title="time (s)",
        yaxis={"title": "KV in use (%)", "range": [0, 100]},
        yaxis2={"title": "queued requests", "overlaying": "y", "side": "right"},
        **LAYOUT,
    )
    return fig


def goodput_figure(per_class: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[c["name"] for c in per_class],
            y=[100 * (c["goodput"] or 0) for c in per_class],
            hovertemplate="%{x}<br>%{y:.1f}% within SLO<extra></extra>",
        )
    )
    fig.update_layout(
        title="Goodput per class (% of requests within SLO)",
        yaxis={"title": "%", "range": [0, 100]},
        **LAYOUT,
    )
    return fig
