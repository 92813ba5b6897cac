"""Throughput, latency estimates and replica count for a target request rate.

Without queueing: TTFT = prefill time of the prompt (the last chunk emits the first token);
TPOT = decode step time / tokens emitted per step per sequence (1 + MTP acceptance).
Sizing treats a replica as time-shared between prefill and decode: one request costs
prefill_time / attention_dp + output_tokens x step_time / (batch x tokens_per_step)
replica-seconds, at the largest batch whose TPOT meets the SLO and whose KV fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import KvplanError
from planner.plan.deployed import Deployed
from planner.plan.memory import MemoryBudget, max_concurrent_sequences, memory_budget
from planner.plan.perf import decode_step, prefill_time_s


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


def prefill_tokens_per_s(deployed: Deployed, input_tokens: int) -> float:
    """Prompt tokens per second per replica (every attention-DP group prefills its own)."""
    return deployed.attention_dp * input_tokens / prefill_time_s(deployed, input_tokens)


@dataclass(frozen=True)
class ReplicaSizing:
    replicas: int
    batch: int
    requests_per_s_per_replica: float
    ttft_s: float
    tpot_s: float
    gpus_total: int


def size_replicas(
    deployed: Deployed,
    requests_per_s: float,
    mean_input_tokens: int,
    mean_output_tokens: int,
    tpot_slo_s: float,
    budget: MemoryBudget | None = None,
) -> ReplicaSizing:
    """Replicas needed for a request rate under a TPOT SLO (mean lengths)."""
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
    low, high = 1, cap  # largest batch with TPOT within the SLO (TPOT grows with batch)
    while low < high:
        mid = (low + high + 1) // 2
        if decode_point(deployed, mid, average).tpot_s <= tpot_slo_s:
            low = mid
        else:
            high = mid - 1
    point = decode_point(deployed, low, average)
    prefill_s = prefill_time_s(deployed, mean_input_tokens)
    replica_s_per_request = (
        prefill_s / deployed.attention_dp + mean_output_tokens / point.tokens_per_s
    )
    capacity = 1.0 / replica_s_per_request
    replicas = math.ceil(requests_per_s / capacity)
    return ReplicaSizing(replicas, low, capacity, prefill_s, point.tpot_s, replicas * deployed.gpus)
