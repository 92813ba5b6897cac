"""What a migration scenario says: two fleets, traffic classes, phases and prices.

A migration moves production traffic from a *source* fleet (e.g. DeepSeek-V3.2) to a
*target* fleet (e.g. DeepSeek-V4-Flash) one workload class at a time. The scenario YAML is
validated here (frozen pydantic models, unknown fields refused, every number bounded);
cross-field rules that need the catalog (reasoning modes a model serves, whether a fleet
can hold one request of a class) live in :mod:`planner.migrate.checks`.

Times on the migration's timeline are hours from its start (``at_h``); short durations are
seconds. Token counts of a class are written in *source* tokens; the target's counts follow
from the class's tokenizer ratio (target tokens per source token for the same text).
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from planner import limits as lim
from planner.schema import (
    Deployment,
    Distribution,
    Frozen,
    HostTierSpec,
    Label,
    ReasoningMode,
    ReasoningModeSpec,
    SessionSpec,
    SLOSpec,
)

# Bounds of a migration (wide room above real plans; see planner/limits.py for the style).
MAX_MIGRATION_HOURS = 24 * 90  # a quarter; the articles plan two to three weeks
MAX_MIGRATION_RATE_PER_S = 10_000.0
HOURS_PER_DAY = 24.0
SECONDS_PER_HOUR = 3600.0
Hours = Annotated[float, Field(ge=0, le=MAX_MIGRATION_HOURS)]
Percent = Annotated[float, Field(gt=0, le=100, description="percent, 0 < x <= 100")]


# --------------------------------------------------------------------------- fleets
class FixedReplicas(Frozen):
    """A fixed number of replicas while the fleet is up."""

    policy: Literal["fixed"] = "fixed"
    count: int = Field(ge=1, le=lim.MAX_REPLICAS, description="replicas while the fleet is up")


class SizedReplicas(Frozen):
    """Replicas sized once by the planner (``kvplan plan --rate``) for the traffic the fleet
    will carry at its peak hour, times ``headroom``; fixed from then on."""

    policy: Literal["sized"] = "sized"
    headroom: float = Field(1.0, ge=1.0, le=10.0, description="multiply the planned count")
    assumed_prefix_hit_ratio: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of prompt tokens the sizing assumes cached"
    )


class AutoscaleReplicas(Frozen):
    """Replicas follow the measured demand: every ``interval_s`` the planner sizes the fleet
    for the last interval's request rate divided by ``target_utilisation``, with its mean
    prompt, cached share and answer lengths (``size_replicas``), times a correction learned
    from the SLO, class by class: raised 25% when more than 1% of any one class's requests
    over the last three intervals missed that class's TTFT SLO or are still queued past it
    (every class's TTFT p99 held; not while replicas are still provisioning), decaying 3%
    per interval while every class has under 0.25% late (where the planner finds the SLO
    out of reach the count stays). New replicas serve after the
    fleet's provisioning delay; a scale-down waits until every decision of the last
    ``scale_down_delay_s`` agreed, and the removed replicas drain before they stop billing."""

    policy: Literal["autoscale"] = "autoscale"
    min_replicas: int = Field(1, ge=1, le=lim.MAX_REPLICAS)
    max_replicas: int = Field(ge=1, le=lim.MAX_REPLICAS)
    target_utilisation: float = Field(
        0.8, gt=0.05, le=1.0, description="plan for measured rate / this (headroom)"
    )
    interval_s: float = Field(300.0, ge=30.0, le=3600.0, description="seconds between decisions")
    scale_down_delay_s: float = Field(
        900.0, ge=0.0, le=86_400.0, description="stabilisation window before scaling down"
    )

    @model_validator(mode="after")
    def _ordered(self) -> AutoscaleReplicas:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})"
            )
        return self


ReplicaPolicy = Annotated[
    FixedReplicas | SizedReplicas | AutoscaleReplicas, Field(discriminator="policy")
]


class APIPriceSpec(Frozen):
    """API list prices for the same traffic (USD per million tokens), with their source."""

    usd_per_million_input_tokens: float = Field(ge=0, le=1e4)
    usd_per_million_output_tokens: float = Field(ge=0, le=1e4)
    usd_per_million_cached_input_tokens: float = Field(ge=0, le=1e4)
    source: str = Field(min_length=1, max_length=1000, description="where the prices come from")


class FleetSpec(Frozen):
    """One model served on one GPU type."""

    model: Label = Field(description="catalog model name (kvplan model list)")
    gpu: Label = Field(description="GPU profile name (kvplan gpu list)")
    deployment: Deployment = Deployment()
    replicas: ReplicaPolicy
    provisioning_delay_s: float = Field(
        600.0,
        ge=0.0,
        le=86_400.0,
        description="from asking for a replica to its serving (node, weights, warm-up); "
        "billed from the ask",
    )
    router: Literal["round_robin", "least_outstanding_tokens", "prefix_affinity", "cache_aware"] = (
        Field(
            "cache_aware",
            description="cache_aware: longest cached prefix unless the load is imbalanced "
            "(SGLang router); see planner/sim/router.py",
        )
    )
    usd_per_gpu_hour: float | None = Field(
        None, gt=0, le=lim.MAX_USD_PER_GPU_HOUR, description="default: the GPU profile's price"
    )
    prefix_cache: bool = Field(True, description="engine prefix caching on")
    host_tier: HostTierSpec | None = None
    queue_timeout_s: float = Field(60.0, gt=0, le=86_400.0)
    reasoning_modes: dict[ReasoningMode, ReasoningModeSpec] = Field(
        default_factory=dict,
        description="reasoning-token budgets on this fleet's model (default: kvplan's)",
    )
    api_price: APIPriceSpec | None = Field(
        None, description="default: the first complete entry for the model in api_prices.yaml"
    )


class Fleets(Frozen):
    source: FleetSpec
    target: FleetSpec


# --------------------------------------------------------------------------- traffic
class TokenizerRatio(Frozen):
    """Target tokens per source token for the same text: lognormal per request with this
    mean and log-space sigma (shared system prompts use the mean)."""

    mean: float = Field(1.0, ge=0.25, le=4.0)
    sigma: float = Field(0.0, ge=0.0, le=1.0)


class OnSource(Frozen):
    reasoning_mode: ReasoningMode = "non-think"
    keep_reasoning: bool = Field(
        False, description="reasoning kept across agent turns (V3.2 drops it)"
    )


class OnTarget(Frozen):
    reasoning_mode: ReasoningMode = "non-think"
    keep_reasoning: bool = Field(
        True, description="reasoning kept across agent turns (V4 interleaved thinking)"
    )
    tokenizer_ratio: TokenizerRatio = TokenizerRatio()


class MigrationClass(Frozen):
    """A workload class; token counts in source tokens."""

    name: Label
    share_percent: Percent = Field(description="percent of the traffic's requests")
    input_tokens: Distribution = Field(description="the request's own prompt tokens")
    output_tokens: Distribution = Field(description="answer tokens, without reasoning")
    system_prompt_tokens: int = Field(0, ge=0, le=1_048_576, description="shared prefix length")
    system_prompt_variants: int = Field(
        1, ge=1, le=100_000, description="distinct shared prefixes (system prompts, tools)"
    )
    session: SessionSpec | None = Field(
        None, description="multi-turn sessions (keep_reasoning is set per fleet, not here)"
    )
    slo: SLOSpec
    source: OnSource = OnSource()
    target: OnTarget = OnTarget()

    @model_validator(mode="after")
    def _keep_reasoning_per_fleet(self) -> MigrationClass:
        if self.session is not None and "keep_reasoning" in self.session.model_fields_set:
            raise ValueError(
                "session.keep_reasoning is set per fleet here: use source.keep_reasoning "
                "and target.keep_reasoning"
            )
        return self


class Traffic(Frozen):
    """Requests per second over all classes, with an optional daily pattern:
    rate(t) = mean x (1 + daily_amplitude x cos(2 pi (t - peak_hour) / 24 h))."""

    rate_per_s: float = Field(gt=0, le=MAX_MIGRATION_RATE_PER_S, description="mean rate")
    daily_amplitude: float = Field(0.0, ge=0.0, le=1.0)
    peak_hour: float = Field(14.0, ge=0.0, lt=24.0, description="hour of the day of the peak")
    classes: list[MigrationClass] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _shares(self) -> Traffic:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique: {names}")
        total = sum(c.share_percent for c in self.classes)
        if abs(total - 100.0) > 1e-6:
            raise ValueError(
                f"class share_percent values add up to {total:g}%"
                + (" (over 100%)" if total > 100 else "")
                + "; they must add up to 100%"
            )
        return self

    def class_index(self, name: str) -> int:
        return [c.name for c in self.classes].index(name)


# --------------------------------------------------------------------------- phases
class StandUp(Frozen):
    """The target fleet is asked for (billed from here); no traffic yet."""

    kind: Literal["stand_up"] = "stand_up"
    at_h: Hours


class Shadow(Frozen):
    """A mirrored share of the listed classes' requests is also sent to the target (the
    source still answers them): benchmarking on real prompts."""

    kind: Literal["shadow"] = "shadow"
    at_h: Hours
    duration_h: float = Field(gt=0, le=MAX_MIGRATION_HOURS)
    share_percent: Percent
    classes: list[Label] | None = Field(None, description="default: every class")


class Cutover(Frozen):
    """One class moves to the target: its share there ramps linearly from where it was to
    ``to_percent`` over ``ramp_h`` hours; optionally the target is warmed first."""

    kind: Literal["cutover"] = "cutover"
    at_h: Hours
    class_name: Label = Field(alias="class", description="the class that moves")
    ramp_h: float = Field(0.0, ge=0, le=MAX_MIGRATION_HOURS)
    to_percent: Percent = 100.0
    warmup_top_n: int = Field(
        0,
        ge=0,
        le=100_000,
        description="prefill the class's N most used shared prefixes on every target "
        "replica at at_h (their GPU time is charged)",
    )


class RollbackReserve(Frozen):
    """After the last cut-over the source shrinks to ``replicas`` kept for rollback."""

    kind: Literal["rollback_reserve"] = "rollback_reserve"
    at_h: Hours
    replicas: int = Field(ge=1, le=lim.MAX_REPLICAS)
    duration_h: float | None = Field(
        None, gt=0, le=MAX_MIGRATION_HOURS, description="default: until decommission"
    )


class Decommission(Frozen):
    """The source fleet drains and stops billing."""

    kind: Literal["decommission"] = "decommission"
    at_h: Hours


Phase = Annotated[
    StandUp | Shadow | Cutover | RollbackReserve | Decommission, Field(discriminator="kind")
]


class SimulationSpec(Frozen):
    """How the timeline is computed.

    ``full`` simulates every request of both fleets; ``hybrid`` simulates the target from
    each cut-over's (and shadow's) start for ``settle_h`` hours and the source for the hour
    before the first cut-over (each window after a ``lead_h`` warm-up), and computes every
    other hour from the rows those windows measured and the autoscaler's rule
    (:mod:`planner.migrate.hybrid`)."""

    mode: Literal["full", "hybrid"] = "full"
    window_h: float = Field(
        0.0,
        ge=0,
        le=MAX_MIGRATION_HOURS,
        description="split each fleet's simulated stretch into windows of this many hours "
        "(run in parallel; each starts warm after lead_h); 0 = one window",
    )
    lead_h: float = Field(0.5, ge=0, le=24, description="warm-up simulated before a window")
    settle_h: float = Field(
        2.0, gt=0, le=168, description="hybrid: target hours simulated from a cut-over's start"
    )
    drain_s: float = Field(600.0, ge=0, le=86_400, description="simulated after arrivals stop")
    fast: bool = Field(True, description="simulator fast mode (same results as exact)")


class MigrationScenario(Frozen):
    name: Label
    description: str = Field("", max_length=10_000)
    duration_h: float = Field(gt=0, le=MAX_MIGRATION_HOURS)
    start_date: date | None = Field(
        None, description="calendar date of hour 0 (dates the break-even); YYYY-MM-DD"
    )
    seed: int = Field(0, ge=0, le=lim.MAX_SEED)
    block_tokens: int = Field(512, ge=16, le=lim.MAX_BLOCK_TOKENS)
    fleets: Fleets
    traffic: Traffic
    phases: list[Phase] = Field(min_length=1, max_length=1000)
    simulation: SimulationSpec = SimulationSpec()

    @model_validator(mode="after")
    def _phases(self) -> MigrationScenario:
        check_phases(self)
        return self

    # ------------------------------------------------------------------ derived times
    @property
    def duration_s(self) -> float:
        return self.duration_h * SECONDS_PER_HOUR

    @property
    def stand_up_h(self) -> float:
        return next(p.at_h for p in self.phases if isinstance(p, StandUp))

    @property
    def cutovers(self) -> list[Cutover]:
        return sorted(
            (p for p in self.phases if isinstance(p, Cutover)), key=lambda p: (p.at_h, p.ramp_h)
        )

    @property
    def reserve(self) -> RollbackReserve | None:
        return next((p for p in self.phases if isinstance(p, RollbackReserve)), None)

    @property
    def decommission_h(self) -> float | None:
        """When the source stops billing (decommission, or the reserve's end)."""
        for p in self.phases:
            if isinstance(p, Decommission):
                return p.at_h
        reserve = self.reserve
        if reserve is not None and reserve.duration_h is not None:
            return reserve.at_h + reserve.duration_h
        return None


def _phase_error(index: int, field: str, message: str) -> ValueError:
    return ValueError(f"phases.{index}.{field}: {message}")


def check_phases(s: MigrationScenario) -> None:
    """Order and consistency of the phases (raises ValueError naming phases.N.field)."""
    names = [c.name for c in s.traffic.classes]
    stand_ups = [i for i, p in enumerate(s.phases) if isinstance(p, StandUp)]
    if len(stand_ups) != 1:
        raise ValueError(f"phases: exactly one 'stand_up' phase is needed (found {len(stand_ups)})")
    stand_up = s.phases[stand_ups[0]].at_h
    ready = stand_up + s.fleets.target.provisioning_delay_s / SECONDS_PER_HOUR
    last_cutover_end = 0.0
    reached: dict[str, float] = {}
    for i, p in enumerate(s.phases):
        end = p.at_h + (getattr(p, "duration_h", None) or 0.0) + getattr(p, "ramp_h", 0.0)
        if p.at_h >= s.duration_h or end > s.duration_h:
            raise _phase_error(
                i, "at_h", f"{p.kind} runs to {end:g} h, past duration_h {s.duration_h:g}"
            )
        if isinstance(p, Shadow | Cutover) and p.at_h < ready:
            what = "before stand-up" if p.at_h < stand_up else "before the target is up"
            raise _phase_error(
                i,
                "at_h",
                f"{p.kind} at {p.at_h:g} h is {what} (stand_up at {stand_up:g} h + "
                f"provisioning {s.fleets.target.provisioning_delay_s:g} s = {ready:g} h)",
            )
        if isinstance(p, Shadow) and p.classes is not None:
            for name in p.classes:
                if name not in names:
                    raise _phase_error(i, "classes", f"no class named {name!r} ({names})")
        if isinstance(p, Cutover):
            if p.class_name not in names:
                raise _phase_error(i, "class", f"no class named {p.class_name!r} ({names})")
            before = reached.get(p.class_name, 0.0)
            if p.to_percent <= before:
                raise _phase_error(
                    i,
                    "to_percent",
                    f"{p.to_percent:g}% does not move {p.class_name!r} on (already at {before:g}%)",
                )
            reached[p.class_name] = p.to_percent
            last_cutover_end = max(last_cutover_end, p.at_h + p.ramp_h)
    cutovers = sorted(
        ((p.at_h, p.at_h + p.ramp_h, p.class_name) for p in s.phases if isinstance(p, Cutover)),
    )
    for (a0, a1, name), (b0, _, other) in itertools.pairwise(cutovers):
        if name == other and b0 < a1:
            raise ValueError(
                f"phases: two cut-overs of {name!r} overlap ({a0:g}-{a1:g} h and from {b0:g} h)"
            )
    reserve_i = [i for i, p in enumerate(s.phases) if isinstance(p, RollbackReserve)]
    decom_i = [i for i, p in enumerate(s.phases) if isinstance(p, Decommission)]
    if len(reserve_i) > 1 or len(decom_i) > 1:
        raise ValueError("phases: at most one rollback_reserve and one decommission")
    for i in reserve_i + decom_i:
        p = s.phases[i]
        unmoved = [n for n in names if reached.get(n, 0.0) < 100.0]
        if unmoved:
            raise _phase_error(
                i, "kind", f"{p.kind} while classes {unmoved} are not cut over to 100%"
            )
        if p.at_h < last_cutover_end:
            raise _phase_error(
                i,
                "at_h",
                f"{p.kind} at {p.at_h:g} h is before the last cut-over ends "
                f"({last_cutover_end:g} h)",
            )
    if reserve_i and decom_i:
        reserve = s.phases[reserve_i[0]]
        decom = s.phases[decom_i[0]]
        assert isinstance(reserve, RollbackReserve)
        if decom.at_h < reserve.at_h:
            raise _phase_error(decom_i[0], "at_h", "decommission before the rollback reserve")
        if (
            reserve.duration_h is not None
            and abs(reserve.at_h + reserve.duration_h - decom.at_h) > 1e-9
        ):
            raise _phase_error(
                reserve_i[0],
                "duration_h",
                f"the reserve ends at {reserve.at_h + reserve.duration_h:g} h but "
                f"decommission is at {decom.at_h:g} h (give one of them)",
            )
