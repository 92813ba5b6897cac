"""The simulated cluster: replicas, router, arrivals, session follow-ups, faults, cache
invalidations and the time-series sampler, on one SimPy environment.

Conservation is checked when a run ends: every request that arrived is exactly one of
finished, rejected (with a reason), or in flight (queued, running, or waiting for a
replica to come back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from typing import Any

import simpy

from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.memory import memory_budget, sequence_bytes_per_gpu
from planner.plan.mtp import MTPStepTimes
from planner.plan.perf import StepModel
from planner.schema import HostTierSpec, Scenario
from planner.sim.metrics import TimeSeries
from planner.sim.mtp import MTPDecoding
from planner.sim.replica import Replica, ReplicaConfig, link_dp_groups
from planner.sim.request import (
    FINISHED,
    REJECT_TOO_LONG_FOR_KV,
    REJECT_TOO_LONG_FOR_MODEL,
    REJECTED,
    Request,
)
from planner.sim.router import Router
from planner.sim.workload import Workload
from planner.units import GB_BYTES, GIB_BYTES

# Two contexts, multiples of every engine block size, far beyond any sliding window: the
# engine's per-sequence bytes between them grow linearly.
_LINEAR_FROM_TOKENS = 2**20
_LINEAR_TO_TOKENS = 2**21


def block_geometry(deployed: Deployed, block_tokens: int) -> tuple[float, int, int]:
    """(bytes of one block on one GPU, blocks of fixed state per sequence, blocks per
    attention-DP group: a sequence lives in one group's pool), from the same engine-aware
    numbers as ``kvplan plan``: a sequence's bytes in the engine's layout
    (``sequence_bytes_per_gpu``) grow by a fixed amount per token (amortised, so a block
    smaller than a compressed layer's ratio still carries its share of those entries) on
    top of fixed state (sliding windows, compressor state, in the engine's whole pages)."""
    low, high = sequence_bytes_per_gpu(deployed, [_LINEAR_FROM_TOKENS, _LINEAR_TO_TOKENS])
    per_token = float(high - low) / (_LINEAR_TO_TOKENS - _LINEAR_FROM_TOKENS)
    if per_token <= 0:
        raise KvplanError(
            "the model's cache does not grow with context; nothing to page",
            field="block_tokens",
            value=block_tokens,
        )
    fixed = max(float(low) - per_token * _LINEAR_FROM_TOKENS, 0.0)
    block_bytes = per_token * block_tokens
    pool = memory_budget(deployed).kv_pool_bytes
    per_group = math.floor(pool / block_bytes)
    return block_bytes, math.ceil(fixed / block_bytes), per_group


def attach_mtp(
    engines: list[Replica], deployed: Deployed, step_model: StepModel, seed: int
) -> None:
    """With MTP decoding on, give the engines seeded acceptance draws and MTP step times."""
    d = deployed.deployment
    if not d.mtp:
        return
    if deployed.model.spec.mtp is None:
        raise KvplanError(
            "the model has no MTP module",
            field="deployment.mtp",
            value=True,
            expected="mtp: false for this model",
        )
    times = MTPStepTimes(step_model, d.max_num_seqs)
    decoding = MTPDecoding(d.mtp_acceptance_rate, seed, times)
    for engine in engines:
        engine.mtp = decoding


def replica_config(
    deployed: Deployed,
    *,
    block_tokens: int,
    max_num_seqs: int,
    max_batched_tokens: int,
    queue_timeout_s: float,
    admission_watermark: float,
    host_tier: HostTierSpec | None,
    enable_prefix_cache: bool,
    fast: bool,
) -> tuple[ReplicaConfig, float]:
    """The engine settings of one replica's DP group, and the bytes of one block per GPU."""
    bs = block_tokens
    block_bytes, state_blocks, total_blocks = block_geometry(deployed, bs)
    host_blocks = 0
    load_s_per_block = 0.0
    if host_tier is not None:
        # The host tier keeps one copy of a block for all layers (not per TP rank), at the
        # amortised rate block_geometry pages by: a block shorter than a compression ratio
        # still carries its share of the compressed entries (never 0 bytes).
        full_block_bytes = bs * deployed.model.kv_bytes_per_token
        host_blocks = int(host_tier.capacity_gib * GIB_BYTES // full_block_bytes)
        load_s_per_block = full_block_bytes / (host_tier.bandwidth_gb_per_s * GB_BYTES)
    config = ReplicaConfig(
        block_tokens=bs,
        state_blocks=state_blocks,
        total_blocks=total_blocks,
        max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
        queue_timeout_s=queue_timeout_s,
        watermark_blocks=int(admission_watermark * total_blocks),
        host_tier_blocks=host_blocks,
        host_load_s_per_block=load_s_per_block,
        enable_prefix_cache=enable_prefix_cache,
        fast=fast,
    )
    return config, block_bytes


class Cluster:
    def __init__(self, scenario: Scenario, workload: Workload, fast: bool) -> None:
        self.scenario = scenario
        self.workload = workload
        self.env = simpy.Environment()
        model = resolve_model(scenario.model)
        self.deployed = Deployed.build(model, load_gpu(scenario.gpu), scenario.deployment)
        # Each attention-DP group of a replica is its own engine (vLLM: one per DP rank):
        # its own block pool, queue, token budget and max_num_seqs.
        self.groups_per_replica = self.deployed.attention_dp
        self.step_model = StepModel(self.deployed, per_group=self.groups_per_replica > 1)
        cache = scenario.prefix_cache
        self.config, block_bytes = replica_config(
            self.deployed,
            block_tokens=scenario.block_tokens,
            max_num_seqs=scenario.deployment.max_num_seqs,
            max_batched_tokens=scenario.deployment.max_batched_tokens,
            queue_timeout_s=scenario.queue_timeout_s,
            admission_watermark=scenario.admission_watermark,
            host_tier=cache.host_tier,
            enable_prefix_cache=cache.enabled,
            fast=fast,
        )
        self.block_bytes = block_bytes
        # One engine per attention-DP group: replica r owns engines r*DP .. r*DP + DP - 1.
        engines = scenario.replicas * self.groups_per_replica
        self.replicas = [
            Replica(i, self.env, self.config, self.step_model, self._on_finish)
            for i in range(engines)
        ]
        link_dp_groups(self.replicas, self.groups_per_replica)
        attach_mtp(self.replicas, self.deployed, self.step_model, scenario.seed)
        self.router = Router(scenario.router, self.replicas)
        self.requests: list[Request] = []
        self.pending: list[Request] = []  # arrived while every replica was down
        self.series = TimeSeries()
        self.end_s = scenario.end_s
        # Fires when a request arrives: wakes the time-series sampler from an idle sleep.
        self._activity = self.env.event()
        self.env.process(self._arrivals(workload.requests()))
        for fault in scenario.faults:
            first = fault.replica * self.groups_per_replica  # its DP groups fail together
            for engine in range(first, first + self.groups_per_replica):
                self.env.process(self._fault(engine, fault.at_s, fault.duration_s))
        for at_s in cache.invalidate_at_s:
            self.env.process(self._invalidate(at_s))
        self.env.process(self._sampler())

    # ------------------------------------------------------------------ arrivals
    def _arrivals(self, stream: Iterator[Request]) -> Generator[simpy.Event, Any, None]:
        for request in stream:
            if request.arrival_s >= self.end_s:
                return
            if request.arrival_s > self.env.now:
                yield self.env.timeout(request.arrival_s - self.env.now)
            self._arrive(request)

    def _delayed(self, request: Request) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(request.arrival_s - self.env.now, 0.0))
        self._arrive(request)

    def _arrive(self, request: Request) -> None:
        self.requests.append(request)
        if not self._activity.triggered:
            self._activity.succeed()
        total = request.input_tokens + request.output_tokens
        if total > self.deployed.model.max_context_tokens:
            self._reject(request, REJECT_TOO_LONG_FOR_MODEL)
        elif (
            self.config.state_blocks + -(-total // self.config.block_tokens)
            > self.config.total_blocks
        ):
            self._reject(request, REJECT_TOO_LONG_FOR_KV)
        else:
            self._route(request)

    def _reject(self, request: Request, reason: str) -> None:
        request.state = REJECTED
        request.reject_reason = reason
        request.finish_s = self.env.now

    def _route(self, request: Request) -> None:
        replica = self.router.choose(request, self.env.now)
        if replica is None:
            self.pending.append(request)
        else:
            replica.submit(request)

    def _on_finish(self, request: Request, now: float) -> None:
        follow_up = self.workload.next_turn(request, now)
        if follow_up is not None and follow_up.arrival_s < self.end_s:
            self.env.process(self._delayed(follow_up))

    # ------------------------------------------------------------------ events
    def _fault(
        self, index: int, at_s: float, duration_s: float
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(at_s)
        displaced = self.replicas[index].fail(self.env.now)
        for request in displaced:
            self._route(request)
        yield self.env.timeout(duration_s)
        self.replicas[index].recover()
        pending, self.pending = self.pending, []
        for request in pending:
            self._route(request)

    def _invalidate(self, at_s: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(at_s)
        for replica in self.replicas:
            replica.sync(self.env.now)
            replica.pool.invalidate()
            replica.cut()  # freed prefixes can make waiting requests admissible

    def _idle(self) -> bool:
        """No request queued, running or pending anywhere (every block free or evictable)."""
        return not self.pending and all(not r.waiting and not r.running for r in self.replicas)

    def _record(self, now: float, kv: float, queued: int, running: int) -> None:
        self.series.time_s.append(now)
        self.series.kv_utilization.append(kv)
        self.series.queued.append(queued)
        self.series.running.append(running)

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """Sample every interval (on the grid k x interval) while requests are in the
        system. An idle cluster samples as zeros, so the sampler sleeps until the next
        arrival and records the last idle grid point before it: the work is proportional to
        the busy time, not to idle simulated time (a long drain or a sparse trace)."""
        interval = self.scenario.effective_sample_interval_s
        k = 0
        while True:
            now = self.env.now
            for replica in self.replicas:
                replica.sync(now)
            up = [r for r in self.replicas if r.up]
            self._record(
                now,
                sum(r.kv_utilization() for r in up) / len(up) if up else 0.0,
                sum(len(r.waiting) for r in self.replicas) + len(self.pending),
                sum(len(r.running) for r in self.replicas),
            )
            k += 1
            if self._idle():
                self._activity = self.env.event()
                yield self._activity
                # Grid points passed while idle: record the last one (all zeros) so a plot
                # stays flat until the activity, then resume on the grid.
                idle_until = math.floor(self.env.now / interval)
                if idle_until >= k:
                    self._record(idle_until * interval, 0.0, 0, 0)
                k = max(k, idle_until + 1)
            yield self.env.timeout(max(k * interval - self.env.now, 0.0))

    # ------------------------------------------------------------------ running
    def run(self, progress: Callable[[float], None] | None = None, chunks: int = 100) -> None:
        """Simulate to the end time; ``progress`` gets the fraction done after each chunk."""
        for i in range(1, chunks + 1):
            self.env.run(until=self.end_s * i / chunks)
            if progress is not None:
                progress(i / chunks)
        for replica in self.replicas:
            replica.finalize(self.end_s)
        self.check_conservation()

    @property
    def preemptions(self) -> int:
        return sum(r.preemptions for r in self.replicas)

    @property
    def gpus_total(self) -> int:
        return self.scenario.replicas * self.deployed.gpus

    @property
    def usd_per_hour(self) -> float:
        return self.gpus_total * self.deployed.gpu.price_usd_per_hour

    def in_flight(self) -> int:
        """Requests queued or running anywhere (or waiting for a replica to come back)."""
        return sum(len(rep.waiting) + len(rep.running) for rep in self.replicas) + len(self.pending)

    def check_conservation(self) -> None:
        finished = sum(1 for r in self.requests if r.state == FINISHED)
        rejected = [r for r in self.requests if r.state == REJECTED]
        in_flight = self.in_flight()
        if finished + len(rejected) + in_flight != len(self.requests):
            raise AssertionError(
                f"request conservation violated: arrived {len(self.requests)} != finished "
                f"{finished} + rejected {len(rejected)} + in flight {in_flight}"
            )
        if any(not r.reject_reason for r in rejected):
            raise AssertionError("a rejected request has no reason")
