"""Checks a migration scenario must pass before anything runs, and the work estimate.

The schema (:mod:`planner.migrate.schema`) checks each field and the phase order; these
checks need the catalog and the planner: every class's reasoning mode must be one its
fleet's model serves (``planner/data/reasoning_modes.yaml``), both deployments must build
and leave room for KV, one long request of every class must fit a fleet that serves it (the
model's context and one engine's KV pool), and its TPOT SLO must be reachable at batch 1.
Each failure is one :class:`~planner.errors.ConfigError` naming the field.

The work estimate counts the requests a run would simulate (open-loop requests over the
simulated hours, times the turns of session classes) and divides by a measured simulator
speed, so a typo (a rate of 2000, a year-long timeline) is refused before it runs for hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from planner.errors import ConfigError, KvplanError
from planner.migrate.schema import MigrationClass, MigrationScenario
from planner.migrate.timeline import SOURCE, TARGET, served_classes
from planner.migrate.traffic import expected_requests
from planner.plan.memory import max_concurrent_sequences, memory_budget
from planner.plan.throughput import check_tpot_reachable, replica_times
from planner.schema import (
    DEFAULT_REASONING_MODES,
    ConstantDist,
    EmpiricalDist,
    Frozen,
    LognormalDist,
    ReasoningMode,
)
from planner.sim.workload import empirical_values
from planner.validation import check_sources, read_document, validate

MODES_FILE = Path(__file__).resolve().parent.parent / "data" / "reasoning_modes.yaml"
# A long request of a class: distributions without a maximum are taken at this quantile.
LONG_QUANTILE_Z = 3.09  # standard normal z of the 99.9th percentile
# Simulated requests per CPU-second of the migration simulator, measured with
# benchmarks/bench_migrate.py on scenarios/migration-v32-to-v4-flash.yaml (977 per CPU-s,
# a 2-core machine shared with other work, 2026-11-25): planning figure for the estimate,
# not a promise.
SIMULATED_REQUESTS_PER_CPU_S = 1_000.0
# A run estimated above this is refused (use the hybrid mode, a shorter timeline, or more
# workers); above WARN_S the command line says how long it will take before starting.
REFUSE_S = 4 * 3600.0
WARN_S = 300.0


class ReasoningModesFile(Frozen):
    models: dict[str, list[ReasoningMode]]
    sources: dict[str, str]


@cache
def reasoning_modes() -> dict[str, list[ReasoningMode]]:
    raw = read_document(MODES_FILE)
    check_sources(raw, MODES_FILE.name)
    return validate(ReasoningModesFile, raw, MODES_FILE.name).models


def modes_of(model: str) -> list[ReasoningMode]:
    """Reasoning modes a model serves (non-think only when it is not listed)."""
    return reasoning_modes().get(model, ["non-think"])


def long_value(dist: ConstantDist | LognormalDist | EmpiricalDist) -> float:
    """A long draw of a distribution: its maximum, or its 99.9th percentile."""
    if isinstance(dist, ConstantDist):
        return dist.value
    if isinstance(dist, LognormalDist):
        mu = math.log(dist.mean) - dist.sigma**2 / 2
        quantile = math.exp(mu + LONG_QUANTILE_Z * dist.sigma)
        return max(dist.min, min(quantile, dist.max if dist.max is not None else quantile))
    return float(empirical_values(dist).max())


def long_request_tokens(s: MigrationScenario, cls: MigrationClass, fleet: str) -> int:
    """Prompt + output tokens of a long request of a class on a fleet (first turn)."""
    spec = s.fleets.source if fleet == SOURCE else s.fleets.target
    on = cls.source if fleet == SOURCE else cls.target
    mode = spec.reasoning_modes.get(on.reasoning_mode) or DEFAULT_REASONING_MODES[on.reasoning_mode]
    ratio = 1.0
    if fleet == TARGET:
        r = cls.target.tokenizer_ratio
        ratio = r.mean * math.exp(LONG_QUANTILE_Z * r.sigma)
    text = long_value(cls.input_tokens) + long_value(cls.output_tokens)
    system = cls.system_prompt_tokens * (cls.target.tokenizer_ratio.mean if fleet == TARGET else 1)
    return math.ceil(
        system + text * ratio + long_value(mode.reasoning_tokens) + mode.extra_system_prompt_tokens
    )


def check_scenario(s: MigrationScenario, where: str) -> None:
    """Raise a ConfigError naming the first field that cannot work."""
    from planner.migrate.simulate import build_deployed

    for i, cls in enumerate(s.traffic.classes):
        for fleet, on in ((SOURCE, cls.source), (TARGET, cls.target)):
            spec = s.fleets.source if fleet == SOURCE else s.fleets.target
            served = modes_of(spec.model)
            if on.reasoning_mode not in served:
                raise ConfigError(
                    f"{spec.model} has no {on.reasoning_mode!r} reasoning mode",
                    where=where,
                    field=f"traffic.classes.{i}.{fleet}.reasoning_mode",
                    value=on.reasoning_mode,
                    expected="one of " + ", ".join(served),
                )
    for fleet in (SOURCE, TARGET):
        spec = s.fleets.source if fleet == SOURCE else s.fleets.target
        try:
            deployed = build_deployed(s, fleet)
            budget = memory_budget(deployed)
        except KvplanError as err:
            raise ConfigError(str(err), where=where, field=f"fleets.{fleet}") from None
        for i in served_classes(s, fleet):
            cls = s.traffic.classes[i]
            tokens = long_request_tokens(s, cls, fleet)
            field = f"traffic.classes.{i}"
            if tokens > deployed.model.max_context_tokens:
                raise ConfigError(
                    f"a long request of class {cls.name!r} ({tokens:,} tokens on the {fleet}) "
                    f"exceeds {spec.model}'s context of {deployed.model.max_context_tokens:,}",
                    where=where,
                    field=f"{field}.input_tokens",
                    expected="shorter prompts or answers (a max on the distributions)",
                )
            if int(max_concurrent_sequences(deployed, tokens, budget)) < 1:
                raise ConfigError(
                    f"the {fleet} fleet cannot hold one request of class {cls.name!r} "
                    f"({tokens:,} tokens) in one engine's KV pool",
                    where=where,
                    field=f"fleets.{fleet}.deployment",
                    expected="more GPUs per replica, or shorter requests",
                )
            mean_tokens = max(1, tokens // 4)
            try:
                times = replica_times(deployed, mean_tokens, max(1, mean_tokens // 8))
                check_tpot_reachable(times, cls.slo.tpot_s)
            except KvplanError as err:
                if err.field == "tpot_slo_s":
                    raise ConfigError(
                        f"on the {fleet} fleet: {err}",
                        where=where,
                        field=f"{field}.slo.tpot_s",
                        value=cls.slo.tpot_s,
                    ) from None


@dataclass(frozen=True)
class WorkEstimate:
    simulated_hours: float
    requests: float  # requests the run would simulate, both fleets, follow-ups included
    cpu_s: float
    workers: int

    @property
    def wall_s(self) -> float:
        return self.cpu_s / max(1, self.workers)


def _turns(cls: MigrationClass) -> float:
    if cls.session is None:
        return 1.0
    dist = cls.session.turns
    if isinstance(dist, ConstantDist):
        return max(1.0, dist.value)
    if isinstance(dist, LognormalDist):
        return max(1.0, dist.mean)
    return max(1.0, float(empirical_values(dist).mean()))


def estimate_work(
    s: MigrationScenario, hours: list[tuple[float, float]], workers: int
) -> WorkEstimate:
    """What simulating these (start_h, end_h) stretches (leads included) would take. Each
    request is simulated on the one fleet it goes to (mirrored copies aside), so the
    stretches of both fleets count once where they overlap."""
    share = sum(c.share_percent / 100 * _turns(c) for c in s.traffic.classes)
    merged: list[list[float]] = []
    for a, b in sorted((max(0.0, a), b) for a, b in hours):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    requests = sum(expected_requests(s, a, b) for a, b in merged) * share
    simulated = sum(b - a for a, b in merged)
    return WorkEstimate(simulated, requests, requests / SIMULATED_REQUESTS_PER_CPU_S, workers)


def check_work(estimate: WorkEstimate, where: str) -> None:
    if estimate.wall_s > REFUSE_S:
        raise ConfigError(
            f"this run would simulate about {estimate.requests:,.0f} requests, about "
            f"{estimate.wall_s / 3600:.1f} h on {estimate.workers} worker(s); refused "
            f"(limit {REFUSE_S / 3600:.0f} h)",
            where=where,
            field="traffic.rate_per_s",
            expected="a lower rate or a shorter duration_h, simulation.mode: hybrid, or a "
            "Dask cluster (--scheduler) with more workers",
        )
