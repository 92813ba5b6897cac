"""The hybrid timeline: simulate the transients, compute the steady hours.

Simulated (per fleet, each window with its ``lead_h`` warm-up):

- the **target**, from each cut-over's start for ``settle_h`` hours (the class arrives
  with a cold cache there; the autoscaler meets its demand), and from each shadow's start
  for up to ``settle_h`` hours (the mirrored share only);
- the **source**, one steady hour of each class mix it serves: the hour before the first
  cut-over and the hour after each ramp but the last. A class only ever leaves the source
  and its cache there stays warm, so the source has no transient of its own beyond its
  replica count, which is computed (below).

Every other hour of a fleet is computed from a *reference* hour per class and kind: the
nearest simulated hour of the same fleet, class and kind, preferring one where the class
is warm on the fleet (the source always; the target from ``REFERENCE_AFTER_H`` after the
class's first cut-over or shadow started):

- its open-loop requests and their tokens are the hour's own (the traffic draws, exact);
- follow-up turns, prompt and output tokens per request, the prefix hit ratio, rejections,
  latency percentiles and SLO attainment are the reference's, scaled to the hour's
  requests. The class's share on the fleet may differ from the reference's (a ramp): per
  request these are taken as the same, which holds while the class's shared prefixes stay
  cached on every replica and the autoscaler holds the fleet's load per replica;
- GPU-hours follow the fleet's policy: fixed and sized counts as given; an autoscaled fleet
  replays the simulated autoscaler's rule (:func:`replay_autoscaler`) on the expected
  demand of every interval, with the correction the nearest simulated window ended with.

``benchmarks/bench_migrate.py --agreement`` and ``tests/migrate/test_hybrid.py`` compare it
with a full simulation of a shortened scenario (hourly $ within 5%, hit ratio within 2
points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.migrate.autoscale import Demand, Sizer
from planner.migrate.prices import api_price, api_usd, usd_per_gpu_hour
from planner.migrate.schema import SECONDS_PER_HOUR, AutoscaleReplicas, MigrationScenario, Shadow
from planner.migrate.simulate import ROW_KINDS, build_deployed, wanted_count
from planner.migrate.timeline import (
    FLEETS,
    SOURCE,
    fixed_count,
    policy_spans,
)
from planner.migrate.traffic import FleetView, draw_block

if TYPE_CHECKING:
    from planner.migrate.run import MigrationResult

REFERENCE_AFTER_H = 1.0
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


def _merge(spans: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
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


def simulated_spans(
    s: MigrationScenario, first: int, last: int, fleet: str
) -> list[tuple[int, int]]:
    """Hours [a, b) of a fleet the hybrid simulates (merged, within [first, last))."""
    settle = s.simulation.settle_h
    if fleet == SOURCE:
        # One hour of each class mix the source serves: before the first cut-over, and
        # after each ramp (a class has left; the autoscaler's correction is the mix's).
        at = min((math.floor(c.at_h) for c in s.cutovers), default=last)
        a = max(first, min(at, last) - 1)
        samples = [(a, a + 1)]
        for c in s.cutovers[:-1]:
            end = math.ceil(c.at_h + c.ramp_h)
            samples.append((end, end + 1))
        return _merge(samples, first, last)
    spans = [(math.floor(c.at_h), math.ceil(c.at_h + settle)) for c in s.cutovers]
    for p in s.phases:
        if isinstance(p, Shadow):
            spans.append((math.floor(p.at_h), math.ceil(p.at_h + min(p.duration_h, settle))))
    return _merge(spans, first, last)


def _warm_from_h(s: MigrationScenario, fleet: str, cls: str, kind: str) -> float:
    """From when a class's rows on a fleet are steady (its prefixes cached there)."""
    if fleet == SOURCE:
        return -math.inf
    if kind == "mirrored":
        starts = [
            p.at_h
            for p in s.phases
            if isinstance(p, Shadow) and (p.classes is None or cls in p.classes)
        ]
    else:
        starts = [c.at_h for c in s.cutovers if c.class_name == cls]
    return min(starts, default=0.0) + REFERENCE_AFTER_H


