"""Run a migration: plan the windows, simulate them (on Dask or in this process), merge
the hourly timeline, and summarise it.

The two fleets share no state: a request's fleet depends only on the phase schedule and its
own random draw, never on how busy a fleet is. So each fleet is simulated on its own, and a
fleet's timeline may be split into windows of ``simulation.window_h`` hours, each started
``lead_h`` early so its caches and queues are warm when it starts reporting. The windows are
fixed by the scenario (not by the number of workers), and every request's draws come from
streams keyed by (class, hour), so the same seed gives the same timeline in one process or
on any Dask cluster (``planner.parallel.map_tasks``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.migrate.autoscale import Demand, Sizer
from planner.migrate.demand import hour_demand, rate_per_s
from planner.migrate.hybrid import fill_steady_hours, simulated_spans
from planner.migrate.prices import api_price, api_usd, fleet_spec, usd_per_gpu_hour
from planner.migrate.schema import (
    SECONDS_PER_HOUR,
    AutoscaleReplicas,
    MigrationScenario,
    SizedReplicas,
)
from planner.migrate.simulate import (
    ROW_KINDS,
    WindowResult,
    WindowTask,
    build_deployed,
    simulate_window,
)
from planner.migrate.summary import summarize
from planner.migrate.timeline import FLEETS, SOURCE, TARGET, policy_spans
from planner.migrate.traffic import FleetView
from planner.parallel import map_tasks


# --------------------------------------------------------------------------- planning
def active_hours(s: MigrationScenario, fleet: str) -> tuple[int, int]:
    """[first, last) hours in which the fleet has replicas (is billed)."""
    end = math.ceil(s.duration_h)
    if fleet == TARGET:
        return math.floor(s.stand_up_h), end
    decommission = s.decommission_h
    if decommission is None:
        return 0, end
    # Draining after decommission can bill into the next hour.
    return 0, min(end, math.ceil(decommission) + 1)


def windows_of(s: MigrationScenario, first: int, last: int) -> list[tuple[int, int]]:
    size = s.simulation.window_h
    if size <= 0:
        return [(first, last)]
    step = max(1, round(size))
    return [(a, min(a + step, last)) for a in range(first, last, step)]


def first_demand(s: MigrationScenario, fleet: str, hour: int) -> Demand | None:
    """The fleet's expected open-loop demand in an hour (no prefix hits assumed)."""
    view = FleetView(s, fleet, 1 << 40)
    demand = hour_demand(s, view, hour)
    if demand.total_requests == 0:
        return None
    mean_in, mean_out = demand.means()
    slos = [c.slo for c in s.traffic.classes]
    return Demand(
        rate_per_s(demand),
        mean_in,
        mean_out,
        0.0,
        min(x.tpot_s for x in slos),
        min(x.ttft_s for x in slos),
    )


def sized_count(s: MigrationScenario, fleet: str, sizer: Sizer) -> int | None:
    """The planned count of a 'sized' fleet: its busiest expected hour, sized with the
    policy's assumed hit ratio, times its headroom."""
    policy = fleet_spec(s, fleet).replicas
    if not isinstance(policy, SizedReplicas):
        return None
    first, last = active_hours(s, fleet)
    best = 1
    for hour in range(first, last):
        demand = first_demand(s, fleet, hour)
        if demand is None:
            continue
        demand = Demand(
            demand.requests_per_s,
            demand.mean_input_tokens,
            demand.mean_output_tokens,
            policy.assumed_prefix_hit_ratio,
            demand.tpot_slo_s,
            demand.ttft_slo_s,
        )
        best = max(best, sizer.replicas(demand))
    return math.ceil(best * policy.headroom)


def start_count(s: MigrationScenario, fleet: str, hour: int, sizer: Sizer) -> int:
    """The autoscaler's first guess at a window's start: the planner's count for the hour's
    expected demand, within the policy's bounds (1 for non-autoscaled fleets)."""
    policy = None
    for span in policy_spans(s, fleet):
        if isinstance(span.policy, AutoscaleReplicas):
            policy = span.policy
    if policy is None:
        return 1
    demand = first_demand(s, fleet, hour)
    wanted = (
        policy.min_replicas
        if demand is None
        else sizer.replicas_or(demand, policy.target_utilisation, policy.max_replicas)
    )
    return min(max(wanted, policy.min_replicas), policy.max_replicas)


def window_spans(s: MigrationScenario) -> list[tuple[str, int, int, float]]:
    """(fleet, start_h, end_h, lead_h) of every window a run simulates: each fleet's active
    hours (full), or the stretches around its transients (hybrid); split by window_h."""
    spans = []
    for fleet in FLEETS:
        first, last = active_hours(s, fleet)
        stretches = (
            simulated_spans(s, first, last, fleet)
            if s.simulation.mode == "hybrid"
            else [(first, last)]
        )
        for start, end in stretches:
            for a, b in windows_of(s, start, end):
                # The source served before hour 0: its first window starts warm too (its
                # lead is drawn before the migration). The target starts empty.
                lead = s.simulation.lead_h if a > first or fleet == SOURCE else 0.0
                spans.append((fleet, a, b, lead))
    return spans


def plan_tasks(s: MigrationScenario) -> list[WindowTask]:
    """The simulation windows of a run, both fleets."""
    tasks = []
    sizers = {fleet: Sizer(build_deployed(s, fleet)) for fleet in FLEETS}
    sized = {fleet: sized_count(s, fleet, sizers[fleet]) for fleet in FLEETS}
    for fleet, a, b, lead_h in window_spans(s):
        tasks.append(
            WindowTask(
                scenario=s,
                fleet=fleet,
                start_h=a,
                end_h=b,
                lead_s=lead_h * SECONDS_PER_HOUR,
                replicas_at_start=start_count(
                    s, fleet, math.floor(a - lead_h) if lead_h else a, sizers[fleet]
                ),
                sized_replicas=sized[fleet],
            )
        )
    return tasks


