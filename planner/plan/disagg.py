"""Disaggregated prefill and decode: two pools of replicas, each sized for its own phase.

A request is prefilled in the prefill pool, its KV cache is sent to a decode replica, and
the decode replica produces the rest of the answer (the first token comes with the cache,
so TTFT = prefill wait + prefill + KV transfer). As served by DeepSeek (V3/R1 inference
system overview, 2025: prefill and decode on separate H800 nodes), Mooncake (Qin et al.,
FAST 2025) and vLLM / SGLang PD disaggregation.

Prefill pool of P replicas of a layout with DP attention groups: P x DP engines, each
prefilling one prompt in D seconds (``planner.plan.prefill``), fed by one router: an M/D/c
queue with c = P x DP (``planner.plan.queueing``). P is the fewest replicas keeping the
utilisation under PREFILL_UTILISATION_LIMIT and, with a TTFT SLO, the TTFT at the chosen
percentile within it. Engines that batch queued prompts into one step would do better than
this; the queue treats each prompt as served alone (conservative).

Decode pool: the aggregated sizing with no prefill in its steps (prefill share 0):
TPOT = step(B) / tokens per step, B from Little's law, the fewest replicas meeting the TPOT
SLO with B within the sequence cap (``planner.plan.throughput``).

KV transfer: every GPU of the decode engine receives the part of the sequence's cache it
holds, and every GPU of the prefill engine sends what it holds, all in parallel, each over
its own link: time = max(bytes per prefill GPU, bytes per decode GPU) / link bandwidth,
where the link is the scale-up link (NVLink) when the whole deployment fits in one
scale-up domain and the scale-out network per GPU otherwise (both one direction, at the
profile's achievable interconnect fraction).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import KvplanError
from planner.hardware import GB
from planner.plan.deployed import Deployed
from planner.plan.memory import sequence_bytes_per_gpu
from planner.plan.throughput import (
    DEFAULT_TTFT_PERCENTILE,
    PREFILL_UTILISATION_LIMIT,
    ReplicaTimes,
    check_tpot_reachable,
    check_ttft_reachable,
    fewest_meeting,
    fewest_replicas,
)


def scale_up_domain_gpus(deployed: Deployed) -> int | None:
    """GPUs one scale-up link joins (an NVLink node), None where the profile does not say."""
    return deployed.gpu.profile.interconnect.scale_up_domain_gpus


def link_bytes_per_s(deployed: Deployed, same_scale_up_domain: bool) -> float:
    """One-direction achievable bandwidth per GPU of the link a KV transfer crosses."""
    gpu = deployed.gpu
    if same_scale_up_domain:
        return gpu.achievable_link_bytes_per_s
    scale_out = gpu.profile.interconnect.scale_out_gb_per_s
    if scale_out is None:
        raise KvplanError(
            f"GPU profile {gpu.name} gives no scale-out (inter-node) bandwidth; a "
            "disaggregated deployment across nodes needs it",
            field="interconnect.scale_out_gb_per_s",
            expected="the per-GPU network bandwidth in the GPU profile",
        )
    return float(scale_out) * GB * gpu.profile.efficiency.interconnect_fraction


def kv_transfer_s(
    prefill: Deployed, decode: Deployed, prompt_tokens: int, link_bytes_per_s_: float
) -> float:
    """Seconds to move one prompt's KV cache from a prefill engine to a decode engine."""
    sent = float(sequence_bytes_per_gpu(prefill, prompt_tokens))
    received = float(sequence_bytes_per_gpu(decode, prompt_tokens))
    return max(sent, received) / link_bytes_per_s_


@dataclass(frozen=True)
class PrefillPool:
    replicas: int
    engines: int  # replicas x attention-DP groups: the servers of the M/D/c queue
    gpus_total: int
    prefill_s: float  # one prompt alone
    utilisation: float
    ttft_s: float  # mean wait + prefill + transfer
    ttft_at_percentile_s: float


@dataclass(frozen=True)
class DecodePool:
    replicas: int
    gpus_total: int
    batch: int  # mean decoding sequences per replica
    tpot_s: float
    requests_per_s_per_replica: float


@dataclass(frozen=True)
class DisaggSizing:
    prefill: PrefillPool
    decode: DecodePool
    transfer_s: float
    ttft_percentile: float

    @property
    def gpus_total(self) -> int:
        return self.prefill.gpus_total + self.decode.gpus_total


