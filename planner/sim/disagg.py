"""Disaggregated prefill and decode in the simulator: two pools, a KV transfer between them.

A request arrives at the prefill pool's router, which keeps one first-come-first-served
queue and hands a prompt to an engine (one per attention-DP group of each prefill replica)
whose prefill backlog is under its token budget: a prompt at least one budget long is
prefilled alone, as the M/D/c queue of ``planner.plan.disagg`` assumes, and shorter
prompts share steps. When the prompt's last chunk is done (the first token is sampled),
its blocks go back to the prefill engine's pool (the prompt stays in its prefix cache) and
its KV cache travels to the decode pool: ``kv_transfer_s`` from the planner (bytes per
GPU over the scale-up link when both pools fit in one scale-up domain, the scale-out
network otherwise). Then the decode pool's router (the scenario's policy) picks an engine,
which admits the request as soon as its blocks fit and decodes it (with MTP drafts when its
deployment says so). The first token reaches the user when the transfer completes, so TTFT
= queueing + prefill + transfer, the quantity the planner sizes.

Not modelled: contention between transfers for a link (each transfer has its own), the
prefill engine keeping the KV until the decode engine has read it, and faults.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.disagg import kv_transfer_s, link_bytes_per_s, scale_up_domain_gpus
from planner.plan.perf import StepModel
from planner.schema import PoolSpec, Scenario
from planner.sim.cluster import Cluster, attach_mtp, replica_config
from planner.sim.metrics import TimeSeries
from planner.sim.replica import Replica, ReplicaConfig, link_dp_groups
from planner.sim.request import REJECT_TOO_LONG_FOR_KV, REJECT_TOO_LONG_FOR_MODEL, Request
from planner.sim.router import Router
from planner.sim.workload import Workload


class DisaggCluster(Cluster):
    """The simulated cluster with a prefill pool and a decode pool (see the module)."""

    def __init__(self, scenario: Scenario, workload: Workload, fast: bool) -> None:
        spec = scenario.disaggregation
        assert spec is not None
        self.scenario = scenario
        self.workload = workload
        self.env = simpy.Environment()
        model = resolve_model(scenario.model)
        self.prefill_deployed = self._deployed(model, spec.prefill, scenario.gpu)
        self.decode_deployed = self._deployed(model, spec.decode, scenario.gpu)
        self.deployed = self.decode_deployed
        self.prefill_engines, self.prefill_config = self._pool(
            spec.prefill, self.prefill_deployed, fast, 0
        )
        self.decode_engines, self.decode_config = self._pool(
            spec.decode, self.decode_deployed, fast, len(self.prefill_engines)
        )
        for engine in self.prefill_engines:
            engine.on_prefilled = self._prefilled
        decode_steps = self.decode_engines[0].step_model
        attach_mtp(self.decode_engines, self.decode_deployed, decode_steps, scenario.seed)
        self.config = self.decode_config
        self.replicas = self.prefill_engines + self.decode_engines
        self.groups_per_replica = 1  # faults are refused with disaggregation
        self.router = Router(scenario.router, self.decode_engines)
        self.link_bytes_per_s = self._link(spec.prefill, spec.decode)
        self.requests: list[Request] = []
        self.pending: list[Request] = []  # the prefill pool's first-come-first-served queue
        self.in_transfer: set[int] = set()
        self.series = TimeSeries()
        self.end_s = scenario.end_s
        self._activity = self.env.event()
        self.env.process(self._arrivals(workload.requests()))
        for at_s in scenario.prefix_cache.invalidate_at_s:
            self.env.process(self._invalidate(at_s))
        self.env.process(self._sampler())

    # ------------------------------------------------------------------ building
    @staticmethod
    def _deployed(model: Any, pool: PoolSpec, default_gpu: str) -> Deployed:
        return Deployed.build(model, load_gpu(pool.gpu or default_gpu), pool.deployment)

    def _pool(
        self, pool: PoolSpec, deployed: Deployed, fast: bool, first_index: int
    ) -> tuple[list[Replica], ReplicaConfig]:
        scenario = self.scenario
        cache = scenario.prefix_cache
        d = deployed.deployment
        config, _ = replica_config(
            deployed,
            block_tokens=scenario.block_tokens,
            max_num_seqs=d.max_num_seqs,
            max_batched_tokens=d.max_batched_tokens,
            queue_timeout_s=scenario.queue_timeout_s,
            admission_watermark=scenario.admission_watermark,
            host_tier=cache.host_tier,
            enable_prefix_cache=cache.enabled,
            fast=fast,
        )
        step_model = StepModel(deployed, per_group=deployed.attention_dp > 1)
        engines = [
            Replica(first_index + i, self.env, config, step_model, self._on_finish)
            for i in range(pool.replicas * deployed.attention_dp)
        ]
        link_dp_groups(engines, deployed.attention_dp)
        return engines, config

    def _link(self, prefill: PoolSpec, decode: PoolSpec) -> float:
        """The planner's rule: the scale-up link when both pools are one GPU type and fit
        in one scale-up domain, the scale-out network otherwise."""
        p, d = self.prefill_deployed, self.decode_deployed
        gpus = prefill.replicas * p.gpus + decode.replicas * d.gpus
        domain = scale_up_domain_gpus(p) or 0
        same = p.gpu.name == d.gpu.name and gpus <= domain
        return link_bytes_per_s(p, same)

    @property
    def gpus_total(self) -> int:
        spec = self.scenario.disaggregation
        assert spec is not None
        return (
            spec.prefill.replicas * self.prefill_deployed.gpus
            + spec.decode.replicas * self.decode_deployed.gpus
        )

    @property
    def usd_per_hour(self) -> float:
        spec = self.scenario.disaggregation
        assert spec is not None
        return (
            spec.prefill.replicas
            * self.prefill_deployed.gpus
            * self.prefill_deployed.gpu.price_usd_per_hour
            + spec.decode.replicas
            * self.decode_deployed.gpus
            * self.decode_deployed.gpu.price_usd_per_hour
        )

    # ------------------------------------------------------------------ requests
    def _arrive(self, request: Request) -> None:
        self.requests.append(request)
        if not self._activity.triggered:
            self._activity.succeed()
        total = request.input_tokens + request.output_tokens
        if total > self.deployed.model.max_context_tokens:
            self._reject(request, REJECT_TOO_LONG_FOR_MODEL)
            return
        for config in (self.prefill_config, self.decode_config):
            if config.state_blocks + -(-total // config.block_tokens) > config.total_blocks:
                self._reject(request, REJECT_TOO_LONG_FOR_KV)
                return
        self.pending.append(request)
        self._dispatch()

    def _route(self, request: Request) -> None:
        """Re-routing (after a fault) is not simulated with disaggregation."""
        self.pending.append(request)
        self._dispatch()

    @staticmethod
    def _prefill_backlog(engine: Replica) -> int:
        """Prompt tokens an engine still has to prefill."""
        running = sum(r.prefill_target - r.computed_tokens for r in engine.running)
        return running + sum(r.input_tokens + r.generated for r in engine.waiting)

    def _dispatch(self) -> None:
        """Hand queued prompts, oldest first, to engines with room in their token budget
        (the least backlogged first)."""
        while self.pending:
            room = [
                e
                for e in self.prefill_engines
                if e.up and self._prefill_backlog(e) < e.config.max_batched_tokens
            ]
            if not room:
                return
            engine = min(room, key=lambda e: (self._prefill_backlog(e), e.index))
            engine.submit(self.pending.pop(0))

    def _prefilled(self, request: Request, now: float) -> None:
        self.in_transfer.add(request.rid)
        self.env.process(self._transfer(request))
        self._dispatch()

    def _transfer(self, request: Request) -> Generator[simpy.Event, Any, None]:
        seconds = kv_transfer_s(
            self.prefill_deployed,
            self.decode_deployed,
            request.input_tokens,
            self.link_bytes_per_s,
        )
        yield self.env.timeout(seconds)
        self.in_transfer.discard(request.rid)
        request.first_token_s = self.env.now  # the user sees it once the cache arrived
        request.kv_ready = True
        engine = self.router.choose(request, self.env.now)
        assert engine is not None, "decode engines do not fail in disaggregated runs"
        engine.submit(request)

    # ------------------------------------------------------------------ checks
    def _idle(self) -> bool:
        return not self.in_transfer and super()._idle()

    def in_flight(self) -> int:
        return super().in_flight() + len(self.in_transfer)
