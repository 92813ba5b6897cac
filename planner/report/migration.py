"""Migration results as tables and exports, shared by `kvplan migrate` and the dashboard
(so a number on screen equals the one in the JSON)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from planner.migrate.hybrid import fleet_hit_ratio
from planner.migrate.run import MigrationResult
from planner.migrate.schema import (
    Cutover,
    Decommission,
    MigrationScenario,
    RollbackReserve,
    Shadow,
    StandUp,
)
from planner.migrate.timeline import FLEETS, SOURCE, TARGET, target_share

CSV_COLUMNS = (
    "fleet",
    "class",
    "kind",
    "hour",
    "simulated",
    "arrived",
    "finished",
    "rejected",
    "in_flight",
    "input_tokens",
    "admitted_input_tokens",
    "cached_tokens",
    "output_tokens",
    "prefix_hit_ratio",
    "ttft_p50_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "slo_attainment",
    "api_usd",
    "gpu_hours",
    "replicas",
    "usd",
)


def phase_label(s: MigrationScenario, hour: int) -> str:
    """What is going on during an hour (phases active at its middle)."""
    t_h = hour + 0.5
    parts = []
    for p in s.phases:
        if isinstance(p, StandUp) and p.at_h <= t_h < p.at_h + 1:
            parts.append("stand-up")
        elif isinstance(p, Shadow) and p.at_h <= t_h < p.at_h + p.duration_h:
            parts.append(f"shadow {p.share_percent:g}%")
        elif isinstance(p, Cutover) and p.at_h <= t_h < p.at_h + max(p.ramp_h, 1.0):
            share = float(target_share(s, p.class_name, t_h * 3600))
            parts.append(f"cut-over {p.class_name} {share:.0%}")
        elif (
            isinstance(p, RollbackReserve)
            and p.at_h <= t_h
            and (s.decommission_h is None or t_h < s.decommission_h)
        ):
            parts.append(f"reserve {p.replicas}")
        elif isinstance(p, Decommission) and p.at_h <= t_h < p.at_h + 1:
            parts.append("decommission")
    return ", ".join(parts)


def timeline_rows(r: MigrationResult) -> list[dict[str, Any]]:
    """One row per hour: both fleets' replicas, $, requests, hit ratio, worst TTFT p99 and
    SLO attainment over production traffic."""
    by_hour: dict[int, list[dict[str, Any]]] = {}
    for x in r.class_hours:
        if x["kind"] == "production":
            by_hour.setdefault(x["hour"], []).append(x)
    rows = []
    for h in range(len(r.fleet_hours[SOURCE])):
        prod = by_hour.get(h, [])
        met = sum(x["slo_met"] for x in prod)
        decided = sum(x["slo_decided"] for x in prod)
        ttft = [x["ttft_p99_s"] for x in prod if x["ttft_p99_s"] is not None]
        row: dict[str, Any] = {"hour": h, "phase": phase_label(r.scenario, h)}
        for fleet in FLEETS:
            f = r.fleet_hours[fleet][h]
            row[f"{fleet}_replicas"] = f["replicas"]
            row[f"{fleet}_usd"] = f["usd"]
            row[f"{fleet}_requests"] = sum(x["arrived"] for x in prod if x["fleet"] == fleet)
            row[f"{fleet}_hit_ratio"] = fleet_hit_ratio(r, fleet, h)
        row["usd"] = row["source_usd"] + row["target_usd"]
        row["ttft_p99_s_worst_class"] = max(ttft) if ttft else None
        row["slo_attainment"] = met / decided if decided else None
        row["simulated"] = (
            r.fleet_hours[SOURCE][h]["simulated"] or r.fleet_hours[TARGET][h]["simulated"]
        )
        rows.append(row)
    return rows


def replica_steps(r: MigrationResult, fleet: str) -> tuple[list[float], list[int]]:
    """Billed replicas of a fleet as a step function: (hours, counts) at every change."""
    times: list[float] = [0.0]
    counts: list[int] = [0]
    for t, billed, _ in r.replicas[fleet]:
        times.append(t / 3600)
        counts.append(billed)
    times.append(float(len(r.fleet_hours[fleet])))
    counts.append(counts[-1])
    return times, counts


def hit_ratio_minutes(
    r: MigrationResult, fleet: str, class_index: int, bucket_min: int = 10
) -> tuple[list[float], list[float | None]]:
    """A class's production prefix hit ratio on a fleet in buckets of minutes."""
    cached = r.minute_cached.get((fleet, class_index))
    inputs = r.minute_input.get((fleet, class_index))
    if cached is None or inputs is None:
        return [], []
    n = len(cached) // bucket_min
    c = cached[: n * bucket_min].reshape(n, bucket_min).sum(axis=1)
    i = inputs[: n * bucket_min].reshape(n, bucket_min).sum(axis=1)
    hours = ((np.arange(n) + 0.5) * bucket_min / 60).tolist()
    ratio = [float(a / b) if b else None for a, b in zip(c.tolist(), i.tolist(), strict=True)]
    return hours, ratio