@dataclass
class _Arrivals:
    """Expected arrivals on a fleet over its computed hours, one entry per open-loop
    request (follow-up turns folded in by the reference's requests per open-loop one),
    with the reference's tokens per request: the demand the replayed autoscaler sizes."""

    time_s: np.ndarray
    cum: np.ndarray  # cumulative [requests, input, output, admitted, cached], row 0 = zeros

    def demand(self, a_s: float, b_s: float, slos: list[Any]) -> Demand:
        i, j = np.searchsorted(self.time_s, [a_s, b_s])
        req, inp, out, adm, cac = self.cum[j] - self.cum[i]
        if req <= 0:
            return Demand(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return Demand(
            float(req) / (b_s - a_s),
            float(inp / req),
            float(out / req),
            float(cac / adm) if adm > 0 else 0.0,
            min(x.tpot_s for x in slos),
            min(x.ttft_s for x in slos),
        )


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
        price = usd_per_gpu_hour(s, fleet)
        api = api_price(s, fleet)
        rows = r.fleet_hours[fleet]
        sim_hours = [h for h, x in enumerate(rows) if x["simulated"]]
        times: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for hour, fleet_row in enumerate(rows):
            if fleet_row["simulated"]:
                continue
            new_rows: list[dict[str, Any]] = []
            for c, name in enumerate(names):
                block = draw_block(s, c, hour)
                here, mirrored = view.placement(block)
                for kind, chosen in zip(ROW_KINDS[:2], (here, mirrored), strict=False):
                    open_loop = int(chosen.sum())
                    if open_loop == 0:
                        continue
                    ref = _reference(s, simulated, sim_hours, fleet, name, kind, hour)
                    if ref is None:
                        continue
                    ref_block = draw_block(s, c, ref["hour"])
                    ref_open = int(view.placement(ref_block)[ROW_KINDS.index(kind)].sum())
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
                    per = np.array(
                        [
                            per_open,
                            per_open * ref["input_tokens"] / ref["arrived"],
                            per_open * ref["output_tokens"] / max(1, ref["finished"]),
                            per_open * ref["admitted_input_tokens"] / ref["arrived"],
                            per_open * ref["cached_tokens"] / ref["arrived"],
                        ]
                    )
                    times.append(block.arrival_s[chosen])
                    values.append(np.broadcast_to(per, (open_loop, 5)))
            r.class_hours.extend(new_rows)
        order_t = np.concatenate(times) if times else np.zeros(0)
        order = np.argsort(order_t, kind="stable")
        stacked = np.concatenate(values)[order] if values else np.zeros((0, 5))
        arrivals = _Arrivals(
            order_t[order], np.vstack([np.zeros((1, 5)), np.cumsum(stacked, axis=0)])
        )
        gpu_hours = _computed_gpu_hours(r, fleet, arrivals, sized[fleet], slos)
        gpus = (s.fleets.source if fleet == SOURCE else s.fleets.target).deployment
        for hour, gh in gpu_hours.items():
            rows[hour].update(
                gpu_hours=gh,
                usd=gh * price,
                replicas=gh / gpus.gpus_per_replica,
                simulated=False,
            )
    r.class_hours.sort(key=lambda x: (x["fleet"], x["hour"], x["class"], x["kind"]))


def _stretches(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Runs [a, b) of consecutive computed hours."""
    out: list[tuple[int, int]] = []
    for h, row in enumerate(rows):
        if row["simulated"]:
            continue
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + 1)
        else:
            out.append((h, h + 1))
    return out


def _window_end_billed(r: MigrationResult, fleet: str, at_s: float) -> int | None:
    """Replicas billed when a simulated window of the fleet ended at ``at_s`` (None where
    none ends there)."""
    hour = math.floor(at_s / SECONDS_PER_HOUR) - 1
    if hour < 0 or not r.fleet_hours[fleet][hour]["simulated"]:
        return None
    changes = [c for c in r.replicas[fleet] if c[0] < at_s]
    return changes[-1][1] if changes else None


def _reference_corrections(r: MigrationResult, fleet: str, at_s: float) -> list[float]:
    """The corrections of the last hour of the latest simulated window that ended by
    ``at_s`` (or the first one, before any): how far the planner's sizing was off for this
    fleet's mix, as the window measured it (the SLO feedback raises and decays it, so it
    is a spread, kept whole)."""
    sim_hours = [h for h, x in enumerate(r.fleet_hours[fleet]) if x["simulated"]]
    ends = sorted({h + 1 for h in sim_hours if h + 1 not in sim_hours})
    if not ends:
        return [1.0]
    before = [e for e in ends if e * SECONDS_PER_HOUR <= at_s]
    end_h = max(before) if before else min(ends)
    last = [
        d["correction"]
        for d in r.decisions[fleet]
        if (end_h - 1) * SECONDS_PER_HOUR <= d["time_s"] < end_h * SECONDS_PER_HOUR
    ]
    return last or [1.0]


def replay_autoscaler(
    policy: AutoscaleReplicas,
    sizer: Sizer,
    arrivals: _Arrivals,
    slos: list[Any],
    start_s: float,
    end_s: float,
    live: float | None,
    corrections: list[float],
) -> list[tuple[float, float]]:
    """The simulated autoscaler's rule (planner.migrate.simulate) on the expected demand:
    every interval on the grid from hour 0, the planner's count for the last interval's
    demand times the correction, within the policy's bounds; up at once, down only to the
    most any decision of the last ``scale_down_delay_s`` wanted. The count is its
    expectation over ``corrections`` (the spread a simulated window measured), so it may be
    fractional. Starts from ``live`` (None: what the first interval wants, a fleet already
    following its demand). Returns the (time, replicas) steps from ``start_s``."""
    interval = policy.interval_s

    def wanted_at(t: float, current: float) -> float:
        demand = arrivals.demand(t - interval, t, slos)
        busy = demand.requests_per_s > 0
        planned = (
            sizer.replicas_or(demand, policy.target_utilisation, math.ceil(current)) if busy else 0
        )
        counts = [wanted_count(planned, c, busy, policy) for c in corrections]
        return sum(counts) / len(counts)

    first_s = math.floor(start_s / interval + 1) * interval
    if live is None:
        live = wanted_at(min(first_s, end_s), policy.min_replicas)
    live = min(max(live, policy.min_replicas), policy.max_replicas)
    steps = [(start_s, live)]
    recent = [(start_s, live)]
    t = first_s
    while t < end_s:
        wanted = wanted_at(t, live)
        recent = [(u, w) for u, w in recent if u > t - policy.scale_down_delay_s]
        recent.append((t, wanted))
        target = wanted if wanted > live else max(w for _, w in recent)
        if target != live:
            live = target
            steps.append((t, live))
        t += interval
    return steps


def _computed_gpu_hours(
    r: MigrationResult,
    fleet: str,
    arrivals: _Arrivals,
    sized: int | None,
    slos: list[Any],
) -> dict[int, float]:
    """GPU-hours of every computed hour of a fleet: its policy spans, an autoscaled one
    replayed interval by interval."""
    s = r.scenario
    gpus = (s.fleets.source if fleet == SOURCE else s.fleets.target).deployment.gpus_per_replica
    spans = policy_spans(s, fleet)
    sizer = Sizer(build_deployed(s, fleet))
    seconds: dict[int, float] = {}
    for a, b in _stretches(r.fleet_hours[fleet]):
        for h in range(a, b):
            seconds[h] = 0.0
        for i, span in enumerate(spans):
            lo = max(a * SECONDS_PER_HOUR, span.start_s)
            span_end = spans[i + 1].start_s if i + 1 < len(spans) else math.inf
            hi = min(b * SECONDS_PER_HOUR, span_end)
            if hi <= lo:
                continue
            policy = span.policy
            if isinstance(policy, AutoscaleReplicas):
                billed = _window_end_billed(r, fleet, lo)
                live = None if billed is None else float(billed)
                corrections = _reference_corrections(r, fleet, lo)
                if live is None and lo == span.start_s and lo > 0:
                    live = policy.min_replicas  # stand-up: the fleet starts at its minimum
                steps = replay_autoscaler(policy, sizer, arrivals, slos, lo, hi, live, corrections)
            else:
                steps = [(lo, float(fixed_count(policy, sized)))]
            _add_steps(seconds, steps, hi)
    return {h: v * gpus / SECONDS_PER_HOUR for h, v in seconds.items()}


def _add_steps(seconds: dict[int, float], steps: list[tuple[float, float]], end_s: float) -> None:
    """Add replica-seconds of a step function (count from each step's time) per hour."""
    for k, (t0, count) in enumerate(steps):
        t1 = steps[k + 1][0] if k + 1 < len(steps) else end_s
        t = t0
        while t < t1:
            h = math.floor(t / SECONDS_PER_HOUR)
            u = min(t1, (h + 1) * SECONDS_PER_HOUR)
            seconds[h] = seconds.get(h, 0.0) + count * (u - t)
            t = u


def _reference(
    s: MigrationScenario,
    simulated: dict[tuple[str, str, str, int], dict[str, Any]],
    sim_hours: list[int],
    fleet: str,
    cls: str,
    kind: str,
    hour: int,
) -> dict[str, Any] | None:
    warm_h = _warm_from_h(s, fleet, cls, kind)
    best: tuple[tuple[int, int], dict[str, Any]] | None = None
    for h in sim_hours:
        row = simulated.get((fleet, cls, kind, h))
        if row is None or not row["arrived"]:
            continue
        rank = (0 if h >= warm_h else 1, abs(h - hour))
        if best is None or rank < best[0]:
            best = (rank, row)
    return None if best is None else best[1]


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
    of an hour's production prefix hit ratio per fleet (hours the hybrid computed); and,
    as the floor they can be judged against, the largest $ difference of an hour both
    simulated."""
    worst_usd = 0.0
    worst_hit = 0.0
    worst_sim = 0.0
    by_hour: list[tuple[str, int, float]] = []
    worst_at: dict[str, Any] = {}
    hours = 0
    hit = fleet_hit_ratio
    for fleet in FLEETS:
        for f_row, h_row in zip(full.fleet_hours[fleet], hybrid.fleet_hours[fleet], strict=True):
            if h_row["simulated"]:
                # The same hour simulated twice (its window's warm-up differs): how far the
                # simulation itself moves an hour's $, a floor for any computed hour.
                if f_row["usd"] > 0:
                    worst_sim = max(worst_sim, abs(h_row["usd"] - f_row["usd"]) / f_row["usd"])
                continue
            hours += 1
            if f_row["usd"] > 0:
                diff = abs(h_row["usd"] - f_row["usd"]) / f_row["usd"]
                by_hour.append((fleet, f_row["hour"], diff))
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
        "max_simulated_hour_usd_rel_diff": worst_sim,
        "hourly_usd_rel_diff": by_hour,
        "total_usd_full": sum(r["usd"] for f in FLEETS for r in full.fleet_hours[f]),
        "total_usd_hybrid": sum(r["usd"] for f in FLEETS for r in hybrid.fleet_hours[f]),
    }