# --------------------------------------------------------------------------- results
@dataclass
class MigrationResult:
    scenario: MigrationScenario
    fleet_hours: dict[str, list[dict[str, Any]]]
    class_hours: list[dict[str, Any]]
    replicas: dict[str, list[tuple[float, int, int]]]
    minute_cached: dict[tuple[str, int], np.ndarray]
    minute_input: dict[tuple[str, int], np.ndarray]
    decisions: dict[str, list[dict[str, float]]]
    warmups: list[dict[str, Any]]
    stats: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)

    def class_names(self) -> list[str]:
        return [c.name for c in self.scenario.traffic.classes]


def merge(s: MigrationScenario, windows: list[WindowResult], wall_s: float) -> MigrationResult:
    hours = math.ceil(s.duration_h)
    minutes = hours * 60
    n = len(s.traffic.classes)
    names = [c.name for c in s.traffic.classes]
    fleet_hours: dict[str, list[dict[str, Any]]] = {}
    for fleet in FLEETS:
        price = usd_per_gpu_hour(s, fleet)
        gpus = fleet_spec(s, fleet).deployment.gpus_per_replica
        rows = [
            {"hour": h, "gpu_hours": 0.0, "usd": 0.0, "replicas": 0.0, "simulated": False}
            for h in range(hours)
        ]
        for w in windows:
            if w.fleet != fleet:
                continue
            for h, gh in zip(range(w.start_h, w.end_h), w.gpu_hours, strict=True):
                rows[h].update(gpu_hours=gh, usd=gh * price, replicas=gh / gpus, simulated=True)
        fleet_hours[fleet] = rows
    class_hours = []
    prices = {fleet: api_price(s, fleet) for fleet in FLEETS}
    for w in windows:
        for (row, hour), metrics in w.rows.items():
            kind = ROW_KINDS[row // n]
            record = {
                "fleet": w.fleet,
                "class": names[row % n],
                "kind": kind,
                "hour": hour,
                **metrics,
                "prefix_hit_ratio": metrics["cached_tokens"] / metrics["admitted_input_tokens"]
                if metrics["admitted_input_tokens"]
                else None,
                "slo_attainment": metrics["slo_met"] / metrics["slo_decided"]
                if metrics["slo_decided"]
                else None,
                "api_usd": api_usd(metrics, prices[w.fleet]),
                "simulated": True,
            }
            class_hours.append(record)
    class_hours.sort(key=lambda r: (r["fleet"], r["hour"], r["class"], r["kind"]))
    minute_cached: dict[tuple[str, int], np.ndarray] = {}
    minute_input: dict[tuple[str, int], np.ndarray] = {}
    for w in windows:
        offset = w.start_h * 60
        for row, values in w.minute_cached.items():
            key = (w.fleet, row)
            if key not in minute_cached:
                minute_cached[key] = np.zeros(minutes, dtype=np.int64)
                minute_input[key] = np.zeros(minutes, dtype=np.int64)
            minute_cached[key][offset : offset + len(values)] += values
            minute_input[key][offset : offset + len(values)] += w.minute_input[row]
    replicas = {
        fleet: sorted(
            c
            for w in windows
            if w.fleet == fleet
            for c in w.replicas
            if w.start_h * SECONDS_PER_HOUR <= c[0] < w.end_h * SECONDS_PER_HOUR
        )
        for fleet in FLEETS
    }
    decisions = {
        fleet: [
            d
            for w in windows
            if w.fleet == fleet
            for d in w.decisions
            if w.start_h * SECONDS_PER_HOUR <= d["time_s"] < w.end_h * SECONDS_PER_HOUR
        ]
        for fleet in FLEETS
    }
    warmups = [{**wu, "class": names[int(wu["class_index"])]} for w in windows for wu in w.warmups]
    totals = {
        k: sum(w.totals[k] for w in windows)
        for k in ("arrived", "finished", "rejected", "in_flight")
    }
    stats = {
        "windows": len(windows),
        "wall_s": wall_s,
        "window_wall_s": sum(w.wall_s for w in windows),
        "window_cpu_s": sum(w.cpu_s for w in windows),
        "simulated_requests": sum(w.simulated_requests for w in windows),
        "steps": sum(w.steps for w in windows),
        "requests": totals,
    }
    return MigrationResult(
        s,
        fleet_hours,
        class_hours,
        replicas,
        minute_cached,
        minute_input,
        decisions,
        warmups,
        stats,
    )


def run_migration(
    s: MigrationScenario,
    *,
    scheduler: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> MigrationResult:
    """Simulate the migration and summarise it (``scheduler``: see planner.parallel)."""
    started = time.perf_counter()
    tasks = plan_tasks(s)
    windows = map_tasks(simulate_window, tasks, scheduler=scheduler, progress=progress)
    result = merge(s, windows, time.perf_counter() - started)
    if s.simulation.mode == "hybrid":
        sized = {
            fleet: next((t.sized_replicas for t in tasks if t.fleet == fleet), None)
            for fleet in FLEETS
        }
        fill_steady_hours(result, sized)
    result.summary = summarize(result)
    result.stats["wall_s"] = time.perf_counter() - started
    return result
