"""Simulate one fleet over a window of hours of the migration (one Dask task).

A window [start_h, end_h) is simulated from ``start_h - lead`` (the lead warms caches and
queues; nothing arriving in it is reported) until arrivals stop at ``end_h`` and then for a
drain. The fleet's replica count follows the phases (:mod:`planner.migrate.timeline`):
fixed counts as given, a sized count from the planner, or the autoscaler, which every
interval sizes the fleet for the demand it measured over the last interval
(:mod:`planner.migrate.autoscale`). At each cut-over with ``warmup_top_n``, the target's
serving replicas prefill the class's N first shared prefixes (one request per prefix and
replica, one output token); they are reported as warm-up traffic.

Metrics are kept per (row, hour of arrival): a row is a class's production traffic, its
mirrored copies (index + classes) or its warm-up requests (index + 2 x classes). Requests
are not kept after they finish, so memory follows the requests in flight, not the
timeline's length. Conservation is checked at the end: every request that arrived in the
window finished, was rejected, or is still in flight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from planner.hardware import load_gpu
from planner.migrate.autoscale import Demand, Sizer
from planner.migrate.schema import SECONDS_PER_HOUR, AutoscaleReplicas, MigrationScenario
from planner.migrate.timeline import (
    SOURCE,
    TARGET,
    PolicySpan,
    fixed_count,
    policy_spans,
)
from planner.migrate.traffic import FleetView, stream
from planner.model.catalog import load_spec
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.schema import SLOSpec
from planner.sim.cluster import replica_config
from planner.sim.fleet import Fleet
from planner.sim.request import (
    FINISHED,
    REJECT_TOO_LONG_FOR_KV,
    REJECT_TOO_LONG_FOR_MODEL,
    REJECTED,
    Request,
)

SECONDS_PER_MINUTE = 60.0
# The autoscaler's SLO feedback, class by class: when more than this share of the recent
# requests *of any one class* missed that class's TTFT SLO (finished late, or still queued
# past it) and no replica is still being provisioned, the planner's count is raised by
# CORRECTION_STEP for the following decisions; an interval in which every class has under a
# quarter of that share late lets it decay by CORRECTION_DECAY toward 1. (The planner sizes
# on the mix's mean lengths and strictest SLOs; how far that is off for the class that
# needs most shows in the correction the run ends with.)
# 1%: every class's TTFT p99 within its SLO (the percentile the migration report shows).
SLO_MISS_TOLERANCE = 0.01
# The late share is measured over the last SLO_INTERVALS decisions' requests (a 15-minute
# p99 at the default 5-minute interval), so a small class's single late request does not
# move the fleet; the history restarts after each raise.
SLO_INTERVALS = 3
CORRECTION_STEP = 1.25
CORRECTION_DECAY = 0.97
MAX_CORRECTION = 8.0
# Metric rows: class index + ROW_KINDS.index(kind) x classes.
ROW_KINDS = ("production", "mirrored", "warmup")
WARMUP_RID_OFFSET = 1 << 120


def worst_late_share(late: list[int], decided: list[int]) -> float:
    """The largest share of late requests over the classes (late / decided per class, a
    class with nothing decided counting 0): the autoscaler's SLO signal. A class that
    carries few of the fleet's requests but misses its own SLO drives it as much as a
    large one."""
    return max((a / b for a, b in zip(late, decided, strict=True) if b), default=0.0)


def wanted_count(
    planned: int, correction: float, has_demand: bool, policy: AutoscaleReplicas
) -> int:
    """The autoscaler's count: the planner's count times the SLO correction (rounded up),
    the policy's minimum without demand, within its bounds."""
    wanted = math.ceil(planned * correction - 1e-9) if has_demand else policy.min_replicas
    return min(max(wanted, policy.min_replicas), policy.max_replicas)


def next_correction(correction: float, late_share: float, provisioning: bool) -> float:
    """The autoscaler's SLO correction after a decision: raised by CORRECTION_STEP when the
    worst class's late share is over SLO_MISS_TOLERANCE and no replica is provisioning,
    decayed by CORRECTION_DECAY toward 1 when it is under a quarter of it, else kept."""
    if late_share > SLO_MISS_TOLERANCE and not provisioning:
        return min(MAX_CORRECTION, correction * CORRECTION_STEP)
    if late_share < SLO_MISS_TOLERANCE / 4:
        return max(1.0, correction * CORRECTION_DECAY)
    return correction


def build_deployed(s: MigrationScenario, fleet: str) -> Deployed:
    spec = s.fleets.source if fleet == SOURCE else s.fleets.target
    return Deployed.build(Model(load_spec(spec.model)), load_gpu(spec.gpu), spec.deployment)