def prefill_pool_min_replicas(times: ReplicaTimes, requests_per_s: float) -> int:
    """Fewest prefill replicas keeping the pool's all-groups prefill share under the limit
    (a lower bound: ``size_prefill_pool`` also holds each engine's utilisation under it)."""
    per_replica = PREFILL_UTILISATION_LIMIT / times.prefill_share_s
    return fewest_replicas(requests_per_s, per_replica)


def size_prefill_pool(
    times: ReplicaTimes,
    requests_per_s: float,
    transfer_s: float,
    ttft_slo_s: float | None = None,
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE,
    min_replicas: int | None = None,
) -> PrefillPool:
    """The fewest replicas of this layout that prefill ``requests_per_s`` (see module)."""
    prefill_s = times.prefill_s
    check_ttft_reachable(prefill_s + transfer_s, ttft_slo_s)
    dp = times.deployed.attention_dp

    def utilisation(n: int) -> float:
        return times.prefill_service(requests_per_s / n)[1]

    def ttft(n: int, percentile: float | None) -> float:
        return times.ttft_s(requests_per_s / n, n * dp, percentile) + transfer_s

    replicas = min_replicas or prefill_pool_min_replicas(times, requests_per_s)
    # An engine's own utilisation under the limit too: it exceeds the all-groups share
    # where a partly busy step is slower per prompt (vLLM without micro-batch overlap).
    replicas = fewest_meeting(replicas, lambda n: utilisation(n) <= PREFILL_UTILISATION_LIMIT)
    if ttft_slo_s is not None:
        replicas = fewest_meeting(replicas, lambda n: ttft(n, ttft_percentile) <= ttft_slo_s)
    return PrefillPool(
        replicas,
        replicas * dp,
        replicas * times.deployed.gpus,
        prefill_s,
        utilisation(replicas),
        ttft(replicas, None),
        ttft(replicas, ttft_percentile),
    )


def decode_pool_rate(times: ReplicaTimes, tpot_slo_s: float) -> float:
    """Most requests/s one decode replica takes within the TPOT SLO (no prefill steps)."""
    check_tpot_reachable(times, tpot_slo_s)
    return times.curve.max_rate(times.output_tokens, 0.0, tpot_slo_s)


def size_decode_pool(times: ReplicaTimes, requests_per_s: float, tpot_slo_s: float) -> DecodePool:
    replicas = fewest_replicas(requests_per_s, decode_pool_rate(times, tpot_slo_s))
    rate = requests_per_s / replicas
    point = times.curve.batch_at(rate, times.output_tokens, 0.0)
    assert point is not None, "a feasible replica count holds its load"
    batch, tpot = point
    return DecodePool(replicas, replicas * times.deployed.gpus, batch, tpot, rate)


def size_disaggregated(
    prefill: ReplicaTimes,
    decode: ReplicaTimes,
    requests_per_s: float,
    tpot_slo_s: float,
    ttft_slo_s: float | None = None,
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE,
) -> DisaggSizing:
    """Both pools for a request rate; the KV link is NVLink when every GPU of both pools
    fits in one scale-up domain, the scale-out network otherwise."""
    # Pools on different GPU types cross the network whatever their size.
    same_domain_possible = prefill.deployed.gpu.name == decode.deployed.gpu.name
    decode_pool = size_decode_pool(decode, requests_per_s, tpot_slo_s)
    low = prefill_pool_min_replicas(prefill, requests_per_s)
    domain = scale_up_domain_gpus(prefill.deployed) or 0
    in_one_domain = (
        same_domain_possible and low * prefill.deployed.gpus + decode_pool.gpus_total <= domain
    )
    link = link_bytes_per_s(prefill.deployed, in_one_domain)
    transfer_s = kv_transfer_s(prefill.deployed, decode.deployed, prefill.input_tokens, link)
    pool = size_prefill_pool(prefill, requests_per_s, transfer_s, ttft_slo_s, ttft_percentile, low)
    if in_one_domain and pool.gpus_total + decode_pool.gpus_total > domain:
        # More prefill replicas pushed the deployment past one node: the network carries it.
        link = link_bytes_per_s(prefill.deployed, False)
        transfer_s = kv_transfer_s(prefill.deployed, decode.deployed, prefill.input_tokens, link)
        pool = size_prefill_pool(
            prefill, requests_per_s, transfer_s, ttft_slo_s, ttft_percentile, low
        )
    return DisaggSizing(pool, decode_pool, transfer_s, ttft_percentile)
