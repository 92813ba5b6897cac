"""The hybrid timeline: simulate the transients, extrapolate the steady hours.

Simulated (per fleet): around each cut-over, from the hour before it to ``settle_h`` after
its ramp; the first ``settle_h`` hours of each shadow phase on the target. Every other
hour of a fleet is *steady*: its class mix is one the simulation has already seen settle.
A steady hour is filled from a *reference* hour: the nearest simulated hour of the same
fleet, class and kind with the same share of the class on the fleet, at least
``REFERENCE_AFTER_H`` after any cut-over ramp of that fleet ended (so the cache is warm):

- its open-loop requests and their tokens are the hour's own (the traffic draws, exact);
- follow-up turns, prompt and output tokens per request, the prefix hit ratio, rejections,
  latency percentiles and SLO attainment are the reference's, scaled to the hour's
  requests (the steady state of the same mix, measured);
- GPU-hours follow the fleet's policy: fixed and sized counts as given, an autoscaled
  fleet at what the planner wants for the hour's demand (``Sizer``, the same sizing the
  simulated autoscaler runs each interval).

``benchmarks/bench_migrate.py --agreement`` and ``tests/migrate/test_hybrid.py`` compare it
with a full simulation of a shortened scenario (hourly $ within 5%, hit ratio within 2
points).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from planner.migrate.autoscale import Demand, Sizer
from planner.migrate.prices import api_price, api_usd, usd_per_gpu_hour
from planner.migrate.schema import SECONDS_PER_HOUR, AutoscaleReplicas, MigrationScenario, Shadow
from planner.migrate.simulate import ROW_KINDS, build_deployed
from planner.migrate.timeline import (
    FLEETS,
    SOURCE,
    TARGET,
    fixed_count,
    policy_spans,
    target_share,
)
from planner.migrate.traffic import FleetView, draw_block

if TYPE_CHECKING:
    from planner.migrate.run import MigrationResult

REFERENCE_AFTER_H = 1.0
SHARE_TOLERANCE = 1e-6
SCALED_FIELDS = (
    "finished",
    "rejected",
    "in_flight",
    "input_tokens",
    "admitted_input_tokens",
    "cached_tokens",
    "output_tokens",
    "slo_met",
    "slo_decided",
)


def simulated_spans(
    s: MigrationScenario, first: int, last: int, fleet: str
) -> list[tuple[int, int]]:
    """Hours [a, b) of a fleet the hybrid simulates (merged, within [first, last))."""
    spans = []
    settle = s.simulation.settle_h
    for cut in s.cutovers:
        a = math.floor(cut.at_h) - 1
        b = math.ceil(cut.at_h + cut.ramp_h + settle)
        spans.append((a, b))
    if fleet == TARGET:
        for p in s.phases:
            if isinstance(p, Shadow):
                spans.append((math.floor(p.at_h), math.ceil(p.at_h + min(p.duration_h, settle))))
    spans = sorted((max(a, first), min(b, last)) for a, b in spans)
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _share(s: MigrationScenario, fleet: str, cls: str, kind: str, hour: int) -> float:
    t = (hour + 0.5) * SECONDS_PER_HOUR
    to_target = float(target_share(s, cls, t))
    if kind == "mirrored":
        return 1.0
    return to_target if fleet == TARGET else 1.0 - to_target


def _settled(s: MigrationScenario, hour: int) -> bool:
    return all(
        not (cut.at_h - 1 <= hour < cut.at_h + cut.ramp_h + REFERENCE_AFTER_H) for cut in s.cutovers
    )


def _open_loop(
    s: MigrationScenario, view: FleetView, hour: int, class_index: int
) -> tuple[int, int]:
    """(production, mirrored) open-loop requests of a class on a fleet in an hour."""
    block = draw_block(s, class_index, hour)
    here, mirrored = view.placement(block)
    return int(here.sum()), int(mirrored.sum())


def _gpu_hours(
    s: MigrationScenario, fleet: str, hour: int, sizer: Sizer, sized: int | None, demand: Demand
) -> float:
    """GPU-hours of a steady hour: the policy spans inside it, autoscaled at the planner's
    count for the hour's demand."""
    gpus = (s.fleets.source if fleet == SOURCE else s.fleets.target).deployment.gpus_per_replica
    start, end = hour * SECONDS_PER_HOUR, (hour + 1) * SECONDS_PER_HOUR
    spans = policy_spans(s, fleet)
    total = 0.0
    for i, span in enumerate(spans):
        a = max(start, span.start_s)
        b = min(end, spans[i + 1].start_s if i + 1 < len(spans) else end)
        if b <= a:
            continue
        policy = span.policy
        if isinstance(policy, AutoscaleReplicas):
            wanted = sizer.replicas_or(demand, policy.target_utilisation, policy.max_replicas)
            count = min(max(wanted, policy.min_replicas), policy.max_replicas)
        else:
            count = fixed_count(policy, sized)
        total += count * (b - a)
    return total * gpus / SECONDS_PER_HOUR


