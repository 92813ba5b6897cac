"""Throughput, latency estimates and replica count for a target request rate.

Without queueing: TTFT = prefill time of the prompt (the last chunk emits the first token);
TPOT = decode step time / tokens emitted per step per sequence (1 + MTP acceptance).

Sizing for a request rate (per replica: lambda = rate / replicas):
- prefill occupies rho_p = lambda x prefill_time / attention_dp of the replica's time, and
  decoding sequences wait through it, so the TPOT they see is step(B) / (1 - rho_p);
- the decode batch follows from Little's law, B = lambda x output_tokens x TPOT, solved
  together with the TPOT above (a fixed point; both grow together);
- a replica count is feasible when TPOT meets the SLO, B fits the KV pool and
  max_num_seqs, and rho_p stays under PREFILL_UTILISATION_LIMIT (headroom for queueing);
- TTFT adds the mean wait of an M/D/1 queue for the prefill share:
  rho_p / (2 (1 - rho_p)) x prefill_time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import KvplanError
from planner.plan.deployed import Deployed
from planner.plan.memory import MemoryBudget, max_concurrent_sequences, memory_budget
from planner.plan.perf import decode_step, decode_time_s
from planner.plan.prefill import cached_prompt_tokens, prefill_time_s

# Keep prefill under this share of a replica's time: above it, queueing makes TTFT grow
# without bound as arrivals fluctuate (a planning margin, not a measured figure).
PREFILL_UTILISATION_LIMIT = 0.8
FIXED_POINT_ITERATIONS = 30
MAX_REPLICAS = 100_000


@dataclass(frozen=True)
class DecodePoint:
    batch: int
    context_tokens: int
    step_time_s: float
    tokens_per_s: float  # per replica
    tpot_s: float
    bound: str


def decode_point(deployed: Deployed, batch: int, context_tokens: int) -> DecodePoint:
    step = decode_step(deployed, batch, context_tokens)
    step_s = float(step.time_s)
    per_seq = deployed.tokens_per_step_per_sequence
    return DecodePoint(
        batch, context_tokens, step_s, batch * per_seq / step_s, step_s / per_seq, step.bound
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


def size_replicas(
    deployed: Deployed,
    requests_per_s: float,
    mean_input_tokens: int,
    mean_output_tokens: int,
    tpot_slo_s: float,
    budget: MemoryBudget | None = None,
    prefix_hit_ratio: float = 0.0,
) -> ReplicaSizing:
    """Replicas needed for a request rate under a TPOT SLO (mean lengths); a share
    ``prefix_hit_ratio`` of every prompt is served from the prefix cache (not computed)."""
    if not math.isfinite(requests_per_s) or requests_per_s <= 0:
        raise KvplanError(
            "must be a positive, finite rate",
            field="requests_per_s",
            value=requests_per_s,
            expected="requests per second > 0",
        )
    if not math.isfinite(tpot_slo_s) or tpot_slo_s <= 0:
        raise KvplanError(
            "must be a positive, finite time",
            field="tpot_slo_s",
            value=tpot_slo_s,
            expected="seconds > 0",
        )
    if mean_input_tokens < 1 or mean_output_tokens < 1:
        raise KvplanError(
            "mean token counts must be >= 1",
            field="mean_input_tokens",
            value=(mean_input_tokens, mean_output_tokens),
        )
    budget = budget or memory_budget(deployed)
    longest = mean_input_tokens + mean_output_tokens
    average = mean_input_tokens + mean_output_tokens // 2
    deployed.check_context(longest)
    memory_cap = int(max_concurrent_sequences(deployed, longest, budget))
    cap = min(memory_cap, deployed.deployment.max_num_seqs)
    if cap < 1:
        raise KvplanError(
            "not one sequence of this length fits in the KV pool",
            field="mean_input_tokens",
            value=mean_input_tokens,
        )
    if decode_point(deployed, 1, average).tpot_s > tpot_slo_s:
        best = decode_point(deployed, 1, average).tpot_s
        raise KvplanError(
            f"TPOT SLO cannot be met even at batch 1 (TPOT {best * 1e3:.1f} ms)",
            field="tpot_slo_s",
            value=tpot_slo_s,
            expected=f">= {best:.4f}",
        )
    cached = cached_prompt_tokens(mean_input_tokens, prefix_hit_ratio)
    prefill_s = prefill_time_s(deployed, mean_input_tokens, cached)
    per_group_prefill_s = prefill_s / deployed.attention_dp
    # The fewest replicas that keep prefill under the utilisation limit.
    replicas = max(1, math.ceil(requests_per_s * per_group_prefill_s / PREFILL_UTILISATION_LIMIT))
    while replicas <= MAX_REPLICAS:
        rate = requests_per_s / replicas
        rho_prefill = rate * per_group_prefill_s
        point = _decode_fixed_point(deployed, rate, mean_output_tokens, average, rho_prefill, cap)
        if point is not None and point[1] <= tpot_slo_s:
            batch, tpot = point
            wait_s = rho_prefill / (2 * (1 - rho_prefill)) * prefill_s
            return ReplicaSizing(
                replicas,
                batch,
                requests_per_s / replicas,
                prefill_s + wait_s,
                tpot,
                replicas * deployed.gpus,
                rho_prefill,
            )
        replicas += 1
    raise KvplanError(
        f"needs more than {MAX_REPLICAS:,} replicas", field="requests_per_s", value=requests_per_s
    )


def _decode_fixed_point(
    deployed: Deployed, rate: float, output_tokens: int, context: int, rho_prefill: float, cap: int
) -> tuple[int, float] | None:
    """(batch, TPOT) where B = rate x output x TPOT and TPOT = step(B) / (1 - rho_p);
    None when the batch would exceed ``cap`` (the queue would grow without bound)."""
    slowdown = 1.0 / (1.0 - rho_prefill) / deployed.tokens_per_step_per_sequence
    tpot = decode_time_s(deployed, 1, context) * slowdown
    batch = 1
    for _ in range(FIXED_POINT_ITERATIONS):
        wanted = max(1, math.ceil(rate * output_tokens * tpot))
        if wanted > cap:
            return None
        new_tpot = decode_time_s(deployed, wanted, context) * slowdown
        if wanted == batch and math.isclose(new_tpot, tpot, rel_tol=1e-6):
            break
        batch, tpot = wanted, new_tpot
    return batch, tpot