def to_json(r: MigrationResult) -> dict[str, Any]:
    """Everything a run produced, JSON-ready (no NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    names = r.class_names()
    data: dict[str, Any] = clean(
        {
            "scenario": r.scenario.name,
            "mode": r.scenario.simulation.mode,
            "scenario_doc": r.scenario.model_dump(mode="json", by_alias=True),
            "gpus_per_replica": {
                f: (
                    r.scenario.fleets.source if f == SOURCE else r.scenario.fleets.target
                ).deployment.gpus_per_replica
                for f in FLEETS
            },
            "hit_ratio_10min": [
                {"fleet": f, "class": names[c], "hours": h, "hit_ratio": v}
                for f in FLEETS
                for c in range(len(names))
                for h, v in [hit_ratio_minutes(r, f, c)]
                if h
            ],
            "summary": r.summary,
            "timeline": timeline_rows(r),
            "fleet_hours": r.fleet_hours,
            "class_hours": r.class_hours,
            "replicas": {
                f: [{"time_s": t, "billed": b, "serving": s} for t, b, s in r.replicas[f]]
                for f in FLEETS
            },
            "autoscaler": r.decisions,
            "warmups": r.warmups,
            "stats": r.stats,
        }
    )
    return data


def csv_text(r: MigrationResult) -> str:
    """Hourly rows per fleet, class and kind, then one 'fleet' row per fleet and hour."""
    return csv_from_json({"class_hours": r.class_hours, "fleet_hours": r.fleet_hours})


# --------------------------------------------------------------------------- figures
FLEET_COLORS = {SOURCE: "#4C78A8", TARGET: "#F58518"}
PHASE_COLORS = {
    "stand_up": "rgba(84,162,75,0.15)",
    "shadow": "rgba(178,121,162,0.15)",
    "cutover": "rgba(245,133,24,0.18)",
    "rollback_reserve": "rgba(186,176,172,0.25)",
    "decommission": "rgba(228,87,86,0.2)",
}
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def phase_bands(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """(start_h, end_h, kind, label) of every phase, for shading a timeline."""
    end = float(doc["duration_h"])
    delay_h = float(doc["fleets"]["target"].get("provisioning_delay_s", 600.0)) / 3600
    decommission = next((p["at_h"] for p in doc["phases"] if p["kind"] == "decommission"), None)
    bands = []
    for p in doc["phases"]:
        kind, at = p["kind"], float(p["at_h"])
        if kind == "stand_up":
            stop, label = at + max(delay_h, 0.25), "stand-up"
        elif kind == "shadow":
            stop, label = at + float(p["duration_h"]), f"shadow {p['share_percent']:g}%"
        elif kind == "cutover":
            stop, label = at + max(float(p.get("ramp_h", 0.0)), 0.25), f"cut-over {p['class']}"
        elif kind == "rollback_reserve":
            span = p.get("duration_h")
            stop = at + float(span) if span else (decommission or end)
            label = f"reserve {p['replicas']}"
        else:
            stop, label = at + 0.25, "decommission"
        bands.append({"start_h": at, "end_h": min(stop, end), "kind": kind, "label": label})
    return bands


def _with_bands(fig: go.Figure, data: dict[str, Any], title: str, y_title: str) -> go.Figure:
    for band in phase_bands(data["scenario_doc"]):
        fig.add_vrect(
            x0=band["start_h"],
            x1=band["end_h"],
            fillcolor=PHASE_COLORS[band["kind"]],
            line_width=0,
            layer="below",
            annotation_text=band["label"],
            annotation_position="top left",
            annotation_font_size=10,
        )
    fig.update_layout(title=title, xaxis_title="hour", yaxis_title=y_title, **LAYOUT)
    return fig


def gpus_figure(data: dict[str, Any]) -> go.Figure:
    """GPUs billed per fleet, hour by hour (mean over the hour)."""
    fig = go.Figure()
    for fleet in FLEETS:
        rows = data["fleet_hours"][fleet]
        gpus = data["gpus_per_replica"][fleet]
        fig.add_scatter(
            name=f"{fleet} GPUs",
            x=[r["hour"] + 0.5 for r in rows],
            y=[r["replicas"] * gpus for r in rows],
            mode="lines",
            line={"shape": "hvh", "color": FLEET_COLORS[fleet]},
        )
    return _with_bands(fig, data, "GPUs per fleet", "GPUs")


def cost_figure(data: dict[str, Any]) -> go.Figure:
    """Self-hosted $ per hour, stacked by fleet."""
    fig = go.Figure()
    for fleet in FLEETS:
        rows = data["fleet_hours"][fleet]
        fig.add_bar(
            name=f"{fleet} $/h",
            x=[r["hour"] + 0.5 for r in rows],
            y=[r["usd"] for r in rows],
            marker_color=FLEET_COLORS[fleet],
        )
    fig.update_layout(barmode="stack")
    return _with_bands(fig, data, "Self-hosted cost", "$ per hour")


def hit_ratio_figure(data: dict[str, Any]) -> go.Figure:
    """Each class's prefix hit ratio on each fleet, 10-minute buckets (simulated hours)."""
    fig = go.Figure()
    for series in data["hit_ratio_10min"]:
        fig.add_scatter(
            name=f"{series['class']} on {series['fleet']}",
            x=series["hours"],
            y=series["hit_ratio"],
            mode="lines",
            line={"dash": "solid" if series["fleet"] == TARGET else "dot"},
            connectgaps=False,
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _with_bands(fig, data, "Prefix hit ratio (token-weighted)", "hit ratio")


def ttft_figure(data: dict[str, Any]) -> go.Figure:
    """TTFT p99 per class and fleet, hour by hour (production traffic)."""
    fig = go.Figure()
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in data["class_hours"]:
        if row["kind"] == "production" and row["ttft_p99_s"] is not None:
            series.setdefault((row["class"], row["fleet"]), []).append(row)
    for (cls, fleet), rows in sorted(series.items()):
        fig.add_scatter(
            name=f"{cls} on {fleet}",
            x=[r["hour"] + 0.5 for r in rows],
            y=[r["ttft_p99_s"] for r in rows],
            mode="lines+markers",
            line={"dash": "solid" if fleet == TARGET else "dot"},
        )
    fig.update_yaxes(type="log")
    return _with_bands(fig, data, "TTFT p99 per class", "seconds")


def csv_from_json(data: dict[str, Any]) -> str:
    """The same CSV as ``csv_text``, from a result's JSON (a saved run)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in data["class_hours"]:
        writer.writerow(row)
    for fleet in FLEETS:
        for f in data["fleet_hours"][fleet]:
            writer.writerow({"fleet": fleet, "class": "", "kind": "fleet", **f})
    return out.getvalue()


def _percent(ratio: Any) -> float | None:
    return None if ratio is None else round(100 * float(ratio), 1)


def _rounded(value: Any, digits: int = 0) -> float | None:
    return None if value is None else round(float(value), digits)


def cutover_screen_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's cut-overs in the screen's words, rounded as the CLI prints them
    (percentages to 0.1, dollars to the dollar, bill ratios to 0.01)."""
    rows = []
    for c in data["summary"]["cutovers"]:
        rewarm_h = c.get("rewarm_h")
        rows.append(
            {
                "class": c["class"],
                "cut-over at (h)": c["at_h"],
                "ramp (h)": c["ramp_h"],
                "hit % before (source)": _percent(c.get("source_hit_ratio_before")),
                "hit % first 10 min (target)": _percent(c.get("target_hit_ratio_first_10_min")),
                "hit % steady (target)": _percent(c.get("target_hit_ratio_steady")),
                "re-warm (min)": None if rewarm_h is None else round(60 * rewarm_h, 1),
                "API bill x, first 10 min": _rounded(c.get("api_bill_ratio_first_10_min"), 2),
                "API bill x, first hour": _rounded(c.get("api_bill_ratio_first_hour"), 2),
                "API bill x, first day": _rounded(c.get("api_bill_ratio_first_day"), 2),
                "API extra ($)": _rounded(c.get("api_extra_usd")),
                "target $/hour, peak": _rounded(c.get("target_usd_per_hour_peak")),
                "target $/hour, steady": _rounded(c.get("target_usd_per_hour_steady")),
                "replicas during re-warm": c.get("target_replicas_rewarm"),
                "replicas after": c.get("target_replicas_after"),
                "SLO met %, cut-over hour": _percent(c.get("slo_attainment_cutover_hour")),
                "SLO met %, settled": _percent(c.get("slo_attainment_settled")),
            }
        )
    return rows


def day_screen_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Cost per day in the screen's words, whole dollars."""
    return [
        {
            "day": d["day"],
            "hours": d["hours"],
            "source fleet ($)": _rounded(d["source_usd"]),
            "target fleet ($)": _rounded(d["target_usd"]),
            "total ($)": _rounded(d["total_usd"]),
        }
        for d in data["summary"]["days"]
    ]
