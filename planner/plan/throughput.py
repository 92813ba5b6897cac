"""Throughput, latency estimates and replica count for a target request rate.

Without queueing: TTFT = prefill time of the prompt (the last chunk emits the first token);
TPOT = decode step time / tokens emitted per step per sequence (1 + MTP acceptance).

Sizing for a request rate (per replica: lambda = rate / replicas), with s(B) the decode
step of B sequences at the mean context, t the tokens a step emits per sequence and
p = prefill_time / attention_dp the replica time one request's prefill takes when every
attention-DP group prefills (its full token budget, the capacity figure):
- prefill occupies rho_p = lambda p of the replica's time; decoding sequences are held
  up x(B) per prompt (``planner.plan.prefill.decode_stall_share_s``): where the engine
  runs them in the prefill chunk's own step (vLLM, TensorRT-LLM) only the time the chunk
  adds to that step, otherwise (SGLang's default) the whole p. The TPOT they see is
  s(B) / (t (1 - lambda x(B))). With data-parallel attention the groups step together:
  the held share is H(u, B) of ``planner.plan.lockstep`` (the steps that carry some
  group's prefill, 1 - (1 - u)^DP of the time, u a group's prefill utilisation), a
  nonlinear function of lambda, and every bound below is solved in u (brentq);
- the decode batch follows from Little's law, B = ceil(lambda x output_tokens x TPOT), the
  least fixed point of that equation (both grow together). A batch B holds the load when
  B >= lambda x output x s(B) / (t (1 - lambda x(B))), i.e. up to
      lambda_max(B) = B t / (output s(B) + B t x(B)),
  and meets a TPOT SLO while lambda <= (1 - s(B) / (t SLO)) / x(B); the most a replica can
  take is the largest such lambda over B (vectorised over every B up to the cap), and the
  least B holding a given lambda is its batch;
- a replica count is feasible when TPOT meets the SLO, B fits the KV pool and
  max_num_seqs (per attention-DP engine, as vLLM and SGLang apply it), and rho_p stays
  under PREFILL_UTILISATION_LIMIT (headroom for queueing);
- TTFT is a prompt's prefill D plus the wait of an M/D/1 queue per attention-DP engine
  (``planner.plan.queueing``: mean u / (2 (1 - u)) x D, and any percentile), where D and
  the engine's prefill utilisation u come from ``planner.plan.prefill.prefill_service``:
  a prompt prefilled while fewer DP groups prefill is quicker (its experts and
  all-to-all carry fewer tokens), so D is the lone-prompt time at low load and tends to
  the all-groups time as u -> 1; with a TTFT SLO the count grows until the chosen
  percentile meets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.optimize.elementwise import find_root

from planner.errors import KvplanError
from planner.plan.deployed import Deployed
from planner.plan.lockstep import Lockstep
from planner.plan.memory import MemoryBudget, max_concurrent_sequences, memory_budget
from planner.plan.perf import StepModel, decode_step, step_model
from planner.plan.prefill import (
    cached_prompt_tokens,
    decode_stall_share_s,
    prefill_service,
    prefill_times_by_busy_s,
)
from planner.plan.queueing import mean_wait, wait_quantile

FloatArray = NDArray[np.float64]
# How prefill holds the decodes: per-prompt replica seconds (per batch or one figure), or DP
# groups in lockstep.
Stall = FloatArray | float | Lockstep | None

# Keep prefill under this share of a replica's time: above it, queueing makes TTFT grow
# without bound as arrivals fluctuate (a planning margin, not a measured figure).
PREFILL_UTILISATION_LIMIT = 0.8
MAX_REPLICAS = 100_000
DEFAULT_TTFT_PERCENTILE = 0.9
# Utilisations are rounded up to this step before a queue is solved (a wait percentile
# grows with utilisation, so rounding up errs on the slow side; solved queues are cached).
UTILISATION_STEP = 1e-3
CURVE_CHUNK = 1024  # batches evaluated at once when a curve stops at a TPOT limit
LOCKSTEP_UTILISATION_XTOL = 1e-9  # prefill utilisation (a share)


@dataclass(frozen=True)
class DecodePoint:
    batch: int
    context_tokens: int
    step_time_s: float
    tokens_per_s: float  # per replica
    tpot_s: float
    bound: str
    by_operator_s: dict[str, float] = field(default_factory=dict)  # seconds of one step


def decode_point(deployed: Deployed, batch: int, context_tokens: int) -> DecodePoint:
    step = decode_step(deployed, batch, context_tokens)
    step_s = float(step.time_s)
    per_seq = deployed.tokens_per_step_per_sequence
    return DecodePoint(
        batch,
        context_tokens,
        step_s,
        batch * per_seq / step_s,
        step_s / per_seq,
        step.bound,
        {name: float(t) for name, t in step.by_operator_s.items()},
    )


def decode_times_s(deployed: Deployed, batches: ArrayLike, context_tokens: int) -> FloatArray:
    """decode_step(deployed, B, L).time_s for every B in ``batches`` at one context, in one
    vectorised pass (the same StepModel parts decode_step composes)."""
    model = step_model(deployed)
    b = np.asarray(batches, dtype=np.float64)
    q = deployed.query_tokens_per_step
    timeline = model.linear_timeline(b * q, b if deployed.deployment.mtp else 0.0)
    # One sequence's decode work (q queries in the decode kernels' form), B times.
    scaled = [StepModel.decode_work(kind, [context_tokens], q).scaled(b) for kind, _ in model.kinds]
    timeline.merge(model.attention_timeline(scaled))
    return np.broadcast_to(timeline.result(model.step_overhead_s).time_s, b.shape).astype(
        np.float64
    )


def sequence_cap(deployed: Deployed, context_tokens: int, budget: MemoryBudget) -> int:
    """Most sequences a replica decodes at once: the KV pool at this context, and
    max_num_seqs per attention-DP engine."""
    memory_cap = int(max_concurrent_sequences(deployed, context_tokens, budget))
    return min(memory_cap, deployed.deployment.max_num_seqs * deployed.attention_dp)


@dataclass(frozen=True)
class DecodeCurve:
    """Decode step times of a replica for batches 1..n at one context: n is the sequence
    cap, or (given a TPOT limit) the first batch whose TPOT exceeds it, since no larger
    batch can meet it (step times grow with the batch)."""

    step_s: FloatArray  # index i: batch i + 1
    tokens_per_step: float  # per sequence (1 + MTP acceptance)
    cap: int  # the sequence cap (the curve may stop earlier)

    @classmethod
    def build(
        cls,
        deployed: Deployed,
        context_tokens: int,
        cap: int,
        tpot_limit_s: float | None = None,
    ) -> DecodeCurve:
        per_seq = deployed.tokens_per_step_per_sequence
        cap = max(cap, 0)
        if tpot_limit_s is None:
            steps = decode_times_s(deployed, np.arange(1, cap + 1), context_tokens)
            return cls(steps, per_seq, cap)
        parts: list[FloatArray] = []
        start, size = 1, CURVE_CHUNK
        while start <= cap:
            end = min(start + size, cap + 1)
            chunk = decode_times_s(deployed, np.arange(start, end), context_tokens)
            parts.append(chunk)
            if chunk[-1] / per_seq > tpot_limit_s:
                break
            start, size = end, size * 2
        steps = np.concatenate(parts) if parts else np.zeros(0)
        return cls(steps, per_seq, cap)

    @property
    def batches(self) -> NDArray[np.int64]:
        return np.arange(1, len(self.step_s) + 1)

    def max_rate(
        self,
        output_tokens: int,
        prefill_share_s: float,
        tpot_slo_s: float,
        stall_share_s: Stall = None,
    ) -> float:
        """Most requests/s one replica takes with TPOT <= SLO and its batch within the cap
        (0 when none): max over B of min(lambda_max(B), TPOT bound, utilisation bound).
        ``stall_share_s`` (per B, default ``prefill_share_s``): the replica time one
        prompt's prefill holds the decodes up (``planner.plan.prefill``); a ``Lockstep``
        for DP groups stepping together (``planner.plan.lockstep``)."""
        if not len(self.step_s):
            return 0.0
        if isinstance(stall_share_s, Lockstep):
            return self._lockstep_max_rate(
                output_tokens, prefill_share_s, tpot_slo_s, stall_share_s
            )
        b = self.batches.astype(np.float64)
        t, s, p = self.tokens_per_step, self.step_s, prefill_share_s
        x = self._stall(p, stall_share_s)
        lam = b * t / (output_tokens * s + b * t * x)
        slack = 1.0 - s / (t * tpot_slo_s)
        lam = np.where(x > 0, np.minimum(lam, slack / np.where(x > 0, x, 1.0)), lam)
        if p > 0:
            lam = np.minimum(lam, PREFILL_UTILISATION_LIMIT / p)
        lam = np.where(slack >= 0, lam, 0.0)
        return float(max(np.max(lam), 0.0))

    def _lockstep_max_rate(
        self, output_tokens: int, prefill_share_s: float, tpot_slo_s: float, lock: Lockstep
    ) -> float:
        """``max_rate`` with DP groups in lockstep: every bound is closed form in the groups'
        prefill utilisation u and tightens as u grows, so the largest u some batch allows
        is the root of h(u) = max over B of min(bounds' margins) (brentq), and the rate is
        lambda(u) (``planner.plan.lockstep``)."""
        b = self.batches.astype(np.float64)
        t, s = self.tokens_per_step, self.step_s

        def margin(u: float) -> float:
            rate = float(lock.replica_rate(u)) if u > 0 else 0.0
            tpot = s / (t * (1.0 - lock.held_share(u, s)))
            slo = tpot_slo_s / tpot - 1.0
            if rate <= 0:
                return float(np.max(slo))
            little = b / (rate * output_tokens * tpot) - 1.0
            # Both the all-groups share and a group's own utilisation u (larger where a
            # partly busy step is slower per prompt, e.g. without micro-batch overlap).
            prefill = PREFILL_UTILISATION_LIMIT / max(rate * prefill_share_s, u) - 1.0
            return float(min(np.max(np.minimum(little, slo)), prefill))

        if margin(0.0) < 0:
            return 0.0
        high = 1.0 - LOCKSTEP_UTILISATION_XTOL
        if margin(high) >= 0:
            return float(lock.replica_rate(high))
        u = float(brentq(margin, 0.0, high, xtol=LOCKSTEP_UTILISATION_XTOL))
        return float(lock.replica_rate(u))

    def _stall(
        self, prefill_share_s: float, stall_share_s: FloatArray | float | None
    ) -> FloatArray:
        x = prefill_share_s if stall_share_s is None else stall_share_s
        return np.broadcast_to(np.asarray(x, dtype=np.float64), self.step_s.shape)

    def tpot_at(
        self, rate: float, prefill_share_s: float, stall_share_s: Stall = None
    ) -> FloatArray:
        """TPOT per batch B of the curve at ``rate`` requests/s per replica (inf where the
        prefill holds the decodes all the time)."""
        if isinstance(stall_share_s, Lockstep):
            held = stall_share_s.held_share(stall_share_s.utilisation(rate), self.step_s)
        else:
            held = rate * self._stall(prefill_share_s, stall_share_s)
        ok = held < 1
        return np.where(
            ok, self.step_s / (self.tokens_per_step * np.where(ok, 1.0 - held, 1.0)), np.inf
        )

    def batch_at(
        self,
        rate: float,
        output_tokens: int,
        prefill_share_s: float,
        stall_share_s: Stall = None,
    ) -> tuple[int, float] | None:
        """(B, TPOT) at ``rate`` requests/s: the least B with ceil(rate x output x
        TPOT(B)) <= B (the fixed point of Little's law); None beyond the cap or beyond the
        prefill capacity."""
        if not len(self.step_s) or rate * prefill_share_s >= 1:
            return None
        tpot = self.tpot_at(rate, prefill_share_s, stall_share_s)
        ok = np.ceil(rate * output_tokens * tpot * (1 - 1e-12)) <= self.batches
        if not np.any(ok):
            return None
        i = int(np.argmax(ok))
        return i + 1, float(tpot[i])


def _rounded_up(utilisation: float) -> float:
    return math.ceil(utilisation / UTILISATION_STEP - 1e-9) * UTILISATION_STEP


def queue_wait_s(
    service_s: float, servers: int, utilisation: float, percentile: float | None
) -> float:
    """Wait before prefill starts in an M/D/c queue: its mean (percentile None) or the
    given percentile, for a service time of ``service_s``."""
    if percentile is None:
        return service_s * mean_wait(servers, utilisation)
    return service_s * wait_quantile(servers, min(_rounded_up(utilisation), 0.97), percentile)


def ttft_at(service_s: float, utilisation: float, servers: int, percentile: float | None) -> float:
    """TTFT: a prompt's mean prefill plus the queue's wait (mean, or at ``percentile``)."""
    return service_s + queue_wait_s(service_s, servers, utilisation, percentile)


def check_slo(value: float | None, field: str) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise KvplanError(
            "must be a positive, finite time", field=field, value=value, expected="seconds > 0"
        )


def check_percentile(value: float) -> None:
    if not 0.0 < value < 1.0:
        raise KvplanError(
            "must be a probability", field="ttft_percentile", value=value, expected="0 < p < 1"
        )


@dataclass(frozen=True)
class ReplicaSizing:
    replicas: int
    batch: int  # mean decoding sequences per replica
    requests_per_s_per_replica: float
    ttft_s: float  # prefill plus mean queueing wait
    tpot_s: float  # including the slowdown from interleaved prefill
    gpus_total: int
    prefill_utilisation: float
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE
    ttft_at_percentile_s: float = 0.0  # prefill plus the wait at that percentile
    prefill_s: float = 0.0  # one prompt alone (its uncached part)


def _check_traffic(requests_per_s: float, mean_input_tokens: int, mean_output_tokens: int) -> None:
    if not math.isfinite(requests_per_s) or requests_per_s <= 0:
        raise KvplanError(
            "must be a positive, finite rate",
            field="requests_per_s",
            value=requests_per_s,
            expected="requests per second > 0",
        )
    if mean_input_tokens < 1 or mean_output_tokens < 1:
        raise KvplanError(
            "mean token counts must be >= 1",
            field="mean_input_tokens",
            value=(mean_input_tokens, mean_output_tokens),
        )


@dataclass(frozen=True)
class ReplicaTimes:
    """What sizing needs about one replica layout for one traffic shape (mean lengths): its
    decode curve at the mean context up to its sequence cap, and one prompt's prefill."""

    deployed: Deployed
    curve: DecodeCurve
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    prefill_by_busy_s: FloatArray  # one prompt while k = 1..DP groups prefill (index k-1)
    curve_context_tokens: int  # the context the decode curve is timed at
    # Per decode batch B (aligned with curve.step_s): replica time one prompt's prefill
    # holds the decodes up (planner.plan.prefill.decode_stall_share_s).
    stall_share_s: FloatArray

    @property
    def stall(self) -> Stall:
        """How this layout's prefill holds its decodes: per-prompt replica time per batch
        (one attention group), or its DP groups in lockstep (``planner.plan.lockstep``)."""
        if self.deployed.attention_dp == 1:
            return self.stall_share_s
        budget = self.deployed.deployment.max_batched_tokens
        chunks = max(1, -(-(self.input_tokens - self.cached_tokens) // budget))
        return Lockstep(
            self.prefill_by_busy_s,
            chunks,
            self.deployed.engine.profile.defaults.decodes_in_prefill_steps,
        )

    @property
    def prefill_s(self) -> float:
        """One prompt alone on an idle replica (its uncached part): TTFT without queueing."""
        return float(self.prefill_by_busy_s[0])

    @property
    def prefill_share_s(self) -> float:
        """Replica time one request's prefill takes when every DP group prefills side by
        side (the replica's prefill capacity at its full token budget)."""
        return float(self.prefill_by_busy_s[-1]) / self.deployed.attention_dp

    def prefill_service(self, requests_per_s_per_replica: float) -> tuple[float, float]:
        """(mean prefill time of a prompt, an engine's prefill utilisation) at this load
        (``planner.plan.prefill.prefill_service``, each DP engine taking 1/DP of it)."""
        groups = self.deployed.attention_dp
        return prefill_service(self.prefill_by_busy_s, requests_per_s_per_replica / groups)

    def ttft_s(
        self, requests_per_s_per_replica: float, servers: int, percentile: float | None
    ) -> float:
        """Prefill plus the queue's wait (mean, or at ``percentile``) at this load per
        replica, for a queue of ``servers`` DP engines fed by one router (1: each engine
        its own queue)."""
        service_s, utilisation = self.prefill_service(requests_per_s_per_replica)
        return ttft_at(service_s, utilisation, servers, percentile)

    def load_at_batches(
        self, batches: ArrayLike, step_s: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per batch B (decode step ``step_s``): (requests/s per replica, TPOT, mean prefill
        D, an engine's prefill utilisation u) at the load where exactly B sequences decode,
        the fixed point B = rate x output x TPOT that ``DecodeCurve.batch_at`` finds. One
        attention group: TPOT = s / t + B x(B) / output (x from ``decode_stall_share_s``).
        DP groups in lockstep: the u solving lambda(u) output s = B t (1 - H(u, s)) (both
        sides closed form, the left growing and the right shrinking with u;
        ``scipy.optimize.elementwise.find_root``); nan where even u -> 1 leaves B idle."""
        b = np.asarray(batches, dtype=np.float64)
        s = np.asarray(step_s, dtype=np.float64)
        t, out = self.curve.tokens_per_step, self.output_tokens
        stall = self.stall
        if not isinstance(stall, Lockstep):
            x = decode_stall_share_s(
                self.deployed, self.input_tokens, self.cached_tokens, b.astype(np.int64)
            )
            tpot = s / t + b * x / out
            rate = b / (out * tpot)
            return rate, tpot, np.full(b.shape, self.prefill_s), rate * self.prefill_s

        def gap(u: FloatArray, s_: FloatArray, b_: FloatArray) -> FloatArray:
            lam = stall.replica_rate(u)
            return np.asarray(
                lam * out * s_ - b_ * t * (1.0 - stall.held_share(u, s_)), dtype=np.float64
            )

        high = 1.0 - LOCKSTEP_UTILISATION_XTOL
        reachable = gap(np.full(b.shape, high), s, b) >= 0
        found = find_root(gap, (np.zeros(b.shape), np.full(b.shape, high)), args=(s, b))
        u = np.where(reachable, found.x, np.nan)
        safe = np.where(reachable, u, 0.5)
        rate = np.where(reachable, stall.replica_rate(safe), np.nan)
        tpot = np.where(reachable, s / (t * (1.0 - stall.held_share(safe, s))), np.nan)
        return rate, tpot, np.where(reachable, stall.service_s(safe), np.nan), u

    @property
    def best_tpot_s(self) -> float:
        return float(self.curve.step_s[0]) / self.curve.tokens_per_step


def replica_times(
    deployed: Deployed,
    mean_input_tokens: int,
    mean_output_tokens: int,
    prefix_hit_ratio: float = 0.0,
    budget: MemoryBudget | None = None,
    decode_context_tokens: int | None = None,
    tpot_limit_s: float | None = None,
) -> ReplicaTimes:
    """Decode curve at the mean context (prompt + half the answer, unless given) up to the
    sequence cap at the longest context (or the first batch beyond ``tpot_limit_s``), and
    the prefill of one prompt; raises when not one sequence fits."""
    _check_traffic(1.0, mean_input_tokens, mean_output_tokens)
    budget = budget or memory_budget(deployed)
    longest = mean_input_tokens + mean_output_tokens
    average = (
        mean_input_tokens + mean_output_tokens // 2
        if decode_context_tokens is None
        else decode_context_tokens
    )
    deployed.check_context(longest)
    cap = sequence_cap(deployed, longest, budget)
    if cap < 1:
        raise KvplanError(
            "not one sequence of this length fits in the KV pool",
            field="mean_input_tokens",
            value=mean_input_tokens,
        )
    cached = cached_prompt_tokens(mean_input_tokens, prefix_hit_ratio)
    curve = DecodeCurve.build(deployed, average, cap, tpot_limit_s)
    by_busy = prefill_times_by_busy_s(deployed, mean_input_tokens, cached)
    return ReplicaTimes(
        deployed,
        curve,
        mean_input_tokens,
        mean_output_tokens,
        cached,
        by_busy,
        average,
        decode_stall_share_s(deployed, mean_input_tokens, cached, curve.batches, by_busy[-1]),
    )


def check_tpot_reachable(times: ReplicaTimes, tpot_slo_s: float) -> None:
    best = times.best_tpot_s
    if best > tpot_slo_s:
        raise KvplanError(
            f"TPOT SLO cannot be met even at batch 1 (TPOT {best * 1e3:.1f} ms)",
            field="tpot_slo_s",
            value=tpot_slo_s,
            expected=f">= {best:.4f}",
        )


def check_ttft_reachable(prefill_s: float, ttft_slo_s: float | None) -> None:
    if ttft_slo_s is not None and prefill_s > ttft_slo_s:
        raise KvplanError(
            f"TTFT SLO cannot be met: one prompt alone takes {prefill_s:.3f} s to prefill "
            "on this layout",
            field="ttft_slo_s",
            value=ttft_slo_s,
            expected=f">= {prefill_s:.3f} s, or a layout that prefills faster",
        )


def size_replicas(
    deployed: Deployed,
    requests_per_s: float,
    mean_input_tokens: int,
    mean_output_tokens: int,
    tpot_slo_s: float,
    budget: MemoryBudget | None = None,
    prefix_hit_ratio: float = 0.0,
    ttft_slo_s: float | None = None,
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE,
) -> ReplicaSizing:
    """Replicas needed for a request rate under a TPOT SLO (and a TTFT SLO at a percentile,
    when given), for mean prompt and answer lengths; a share ``prefix_hit_ratio`` of every
    prompt is served from the prefix cache (not computed)."""
    _check_traffic(requests_per_s, mean_input_tokens, mean_output_tokens)
    check_slo(tpot_slo_s, "tpot_slo_s")
    check_slo(ttft_slo_s, "ttft_slo_s")
    check_percentile(ttft_percentile)
    times = replica_times(
        deployed,
        mean_input_tokens,
        mean_output_tokens,
        prefix_hit_ratio,
        budget,
        tpot_limit_s=tpot_slo_s,
    )
    return size_with(times, requests_per_s, tpot_slo_s, ttft_slo_s, ttft_percentile)


def size_with(
    times: ReplicaTimes,
    requests_per_s: float,
    tpot_slo_s: float,
    ttft_slo_s: float | None = None,
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE,
) -> ReplicaSizing:
    """``size_replicas`` for a layout whose times are already computed."""
    check_tpot_reachable(times, tpot_slo_s)
    prefill_s = times.prefill_s
    check_ttft_reachable(prefill_s, ttft_slo_s)
    share_s = times.prefill_share_s
    output = times.output_tokens
    stall_s = times.stall
    replicas = fewest_replicas(
        requests_per_s, times.curve.max_rate(output, share_s, tpot_slo_s, stall_s)
    )
    if ttft_slo_s is not None:

        def ttft_ok(n: int) -> bool:
            return times.ttft_s(requests_per_s / n, 1, ttft_percentile) <= ttft_slo_s

        replicas = fewest_meeting(replicas, ttft_ok)
    rate = requests_per_s / replicas
    point = times.curve.batch_at(rate, output, share_s, stall_s)
    assert point is not None, "a feasible replica count holds its load"
    batch, tpot = point
    rho = rate * share_s
    return ReplicaSizing(
        replicas,
        batch,
        rate,
        times.ttft_s(rate, 1, None),
        tpot,
        replicas * times.deployed.gpus,
        rho,
        ttft_percentile,
        times.ttft_s(rate, 1, ttft_percentile),
        prefill_s,
    )


def fewest_replicas(requests_per_s: float, rate_per_replica: float) -> int:
    """Fewest replicas n with requests_per_s / n <= rate_per_replica."""
    if rate_per_replica <= 0:
        raise KvplanError(
            "no batch meets the TPOT SLO within the sequence cap",
            field="tpot_slo_s",
        )
    replicas = max(1, math.ceil(requests_per_s / rate_per_replica - 1e-9))
    while requests_per_s / replicas > rate_per_replica:
        replicas += 1
    if replicas > MAX_REPLICAS:
        raise KvplanError(
            f"needs more than {MAX_REPLICAS:,} replicas",
            field="requests_per_s",
            value=requests_per_s,
        )
    return replicas


def fewest_meeting(start: int, ok: Callable[[int], bool]) -> int:
    """The least n >= start with ok(n), for a predicate that stays true once true."""
    if ok(start):
        return start
    low, high = start, start * 2
    while not ok(high):
        low, high = high, high * 2
        if high > MAX_REPLICAS:
            raise KvplanError(
                f"the TTFT SLO needs more than {MAX_REPLICAS:,} replicas", field="ttft_slo_s"
            )
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high