@dataclass(frozen=True)
class WindowTask:
    scenario: MigrationScenario
    fleet: str
    start_h: int
    end_h: int
    lead_s: float
    replicas_at_start: int  # serving when the window starts (autoscaled: the first guess)
    sized_replicas: int | None  # the planned count of a 'sized' policy
    keep_requests: bool = False  # return every finished request (tests, small runs)


@dataclass
class Row:
    """Accumulated metrics of one (row, hour)."""

    arrived: int = 0
    finished: int = 0
    rejected: int = 0
    in_flight: int = 0
    late_in_flight: int = 0  # in flight at the end, already past the TTFT SLO
    input_tokens: int = 0
    output_tokens: int = 0
    admitted_input_tokens: int = 0
    cached_tokens: int = 0
    slo_met: int = 0
    ttft_s: list[float] = field(default_factory=list)
    tpot_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ttft = np.asarray(self.ttft_s)
        tpot = np.asarray(self.tpot_s)

        def pct(a: np.ndarray, p: float) -> float | None:
            return float(np.percentile(a, p)) if a.size else None

        decided = self.finished + self.rejected + self.late_in_flight
        return {
            "arrived": self.arrived,
            "finished": self.finished,
            "rejected": self.rejected,
            "in_flight": self.in_flight,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "admitted_input_tokens": self.admitted_input_tokens,
            "cached_tokens": self.cached_tokens,
            "ttft_p50_s": pct(ttft, 50),
            "ttft_p99_s": pct(ttft, 99),
            "tpot_p50_s": pct(tpot, 50),
            "tpot_p99_s": pct(tpot, 99),
            "slo_met": self.slo_met,
            "slo_decided": decided,
        }


@dataclass
class WindowResult:
    fleet: str
    start_h: int
    end_h: int
    rows: dict[tuple[int, int], dict[str, Any]]  # (row, hour) -> Row.summary()
    gpu_hours: list[float]  # per hour of the window
    replicas: list[tuple[float, int, int]]  # (time s, billed, serving) changes
    minute_cached: dict[int, list[int]]  # row -> cached tokens per minute of arrival
    minute_input: dict[int, list[int]]  # row -> admitted prompt tokens per minute
    decisions: list[dict[str, float]]  # autoscaler decisions
    warmups: list[dict[str, float]]
    totals: dict[str, int]
    steps: int
    wall_s: float
    cpu_s: float  # CPU seconds of the process that ran the window (load-independent)
    simulated_requests: int
    requests: list[Request] = field(default_factory=list)  # finished, if kept


