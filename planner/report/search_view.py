"""What the dashboard's Search page shows: the search for the sidebar's view, its Pareto
figure with the chosen plan marked, and the top-N rows (no Streamlit here)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from planner.report.figures import LAYOUT
from planner.report.search_report import search_report
from planner.report.views import ViewConfig
from planner.search.run import run_search
from planner.search.spec import SearchSpec

MODES = {"both": (False, True), "aggregated": (False,), "disaggregated": (True,)}
TOP_ROWS = 10


def search_spec_for(
    config: ViewConfig,
    gpus_per_replica: tuple[int, ...],
    mtp: tuple[bool, ...] = (False, True),
    mode: str = "both",
    ttft_slo_s: float | None = None,
    ttft_percentile: float = 0.9,
    prefix_hit_ratio: float = 0.0,
) -> SearchSpec:
    """The search the sidebar's view asks: its models, GPU types, engine and traffic
    (mean prompt and output, reasoning mix included), and its SLOs."""
    return SearchSpec.model_validate(
        {
            "models": config.models,
            "gpus": config.gpus,
            "engines": (config.engine,),
            "requests_per_s": config.requests_per_s,
            "input_tokens": config.mean_input_tokens,
            "output_tokens": config.mean_output_tokens,
            "prefix_hit_ratio": prefix_hit_ratio,
            "tpot_slo_s": config.tpot_slo_ms / 1e3,
            "ttft_slo_s": ttft_slo_s,
            "ttft_percentile": ttft_percentile,
            "gpus_per_replica": gpus_per_replica,
            "mtp": mtp,
            "disaggregated": MODES[mode],
            "top": TOP_ROWS,
            "gpu_calibration": config.gpu_calibration,
        }
    )


def search_data(spec: SearchSpec) -> dict[str, Any]:
    """The `kvplan search --json` document for a spec (launch commands included)."""
    return search_report(run_search(spec))


def top_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-N table as flat rows (the CSV export of `kvplan search --csv`)."""
    rows = []
    for rank, c in enumerate(data["top"], start=1):
        rows.append(
            {
                "rank": rank,
                "deployment": c["label"],
                "mode": c["mode"],
                "gpus_total": c["gpus_total"],
                "usd_per_month": c["usd_per_month"],
                "usd_per_million_tokens": c["usd_per_million_tokens"],
                "ttft_at_percentile_s": c["ttft_at_percentile_s"],
                "ttft_mean_s": c["ttft_s"],
                "tpot_ms": c["tpot_s"] * 1e3,
                "output_tokens_per_s_per_gpu": c["output_tokens_per_s_per_gpu"],
            }
        )
    return rows


def search_figure(data: dict[str, Any]) -> go.Figure:
    """Pareto front of output tokens/s per GPU against tokens/s per user, one trace per
    model x GPU x mode; the chosen plan marked with a star at its operating point."""
    fig = go.Figure()
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for p in data["pareto"]:
        groups.setdefault((p["model"], p["gpu"], p["mode"]), []).append(p)
    for (model, gpu, mode), points in groups.items():
        points = sorted(points, key=lambda p: p["tokens_per_s_per_user"])
        fig.add_scatter(
            name=f"{model} on {gpu} ({mode})",
            x=[p["tokens_per_s_per_user"] for p in points],
            y=[p["tokens_per_s_per_gpu"] for p in points],
            mode="lines+markers",
            text=[f"{p['label']}, batch {p['batch']:,}" for p in points],
            hovertemplate="%{text}<br>%{x:,.1f} tokens/s per user<br>"
            "%{y:,.0f} tokens/s per GPU<extra></extra>",
        )
    best = data["best"]
    fig.add_scatter(
        name="chosen plan",
        x=[best["output_tokens_per_s_per_user"]],
        y=[best["output_tokens_per_s_per_gpu"]],
        mode="markers",
        marker={"symbol": "star", "size": 18, "color": "crimson"},
        text=[best["label"]],
        hovertemplate="%{text}<br>%{x:,.1f} tokens/s per user<br>"
        "%{y:,.0f} tokens/s per GPU<extra>chosen</extra>",
    )
    tpot_limit = 1.0 / data["slo"]["tpot_s"]
    fig.add_vline(
        x=tpot_limit,
        line_dash="dot",
        annotation_text=f"TPOT SLO {data['slo']['tpot_s'] * 1e3:g} ms",
    )
    fig.update_layout(
        title="Pareto front: throughput per GPU vs speed per user",
        xaxis_title="output tokens/s per user",
        yaxis_title="output tokens/s per GPU",
        xaxis_type="log",
        yaxis_type="log",
        **LAYOUT,
    )
    return fig
