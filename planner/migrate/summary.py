"""The answers a migration plan needs, from its hourly timeline.

- **Cost per day** of each fleet, against the steady state before (the source alone, over
  the whole hours before the first cut-over) and after (the target alone, over the last
  24 hours, or fewer if the timeline is shorter, after the last cut-over has settled).
- **Each cut-over**: the class's prefix hit ratio on the source before and on the target
  after (steady: the last ``SETTLED_H`` hours before the next phase); its re-warm time (from
  the cut-over until the hit ratio, over a rolling ``ROLLING_MIN``-minute window, first
  reaches 90% of that steady value); the API-equivalent extra spend of the cold cache
  (prompt tokens that would have been cached at the steady ratio, times input minus cached
  price), and the bill's ratio right at the cut-over, over its first hour and over its first
  day, against the steady ratio; the self-hosted peak $/hour against the new steady $/hour;
  the target replicas the planner wants for the post-ramp traffic at the re-warm hit ratio
  vs at the steady one; SLO attainment in the cut-over hour vs the settled hours.
- **The migration**: what both fleets cost from stand-up to decommission (or the timeline's
  end) against the source's steady cost over the same hours (the extra is the migration's
  cost), the monthly saving after it ((steady before - steady after) x 730 h), and the
  break-even time (when the cumulative saving has paid the extra; beyond the timeline it is
  extrapolated at the steady saving).
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.migrate.autoscale import Demand, Sizer
from planner.migrate.prices import TokenPrice, api_price, usd_per_gpu_hour
from planner.migrate.simulate import build_deployed
from planner.migrate.timeline import SOURCE, TARGET
from planner.plan.cost import HOURS_PER_MONTH
from planner.units import MILLION

if TYPE_CHECKING:
    from planner.migrate.run import MigrationResult

REWARM_FRACTION = 0.9
ROLLING_MIN = 10
SETTLED_H = 3
STEADY_AFTER_H = 24


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class _Timeline:
    def __init__(self, r: MigrationResult) -> None:
        self.r = r
        self.s = r.scenario
        self.hours = len(r.fleet_hours[SOURCE])
        self.usd = {f: [row["usd"] for row in r.fleet_hours[f]] for f in (SOURCE, TARGET)}
        self.rows: dict[tuple[str, str, str, int], dict[str, Any]] = {
            (row["fleet"], row["class"], row["kind"], row["hour"]): row for row in r.class_hours
        }
        self.n = len(self.s.traffic.classes)

    def row(self, fleet: str, cls: str, hour: int, kind: str = "production") -> dict[str, Any]:
        return self.rows.get((fleet, cls, kind, hour), {})

    def minutes(self, fleet: str, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        key = (fleet, class_index)
        zeros = np.zeros(self.hours * 60, dtype=np.int64)
        return self.r.minute_cached.get(key, zeros), self.r.minute_input.get(key, zeros)

    def hit(self, fleet: str, class_index: int, start_h: float, end_h: float) -> float | None:
        cached, inputs = self.minutes(fleet, class_index)
        a, b = round(start_h * 60), round(end_h * 60)
        total = int(inputs[a:b].sum())
        if not total:
            return self._hourly_hit(fleet, [class_index], ("production",), start_h, end_h)
        return int(cached[a:b].sum()) / total

    def fleet_hit(self, fleet: str, start_h: float, end_h: float) -> float | None:
        cached = inputs = 0
        a, b = round(start_h * 60), round(end_h * 60)
        for row in range(2 * self.n):
            c, i = self.minutes(fleet, row)
            cached += int(c[a:b].sum())
            inputs += int(i[a:b].sum())
        if not inputs:
            kinds = ("production", "mirrored")
            return self._hourly_hit(fleet, list(range(self.n)), kinds, start_h, end_h)
        return cached / inputs

    def _hourly_hit(
        self,
        fleet: str,
        classes: list[int],
        kinds: tuple[str, ...],
        start_h: float,
        end_h: float,
    ) -> float | None:
        """A window with no simulated minute (hybrid: hours computed from a reference
        hour) takes the hourly rows of the hours it overlaps."""
        names = [self.s.traffic.classes[c].name for c in classes]
        rows = [
            self.row(fleet, name, h, kind)
            for h in range(math.floor(start_h), math.ceil(end_h))
            for name in names
            for kind in kinds
        ]
        admitted = sum(r.get("admitted_input_tokens", 0) for r in rows)
        return sum(r.get("cached_tokens", 0) for r in rows) / admitted if admitted else None


def _events_h(s: Any) -> list[float]:
    """Hours at which the traffic split or the fleets change (phase starts and ends)."""
    times = set()
    for p in s.phases:
        times.add(p.at_h)
        if getattr(p, "ramp_h", 0):
            times.add(p.at_h + p.ramp_h)
    return sorted(times)


def _rewarm_h(
    t: _Timeline, class_index: int, at_h: float, end_h: float, steady: float
) -> float | None:
    """Hours from the cut-over until the rolling hit ratio first reaches 90% of steady."""
    if steady <= 0:
        return 0.0
    cached, inputs = t.minutes(TARGET, class_index)
    a, b = round(at_h * 60), round(end_h * 60)
    for m in range(a, b):
        lo = max(a, m - ROLLING_MIN + 1)
        total = int(inputs[lo : m + 1].sum())
        if total and int(cached[lo : m + 1].sum()) / total >= REWARM_FRACTION * steady:
            return (m + 1 - a) / 60.0
    return None


def _api_cost(inputs: float, cached: float, outputs: float, price: TokenPrice) -> float:
    return (
        (inputs - cached) * price.input + cached * price.cached + outputs * price.output
    ) / MILLION


def _cutover(t: _Timeline, index: int, events: list[float], sizer: Sizer) -> dict[str, Any]:
    s = t.s
    cut = s.cutovers[index]
    c = s.traffic.class_index(cut.class_name)
    at, ramp_end = cut.at_h, cut.at_h + cut.ramp_h
    later = [e for e in events if e > ramp_end]
    end = min(later[0] if later else s.duration_h, s.duration_h)
    settled_from = max(ramp_end, end - SETTLED_H)
    steady = t.hit(TARGET, c, settled_from, end)
    before = t.hit(SOURCE, c, max(0.0, at - 1), at)
    rewarm = _rewarm_h(t, c, at, end, steady or 0.0)
    out: dict[str, Any] = {
        "class": cut.class_name,
        "at_h": at,
        "ramp_h": cut.ramp_h,
        "warmup_top_n": cut.warmup_top_n,
        "source_hit_ratio_before": before,
        "target_hit_ratio_first_10_min": t.hit(TARGET, c, at, at + 10 / 60),
        "target_hit_ratio_first_hour": t.hit(TARGET, c, at, min(at + 1, end)),
        "target_hit_ratio_steady": steady,
        "steady_window_h": [settled_from, end],
        "rewarm_h": rewarm,
    }
    # API-equivalent view: the class's prompt tokens on the target, minute by minute.
    price = api_price(s, TARGET)
    cached, inputs = t.minutes(TARGET, c)
    a, b = round(at * 60), round(end * 60)
    if price is not None and steady is not None:
        missing = np.maximum(steady * inputs[a:b] - cached[a:b], 0.0)
        out["api_extra_usd"] = float(missing.sum()) * (price.input - price.cached) / 1e6
        hours = [t.row(TARGET, cut.class_name, h) for h in range(math.floor(at), math.ceil(end))]
        outputs = sum(r.get("output_tokens", 0) for r in hours)
        prompt = sum(r.get("admitted_input_tokens", 0) for r in hours)
        per_prompt_out = outputs / prompt if prompt else 0.0

        def bill_ratio(m0: int, m1: int) -> float | None:
            i = float(inputs[m0:m1].sum())
            if not i:
                return None
            actual = _api_cost(i, float(cached[m0:m1].sum()), i * per_prompt_out, price)
            warm = _api_cost(i, steady * i, i * per_prompt_out, price)
            return _ratio(actual, warm)

        out["api_bill_ratio_first_10_min"] = bill_ratio(a, min(a + 10, b))
        out["api_bill_ratio_first_hour"] = bill_ratio(a, min(a + 60, b))
        out["api_bill_ratio_first_day"] = bill_ratio(a, min(a + 24 * 60, b))
    # Self-hosted view: the target's $/hour.
    usd = t.usd[TARGET]
    window = [usd[h] for h in range(math.floor(at), math.ceil(end))]
    settled = [usd[h] for h in range(math.ceil(settled_from), math.ceil(end))]
    steady_usd = _mean(settled)
    out["target_usd_per_hour_peak"] = max(window) if window else None
    out["target_usd_per_hour_steady"] = steady_usd
    out["target_usd_spike_ratio"] = (
        _ratio(max(window), steady_usd) if window and steady_usd else None
    )
    # Replicas the planner wants for the post-ramp traffic, cold vs warm.
    hour = min(math.floor(ramp_end), t.hours - 1)
    rows = [
        t.row(TARGET, name, hour, kind)
        for name in (x.name for x in s.traffic.classes)
        for kind in ("production", "mirrored")
    ]
    arrived = sum(r.get("arrived", 0) for r in rows)
    finished = sum(r.get("finished", 0) for r in rows)
    if arrived and finished:
        cold = t.fleet_hit(TARGET, at, at + max(rewarm or 0.0, 1 / 60)) or 0.0
        warm = t.fleet_hit(TARGET, settled_from, end) or 0.0
        slos = [x.slo for x in s.traffic.classes]

        def wanted(hit: float) -> int | None:
            demand = Demand(
                arrived / 3600,
                sum(r.get("input_tokens", 0) for r in rows) / arrived,
                sum(r.get("output_tokens", 0) for r in rows) / finished,
                hit,
                min(x.tpot_s for x in slos),
                min(x.ttft_s for x in slos),
            )
            return sizer.replicas_or(demand, 1.0, -1)

        out["target_replicas_rewarm"] = wanted(cold)
        out["target_replicas_after"] = wanted(warm)
        out["target_fleet_hit_ratio_rewarm"] = cold
        out["target_fleet_hit_ratio_after"] = warm
    first = t.row(TARGET, cut.class_name, math.floor(at))
    decided = [
        t.row(TARGET, cut.class_name, h) for h in range(math.ceil(settled_from), math.ceil(end))
    ]
    met = sum(r.get("slo_met", 0) for r in decided)
    total = sum(r.get("slo_decided", 0) for r in decided)
    out["slo_attainment_cutover_hour"] = first.get("slo_attainment")
    out["slo_attainment_settled"] = met / total if total else None
    return out


def summarize(r: MigrationResult) -> dict[str, Any]:
    t = _Timeline(r)
    s = t.s
    hours = t.hours
    days = []
    for d in range(math.ceil(hours / 24)):
        span = range(d * 24, min(hours, (d + 1) * 24))
        src = sum(t.usd[SOURCE][h] for h in span)
        tgt = sum(t.usd[TARGET][h] for h in span)
        days.append(
            {
                "day": d + 1,
                "hours": len(span),
                "source_usd": src,
                "target_usd": tgt,
                "total_usd": src + tgt,
            }
        )
    cutovers = s.cutovers
    first_cut = cutovers[0].at_h if cutovers else s.duration_h
    before_hours = list(range(0, max(1, math.floor(first_cut))))
    steady_before = _mean([t.usd[SOURCE][h] for h in before_hours]) or 0.0
    last_end = max((c.at_h + c.ramp_h for c in cutovers), default=s.stand_up_h)
    after_from = max(math.ceil(last_end + s.simulation.settle_h), hours - STEADY_AFTER_H)
    after_hours = list(range(min(after_from, hours - 1), hours))
    steady_after = _mean([t.usd[TARGET][h] for h in after_hours]) or 0.0
    start = math.floor(s.stand_up_h)
    end_h = s.decommission_h
    end = min(hours, math.ceil(end_h) + 1 if end_h is not None else hours)
    actual = sum(t.usd[SOURCE][h] + t.usd[TARGET][h] for h in range(start, end))
    baseline = steady_before * (end - start)
    extra = actual - baseline
    saving_per_hour = steady_before - steady_after
    break_even_h: float | None = None
    if saving_per_hour > 0:
        cumulative = 0.0
        negative = False
        for h in range(start, hours):
            cumulative += steady_before - (t.usd[SOURCE][h] + t.usd[TARGET][h])
            negative = negative or cumulative < 0
            if negative and cumulative >= 0:
                break_even_h = h + 1.0
                break
        if break_even_h is None:
            owed = -cumulative if cumulative < 0 else 0.0
            break_even_h = hours + owed / saving_per_hour if negative else float(start)
    events = _events_h(s)
    sizer = Sizer(build_deployed(s, TARGET))
    migration = {
        "from_h": start,
        "to_h": end,
        "actual_usd": actual,
        "source_only_usd": baseline,
        "extra_usd": extra,
        "monthly_saving_usd": saving_per_hour * HOURS_PER_MONTH,
        "break_even_h": break_even_h,
        "break_even_date": (
            (datetime.combine(s.start_date, time()) + timedelta(hours=break_even_h)).isoformat(
                timespec="minutes"
            )
            if s.start_date is not None and break_even_h is not None
            else None
        ),
    }
    warmup_requests = sum(w["requests"] for w in r.warmups)
    warmup_tokens = sum(w["prompt_tokens"] for w in r.warmups)
    return {
        "days": days,
        "steady_before": {
            "usd_per_hour": steady_before,
            "usd_per_day": steady_before * 24,
            "hours": [before_hours[0], before_hours[-1] + 1],
        },
        "steady_after": {
            "usd_per_hour": steady_after,
            "usd_per_day": steady_after * 24,
            "hours": [after_hours[0], after_hours[-1] + 1],
        },
        "cutovers": [_cutover(t, i, events, sizer) for i in range(len(cutovers))],
        "migration": migration,
        "warmup": {"requests": warmup_requests, "prompt_tokens": warmup_tokens},
        "prices": {
            f: {
                "usd_per_gpu_hour": usd_per_gpu_hour(s, f),
                "api": (lambda p: None if p is None else p.__dict__)(api_price(s, f)),
            }
            for f in (SOURCE, TARGET)
        },
        # Every request on the timeline (hybrid: computed hours included); the simulated
        # ones are in the run's stats.
        "requests": {
            k: sum(x[k] for x in r.class_hours)
            for k in ("arrived", "finished", "rejected", "in_flight")
        },
    }
