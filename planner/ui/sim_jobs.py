"""Simulation jobs for the Simulate page: the work that runs in a bounded child process
(:mod:`planner.ui.bounded`) and the plain data it sends back. No Streamlit here.

Before a run starts, :func:`check_size` refuses a scenario whose expected number of
arrivals is beyond what the dashboard simulates (``MAX_ARRIVALS``); the child process then
runs under a time and a memory limit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from planner.errors import KvplanError
from planner.schema import (
    DiurnalArrivals,
    GammaArrivals,
    PiecewiseArrivals,
    PoissonArrivals,
    Scenario,
)
from planner.sim.request import (
    REJECT_QUEUE_TIMEOUT,
    REJECT_TOO_LONG_FOR_KV,
    REJECT_TOO_LONG_FOR_MODEL,
)
from planner.sim.run import Mode, run_scenario

MAX_ARRIVALS = 200_000  # expected open-loop arrivals of one dashboard run
MAX_DURATION_S = 3_600.0  # the Simulate page's "Arrivals for (s)" limit
REJECTION_REASONS = {
    REJECT_QUEUE_TIMEOUT: "waited in the queue longer than queue_timeout_s",
    REJECT_TOO_LONG_FOR_MODEL: "prompt + answer beyond the model's maximum context",
    REJECT_TOO_LONG_FOR_KV: "prompt + answer larger than a replica's whole KV pool",
}


def expected_arrivals(scenario: Scenario) -> float | None:
    """Mean open-loop arrivals of a synthetic scenario (None for a trace replay)."""
    arrival = scenario.workload.arrival
    if isinstance(arrival, PoissonArrivals | GammaArrivals):
        rate = arrival.rate_per_s
    elif isinstance(arrival, DiurnalArrivals):
        rate = arrival.mean_rate_per_s * (1 + arrival.amplitude)
    elif isinstance(arrival, PiecewiseArrivals):
        rate = max(r for _, r in arrival.points)
    else:
        return None
    return rate * scenario.duration_s


def check_size(scenario: Scenario) -> None:
    """Refuse, in one line, a run beyond the dashboard's bounds (before any work)."""
    if scenario.duration_s > MAX_DURATION_S:
        raise KvplanError(
            "is longer than the dashboard simulates; set 'Arrivals for (s)' or use kvplan simulate",
            field="duration_s",
            value=scenario.duration_s,
            expected=f"at most {MAX_DURATION_S:,.0f} s",
        )
    arrivals = expected_arrivals(scenario)
    if arrivals is not None and (not math.isfinite(arrivals) or arrivals > MAX_ARRIVALS):
        raise KvplanError(
            f"about {arrivals:,.0f} arrivals is more than the dashboard simulates; shorten "
            "'Arrivals for (s)' or use kvplan simulate",
            field="duration_s",
            value=scenario.duration_s,
            expected=f"at most {MAX_ARRIVALS:,} arrivals",
        )


def _quantile(values: np.ndarray, q: float) -> float | None:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q)) if finite.size else None


def simulate(
    scenario: Scenario,
    mode: Mode,
    seed: int,
    trace_path: str | None = None,
    ttft_quantile: float = 0.9,
    progress: Any = None,
) -> dict[str, Any]:
    """Run one scenario; the summary, latency arrays and per-request rows as plain data."""
    check_size(scenario)
    result = run_scenario(scenario, mode=mode, seed=seed, trace_path=trace_path, progress=progress)
    arrays = result.arrays
    names = result.workload.class_names
    data = result.to_json()
    return {
        "json": data,
        "replicas": scenario.replicas,
        "gpus_per_replica": scenario.deployment.gpus_per_replica,
        "ttft_s": arrays.ttft_s,
        "tpot_s": arrays.tpot_s,
        "e2e_s": arrays.e2e_s,
        "ttft_at_quantile_s": _quantile(arrays.ttft_s, ttft_quantile),
        "tpot_mean_s": float(np.nanmean(arrays.tpot_s)) if arrays.tpot_s.size else None,
        "rejections": [
            {"reason": reason, "requests": count, "meaning": REJECTION_REASONS.get(reason, "")}
            for reason, count in data.get("rejections_by_reason", {}).items()
        ],
        "requests": [
            {
                "rid": r.rid,
                "class": names[r.class_index] if r.class_index < len(names) else "",
                "arrival_s": r.arrival_s,
                "state": r.state,
                "reject_reason": r.reject_reason,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cached_tokens": r.cached_tokens,
                "ttft_s": r.first_token_s - r.arrival_s,
                "finish_s": r.finish_s,
                "preemptions": r.preemptions,
                "replica": r.replica,
            }
            for r in result.cluster.requests
        ],
    }