class WindowSim:
    """One fleet, one window (see the module docstring)."""

    def __init__(self, task: WindowTask) -> None:
        s = task.scenario
        self.task = task
        self.s = s
        self.spec = s.fleets.source if task.fleet == SOURCE else s.fleets.target
        self.deployed = build_deployed(s, task.fleet)
        d = self.deployed.deployment
        self.config, _ = replica_config(
            self.deployed,
            block_tokens=s.block_tokens,
            max_num_seqs=d.max_num_seqs,
            max_batched_tokens=d.max_batched_tokens,
            queue_timeout_s=self.spec.queue_timeout_s,
            admission_watermark=0.01,
            host_tier=self.spec.host_tier,
            enable_prefix_cache=self.spec.prefix_cache,
            fast=s.simulation.fast,
        )
        self.start_s = task.start_h * SECONDS_PER_HOUR
        self.end_s = task.end_h * SECONDS_PER_HOUR
        self.t0 = self.start_s - task.lead_s
        self.env = simpy.Environment(initial_time=self.t0)
        self.fleet = Fleet(self.env, self.deployed, self.config, self.spec.router, self._finished)
        self.view = FleetView(s, task.fleet, self.deployed.model.max_context_tokens)
        self.classes = s.traffic.classes
        self.n = len(self.classes)
        self.slos: list[SLOSpec] = [c.slo for c in self.classes]
        self.rows: dict[tuple[int, int], Row] = {}
        minutes = round((self.end_s - self.start_s) / SECONDS_PER_MINUTE)
        self.minute_cached = {r: [0] * minutes for r in range(3 * self.n)}
        self.minute_input = {r: [0] * minutes for r in range(3 * self.n)}
        self.live: dict[int, Request] = {}
        self.decisions: list[dict[str, float]] = []
        self.warmups: list[dict[str, float]] = []
        self.sizer = Sizer(self.deployed)
        self.simulated = 0
        self.kept: list[Request] = []
        # The autoscaler's view of the last interval.
        self._interval_arrivals = 0
        self._interval_input = 0
        self._interval_output = 0
        self._interval_admitted_input = 0
        self._interval_cached = 0
        self._interval_finished = [0] * self.n
        self._interval_late = [0] * self.n
        self.correction = 1.0
        self._late_history: list[tuple[list[int], list[int]]] = []
        self._recent_desired: list[tuple[float, int]] = []
        self._autoscale: AutoscaleReplicas | None = None
        self._cpu_started = 0.0

    # ------------------------------------------------------------------ metrics
    def _row(self, request: Request) -> tuple[int, int] | None:
        if request.arrival_s < self.start_s or request.arrival_s >= self.end_s:
            return None
        return request.class_index, int(request.arrival_s // SECONDS_PER_HOUR)

    def _slo(self, request: Request) -> SLOSpec:
        return self.slos[request.class_index % self.n]

    def _count_admitted(self, request: Request) -> None:
        key = self._row(request)
        if key is None or not request.admitted_once:
            return
        row = self.rows[key]
        row.admitted_input_tokens += request.input_tokens
        row.cached_tokens += request.cached_tokens
        minute = int((request.arrival_s - self.start_s) // SECONDS_PER_MINUTE)
        self.minute_cached[request.class_index][minute] += request.cached_tokens
        self.minute_input[request.class_index][minute] += request.input_tokens

    def _finished(self, request: Request, now: float) -> None:
        self.live.pop(request.rid, None)
        if self.task.keep_requests:
            self.kept.append(request)
        self._interval_admitted_input += request.input_tokens
        self._interval_cached += request.cached_tokens
        c = request.class_index % self.n
        self._interval_finished[c] += 1
        if request.first_token_s - request.arrival_s > self.slos[c].ttft_s:
            self._interval_late[c] += 1
        key = self._row(request)
        if key is not None:
            row = self.rows[key]
            row.finished += 1
            row.output_tokens += request.output_tokens
            ttft = request.first_token_s - request.arrival_s
            tpot = (
                (request.finish_s - request.first_token_s) / (request.output_tokens - 1)
                if request.output_tokens > 1
                else math.nan
            )
            row.ttft_s.append(ttft)
            if tpot == tpot:
                row.tpot_s.append(tpot)
            slo = self._slo(request)
            if ttft <= slo.ttft_s and (tpot != tpot or tpot <= slo.tpot_s):
                row.slo_met += 1
            self._count_admitted(request)
        follow = self.view.next_turn(request, now, self.end_s)
        if follow is not None:
            self.env.process(self._delayed(follow))

    # ------------------------------------------------------------------ arrivals
    def _arrivals(self, requests: Iterator[Request]) -> Generator[simpy.Event, Any, None]:
        for request in requests:
            if request.arrival_s > self.env.now:
                yield self.env.timeout(request.arrival_s - self.env.now)
            self._arrive(request)

    def _delayed(self, request: Request) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(request.arrival_s - self.env.now, 0.0))
        self._arrive(request)

    def _arrive(self, request: Request) -> None:
        self.simulated += 1
        key = self._row(request)
        if key is not None:
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = Row()
            row.arrived += 1
            row.input_tokens += request.input_tokens
        self._interval_arrivals += 1
        self._interval_input += request.input_tokens
        self._interval_output += request.output_tokens
        total = request.input_tokens + request.output_tokens
        cfg = self.config
        if total > self.deployed.model.max_context_tokens:
            self._reject(request, REJECT_TOO_LONG_FOR_MODEL)
        elif cfg.state_blocks + -(-total // cfg.block_tokens) > cfg.total_blocks:
            self._reject(request, REJECT_TOO_LONG_FOR_KV)
        else:
            self.live[request.rid] = request
            self.fleet.submit(request)

    def _reject(self, request: Request, reason: str) -> None:
        request.state = REJECTED
        request.reject_reason = reason
        request.finish_s = self.env.now
        self.view.end_session(request)
        key = self._row(request)
        if key is not None:
            self.rows[key].rejected += 1

    # ------------------------------------------------------------------ replicas
    def _apply(self, span: PolicySpan, at_start: bool) -> None:
        policy = span.policy
        delay = self.spec.provisioning_delay_s
        # Replicas asked for before the window are already up (or come up on schedule);
        # the source's replicas at hour 0 served before the migration began.
        if not at_start:
            ready = None
        elif self.task.fleet == SOURCE and span.start_s <= 0.0:
            ready = self.env.now
        else:
            ready = max(self.env.now, span.start_s + delay)
        self._autoscale = policy if isinstance(policy, AutoscaleReplicas) else None
        if self._autoscale is not None:
            count = (
                self.task.replicas_at_start
                if at_start
                else max(self._autoscale.min_replicas, len(self.fleet.live))
            )
            count = min(max(count, self._autoscale.min_replicas), self._autoscale.max_replicas)
            # The count asked for is a decision: a scale-down below it waits the delay.
            self._recent_desired = [(self.env.now, count)]
        else:
            count = fixed_count(policy, self.task.sized_replicas)
        self.fleet.scale_to(count, delay, ready)
        if at_start:
            # The fleet was billed from its ask (before the window): date the slots back.
            for slot in self.fleet.slots:
                slot.asked_s = min(slot.asked_s, max(span.start_s, 0.0))

    def _policies(self) -> Generator[simpy.Event, Any, None]:
        spans = policy_spans(self.s, self.task.fleet)
        # A window may start before hour 0 (the source's warm-up lead): the source's policy
        # at hour 0 was in force before the migration began.
        started = max(self.t0, 0.0)
        current = [sp for sp in spans if sp.start_s <= started]
        if current:
            self._apply(current[-1], at_start=True)
        for span in spans:
            if span.start_s <= started:
                continue
            yield self.env.timeout(span.start_s - self.env.now)
            self._apply(span, at_start=False)

    def _autoscaler(self) -> Generator[simpy.Event, Any, None]:
        """Every interval (on the grid k x interval from hour 0), size for the last
        interval's demand while an autoscale policy is in force."""
        interval = self._interval_s()
        if interval is None:
            return
        next_s = math.ceil(self.env.now / interval) * interval
        last_s = self.env.now
        while True:
            yield self.env.timeout(max(next_s - self.env.now, 0.0))
            self.fleet.check_drained()
            self._decide(self.env.now - last_s)
            last_s = self.env.now
            next_s += interval

    def _interval_s(self) -> float | None:
        for span in policy_spans(self.s, self.task.fleet):
            if isinstance(span.policy, AutoscaleReplicas):
                return span.policy.interval_s
        return None

    def _decide(self, elapsed_s: float) -> None:
        arrivals = self._interval_arrivals
        policy = self._autoscale
        if policy is not None and elapsed_s > 0:
            if arrivals:
                hit = (
                    self._interval_cached / self._interval_admitted_input
                    if self._interval_admitted_input
                    else 0.0
                )
                demand = Demand(
                    arrivals / elapsed_s,
                    self._interval_input / arrivals,
                    self._interval_output / arrivals,
                    hit,
                    min(slo.tpot_s for slo in self.slos),
                    min(slo.ttft_s for slo in self.slos),
                )
                planned = self.sizer.replicas_or(
                    demand, policy.target_utilisation, len(self.fleet.live)
                )
                # Requests still queued past their class's TTFT SLO are late already.
                queued = [0] * self.n
                now = self.env.now
                for e in self.fleet.engines():
                    for r in e.waiting:
                        c = r.class_index % self.n
                        queued[c] += now - r.arrival_s > self.slos[c].ttft_s
                for r in self.fleet.pending:
                    c = r.class_index % self.n
                    queued[c] += now - r.arrival_s > self.slos[c].ttft_s
                self._late_history.append((self._interval_late, self._interval_finished))
                self._late_history = self._late_history[-SLO_INTERVALS:]
                late = worst_late_share(
                    [sum(h[0][c] for h in self._late_history) + queued[c] for c in range(self.n)],
                    [sum(h[1][c] for h in self._late_history) + queued[c] for c in range(self.n)],
                )
                provisioning = any(not slot.serving for slot in self.fleet.live)
                before = self.correction
                self.correction = next_correction(before, late, provisioning)
                if self.correction > before:
                    self._late_history = []  # these late requests have been acted on
                wanted = wanted_count(planned, self.correction, True, policy)
            else:
                demand = Demand(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                wanted = wanted_count(0, self.correction, False, policy)
            now = self.env.now
            self._recent_desired.append((now, wanted))
            self._recent_desired = [
                (t, w) for t, w in self._recent_desired if t > now - policy.scale_down_delay_s
            ]
            live = len(self.fleet.live)
            target = wanted if wanted > live else max(w for _, w in self._recent_desired)
            if target != live:
                self.fleet.scale_to(target, self.spec.provisioning_delay_s)
            self.decisions.append(
                {
                    "time_s": now,
                    "requests_per_s": demand.requests_per_s,
                    "mean_input_tokens": demand.mean_input_tokens,
                    "prefix_hit_ratio": demand.prefix_hit_ratio,
                    "wanted": float(wanted),
                    "correction": self.correction,
                    "replicas": float(len(self.fleet.live)),
                }
            )
        self._interval_arrivals = self._interval_input = self._interval_output = 0
        self._interval_admitted_input = self._interval_cached = 0
        self._interval_finished = [0] * self.n
        self._interval_late = [0] * self.n

    # ------------------------------------------------------------------ warm-up
    def _warmups(self) -> Generator[simpy.Event, Any, None]:
        if self.task.fleet != TARGET:
            return
        for cut in self.s.cutovers:
            at_s = cut.at_h * SECONDS_PER_HOUR
            if cut.warmup_top_n <= 0 or not self.t0 <= at_s < self.end_s:
                continue
            yield self.env.timeout(max(at_s - self.env.now, 0.0))
            self._warm(self.s.traffic.class_index(cut.class_name), cut.warmup_top_n)

    def _warm(self, class_index: int, top_n: int) -> None:
        cls = self.classes[class_index]
        system = self.view.system_tokens(class_index)
        bs = self.s.block_tokens
        variants = min(top_n, cls.system_prompt_variants)
        blocks = system // bs
        if blocks == 0:
            return
        count = 0
        rid = WARMUP_RID_OFFSET + int(self.env.now) * 1_000_000
        for engine in list(self.fleet.accepting):
            for v in range(variants):
                keys = self.view.shared_prefix_keys(class_index, v)[:blocks]
                request = Request(
                    rid=rid + count,
                    arrival_s=self.env.now,
                    input_tokens=blocks * bs + 1,
                    output_tokens=1,
                    class_index=class_index + 2 * self.n,
                    block_keys=keys,
                )
                count += 1
                key = self._row(request)
                if key is not None:
                    row = self.rows.setdefault(key, Row())
                    row.arrived += 1
                    row.input_tokens += request.input_tokens
                self.live[request.rid] = request
                engine.submit(request)
        self.warmups.append(
            {
                "time_s": self.env.now,
                "class_index": float(class_index),
                "requests": float(count),
                "prompt_tokens": float(count * (blocks * bs + 1)),
            }
        )

    # ------------------------------------------------------------------ run
    def run(self) -> WindowResult:
        started = time.perf_counter()
        self._cpu_started = time.process_time()
        env = self.env
        env.process(self._policies())
        env.process(self._arrivals(stream(self.view, self.t0, self.end_s)))
        env.process(self._autoscaler())
        env.process(self._warmups())
        drain = self.s.simulation.drain_s
        env.run(until=self.end_s + drain)
        self.fleet.finalize(env.now)
        self.fleet.check_drained()
        return self._result(time.perf_counter() - started)

    def _result(self, wall_s: float) -> WindowResult:
        end = self.env.now
        for request in list(self.live.values()):
            key = self._row(request)
            if key is None:
                continue
            row = self.rows[key]
            if request.state == REJECTED:
                row.rejected += 1
            elif request.state != FINISHED:
                row.in_flight += 1
                self._count_admitted(request)
                first = request.first_token_s
                waited = (first if first == first else end) - request.arrival_s
                if waited > self._slo(request).ttft_s:
                    row.late_in_flight += 1
        totals = {"arrived": 0, "finished": 0, "rejected": 0, "in_flight": 0}
        for row in self.rows.values():
            for k in totals:
                totals[k] += getattr(row, k)
        if totals["arrived"] != totals["finished"] + totals["rejected"] + totals["in_flight"]:
            raise AssertionError(f"request conservation violated in window: {totals}")
        hours = range(self.task.start_h, self.task.end_h)
        gpus = self.deployed.gpus
        gpu_hours = [
            sum(
                slot.billed_s(h * SECONDS_PER_HOUR, (h + 1) * SECONDS_PER_HOUR)
                for slot in self.fleet.slots
            )
            * gpus
            / SECONDS_PER_HOUR
            for h in hours
        ]
        steps = sum(e.steps for e in self.fleet.engines())
        return WindowResult(
            fleet=self.task.fleet,
            start_h=self.task.start_h,
            end_h=self.task.end_h,
            rows={k: r.summary() for k, r in sorted(self.rows.items())},
            gpu_hours=gpu_hours,
            replicas=self.fleet.changes,
            minute_cached=self.minute_cached,
            minute_input=self.minute_input,
            decisions=self.decisions,
            warmups=self.warmups,
            totals=totals,
            steps=steps,
            wall_s=wall_s,
            cpu_s=time.process_time() - self._cpu_started,
            simulated_requests=self.simulated,
            requests=self.kept,
        )


def simulate_window(task: WindowTask) -> WindowResult:
    """Run one window (a module-level function, so Dask workers can call it)."""
    return WindowSim(task).run()
