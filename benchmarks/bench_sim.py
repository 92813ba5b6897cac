"""Simulator speed: the Mooncake synthetic trace on 8 replicas, fast vs exact mode.

Run: python benchmarks/bench_sim.py [--time-scale 1.0] [--skip-exact]
Prints simulated requests per wall-second in each mode, their ratio, and whether the two
modes gave the same metrics (aim: whole trace in fast mode under 10 s on one core, at least
10x faster than exact). Needs ../shared/traces/mooncake_synthetic_trace.jsonl.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from planner.schema import Scenario
from planner.sim.run import SimResult, run_scenario

TRACE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "traces"
    / "mooncake_synthetic_trace.jsonl"
)
TRACE_SPAN_S = 1023.0  # last timestamp of the trace is 1,022,025 ms


def scenario(time_scale: float) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench-mooncake",
            "model": "deepseek-v4-flash",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 4},
            "replicas": 8,
            "router": "prefix_affinity",
            "duration_s": TRACE_SPAN_S * time_scale,
            "drain_s": 60,
            "block_tokens": 512,
            "workload": {"trace": {"path": str(TRACE.resolve()), "time_scale": time_scale}},
        }
    )


def same_metrics(a: SimResult, b: SimResult) -> bool:
    def close(x: object, y: object) -> bool:
        if isinstance(x, dict) and isinstance(y, dict):
            return all(close(x[k], y[k]) for k in x)
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9)
        return x == y

    keys = (
        "requests",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "prefix_hit_ratio",
        "preemptions",
        "goodput",
        "rejections_by_reason",
    )
    return all(close(a.summary[k], b.summary[k]) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--skip-exact", action="store_true")
    args = parser.parse_args()
    if not TRACE.exists():
        sys.exit(f"trace not found: {TRACE} (the shared folder must sit beside the repo)")
    s = scenario(args.time_scale)
    fast = run_scenario(s, mode="fast")
    n = fast.summary["requests"]["arrived"]
    fast_s = fast.summary["sim_wall_time_s"]
    print(
        f"trace: {n:,} requests over {s.duration_s:,.0f} s simulated + {s.drain_s:.0f} s drain, "
        f"8 replicas of 4 x H200, DeepSeek-V4-Flash"
    )
    print(
        f"fast : {fast_s:6.2f} s wall, {n / fast_s:8,.0f} requests/wall-s, "
        f"{fast.summary['steps']:,} steps in {fast.summary['scheduler_events']:,} events"
    )
    if args.skip_exact:
        return
    exact = run_scenario(s, mode="exact")
    exact_s = exact.summary["sim_wall_time_s"]
    print(
        f"exact: {exact_s:6.2f} s wall, {n / exact_s:8,.0f} requests/wall-s, "
        f"{exact.summary['steps']:,} steps in {exact.summary['scheduler_events']:,} events"
    )
    print(
        f"speed-up fast/exact: {exact_s / fast_s:.1f}x; identical metrics: "
        f"{same_metrics(fast, exact)}"
    )


if __name__ == "__main__":
    main()