def fill_steady_hours(r: MigrationResult, sized: dict[str, int | None]) -> None:
    """Add the steady hours the hybrid did not simulate to ``r`` (in place)."""
    s = r.scenario
    names = [c.name for c in s.traffic.classes]
    slos = [c.slo for c in s.traffic.classes]
    simulated = {
        (row["fleet"], row["class"], row["kind"], row["hour"]): row for row in r.class_hours
    }
    for fleet in FLEETS:
        view = FleetView(s, fleet, 1 << 40)
        sizer = Sizer(build_deployed(s, fleet))
        price = usd_per_gpu_hour(s, fleet)
        api = api_price(s, fleet)
        rows = r.fleet_hours[fleet]
        sim_hours = [h for h, x in enumerate(rows) if x["simulated"]]
        for hour, fleet_row in enumerate(rows):
            if fleet_row["simulated"]:
                continue
            new_rows: list[dict[str, Any]] = []
            for c, name in enumerate(names):
                counts = _open_loop(s, view, hour, c)
                for kind, open_loop in zip(ROW_KINDS[:2], counts, strict=False):
                    if open_loop == 0:
                        continue
                    ref = _reference(s, simulated, sim_hours, fleet, name, kind, hour)
                    if ref is None:
                        continue
                    ref_open = _open_loop(s, view, ref["hour"], c)[ROW_KINDS.index(kind)]
                    per_open = ref["arrived"] / ref_open if ref_open else 1.0
                    arrived = round(open_loop * per_open)
                    scale = arrived / ref["arrived"] if ref["arrived"] else 0.0
                    row = {
                        **ref,
                        "hour": hour,
                        "arrived": arrived,
                        **{k: round(ref[k] * scale) for k in SCALED_FIELDS},
                        "simulated": False,
                        "reference_hour": ref["hour"],
                    }
                    row["api_usd"] = api_usd(row, api)
                    new_rows.append(row)
            r.class_hours.extend(new_rows)
            demand = _demand(new_rows, slos)
            gpu_hours = _gpu_hours(s, fleet, hour, sizer, sized[fleet], demand)
            gpus = (s.fleets.source if fleet == SOURCE else s.fleets.target).deployment
            fleet_row.update(
                gpu_hours=gpu_hours,
                usd=gpu_hours * price,
                replicas=gpu_hours / gpus.gpus_per_replica,
                simulated=False,
            )
    r.class_hours.sort(key=lambda x: (x["fleet"], x["hour"], x["class"], x["kind"]))


def _reference(
    s: MigrationScenario,
    simulated: dict[tuple[str, str, str, int], dict[str, Any]],
    sim_hours: list[int],
    fleet: str,
    cls: str,
    kind: str,
    hour: int,
) -> dict[str, Any] | None:
    share = _share(s, fleet, cls, kind, hour)
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for h in sim_hours:
        row = simulated.get((fleet, cls, kind, h))
        if row is None or not row["arrived"]:
            continue
        if abs(_share(s, fleet, cls, kind, h) - share) > SHARE_TOLERANCE:
            continue
        rank = (0 if _settled(s, h) else 1, abs(h - hour))
        if best is None or rank < best[0]:
            best = (rank, row)
    return None if best is None else best[1]


def _demand(rows: list[dict[str, Any]], slos: list[Any]) -> Demand:
    arrived = sum(x["arrived"] for x in rows)
    if not arrived:
        return Demand(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    finished = sum(x["finished"] for x in rows) or arrived
    admitted = sum(x["admitted_input_tokens"] for x in rows)
    return Demand(
        arrived / SECONDS_PER_HOUR,
        sum(x["input_tokens"] for x in rows) / arrived,
        sum(x["output_tokens"] for x in rows) / finished,
        sum(x["cached_tokens"] for x in rows) / admitted if admitted else 0.0,
        min(x.tpot_s for x in slos),
        min(x.ttft_s for x in slos),
    )


def fleet_hit_ratio(r: MigrationResult, fleet: str, hour: int) -> float | None:
    """Prefix hit ratio of a fleet's production traffic arriving in an hour (cached over
    admitted prompt tokens, all classes); None without admitted prompts."""
    rows = [
        x
        for x in r.class_hours
        if x["fleet"] == fleet and x["hour"] == hour and x["kind"] == "production"
    ]
    admitted = sum(x["admitted_input_tokens"] for x in rows)
    return sum(x["cached_tokens"] for x in rows) / admitted if admitted else None


def agreement(full: MigrationResult, hybrid: MigrationResult) -> dict[str, Any]:
    """How far the hybrid's steady hours are from a full simulation of the same scenario:
    the largest relative difference of an hour's $ per fleet, and the largest difference
    of an hour's production prefix hit ratio per fleet (hours the hybrid extrapolated)."""
    worst_usd = 0.0
    worst_hit = 0.0
    worst_at: dict[str, Any] = {}
    hours = 0
    hit = fleet_hit_ratio
    for fleet in FLEETS:
        for f_row, h_row in zip(full.fleet_hours[fleet], hybrid.fleet_hours[fleet], strict=True):
            if h_row["simulated"]:
                continue
            hours += 1
            if f_row["usd"] > 0:
                diff = abs(h_row["usd"] - f_row["usd"]) / f_row["usd"]
                if diff > worst_usd:
                    worst_usd = diff
                    worst_at = {
                        "fleet": fleet,
                        "hour": f_row["hour"],
                        "replicas_full": f_row["replicas"],
                        "replicas_hybrid": h_row["replicas"],
                    }
            a, b = hit(full, fleet, f_row["hour"]), hit(hybrid, fleet, f_row["hour"])
            if a is not None and b is not None:
                worst_hit = max(worst_hit, abs(a - b))
    return {
        "extrapolated_fleet_hours": hours,
        "max_hourly_usd_rel_diff": worst_usd,
        "max_usd_diff_at": worst_at,
        "max_hit_ratio_diff": worst_hit,
        "total_usd_full": sum(r["usd"] for f in FLEETS for r in full.fleet_hours[f]),
        "total_usd_hybrid": sum(r["usd"] for f in FLEETS for r in hybrid.fleet_hours[f]),
    }
