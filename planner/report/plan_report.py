"""The `kvplan plan` result as a JSON-ready dict (the documented contract)."""

from __future__ import annotations

from typing import Any

from planner.errors import KvplanError
from planner.plan.cost import (
    api_prices_for,
    monthly_usd,
    usd_per_million_cached_tokens,
    usd_per_million_tokens,
)
from planner.plan.deployed import Deployed
from planner.plan.efficiency import deployment_efficiency
from planner.plan.memory import (
    InsufficientMemoryError,
    kv_pool_tokens,
    max_concurrency,
    max_concurrent_sequences,
    max_context_tokens,
    memory_budget,
    sequence_bytes_per_gpu,
)
from planner.plan.prefill import (
    cached_prompt_tokens,
    prefill_breakdown_s,
    prefill_time_s,
    prefill_tokens_per_s,
)
from planner.plan.throughput import DEFAULT_TTFT_PERCENTILE, decode_point, size_replicas


def plan_report(
    deployed: Deployed,
    context_tokens: int,
    batch: int | None = None,
    output_tokens: int = 1024,
    input_tokens: int | None = None,
    prefix_hit_ratio: float = 0.0,
) -> dict[str, Any]:
    """Memory, concurrency, decode/prefill speed and cost for one replica at context L.

    Token counts are 1 to the model's maximum context; the batch is 1 to the sequences
    that fit (so no memory figure goes negative). When not one sequence of L tokens fits,
    an InsufficientMemoryError names the longest context that does.

    The decode batch defaults to the most sequences that fit, capped at max_num_seqs per
    attention-DP engine (vLLM and SGLang apply it per data-parallel engine).
    Prefill speed, TTFT and $/M input are for a prompt of ``input_tokens`` (default L), a
    share ``prefix_hit_ratio`` of it served from the prefix cache: prefill throughput counts
    prompt tokens (cached included) of a replica that only prefills at its full token
    budget; TTFT is one such prompt alone on an idle replica.
    """
    limit = deployed.model.max_context_tokens
    for field, tokens in (
        ("context", context_tokens),
        ("output_tokens", output_tokens),
        ("input_tokens", input_tokens),
    ):
        if tokens is not None and not 1 <= tokens <= limit:
            raise KvplanError(
                "token count out of range",
                field=field,
                value=tokens,
                expected=f"1 to {limit:,} ({deployed.model.name}'s maximum context)",
            )
    prompt_tokens = context_tokens if input_tokens is None else input_tokens
    cached_tokens = cached_prompt_tokens(prompt_tokens, prefix_hit_ratio)
    budget = memory_budget(deployed)
    max_seqs = int(max_concurrent_sequences(deployed, context_tokens, budget))
    if max_seqs < 1:
        longest = int(max_context_tokens(deployed, 1, budget))
        raise InsufficientMemoryError(
            f"not one sequence of {context_tokens:,} tokens fits in the KV pool of "
            f"{deployed.gpus} x {deployed.gpu.name}",
            field="context",
            value=context_tokens,
            expected=f"at most {longest:,} tokens on this deployment"
            if longest
            else "a deployment with more KV memory",
        )
    if batch is not None and not 1 <= batch <= max_seqs:
        raise KvplanError(
            f"only {max_seqs:,} sequences of {context_tokens:,} tokens fit in the KV pool",
            field="batch",
            value=batch,
            expected=f"1 to {max_seqs:,}",
        )
    fits = True
    if batch is None:  # max_num_seqs applies per attention-DP engine (vLLM, SGLang)
        batch = max(1, min(max_seqs, deployed.deployment.max_num_seqs * deployed.attention_dp))
    kv_used = float(sequence_bytes_per_gpu(deployed, context_tokens)) * -(
        -batch // deployed.attention_dp
    )
    point = decode_point(deployed, batch, context_tokens)
    prefill_tps = prefill_tokens_per_s(deployed, prompt_tokens, cached_tokens)
    usd_hour = deployed.gpu.price_usd_per_hour * deployed.gpus
    ttft_s = prefill_time_s(deployed, prompt_tokens, cached_tokens)
    # A cached token's rent is priced at full load (as the other prices): its prompt
    # prefilled while every DP group prefills.
    busy_ttft_s = prefill_time_s(deployed, prompt_tokens, cached_tokens, deployed.attention_dp)
    lifetime_s = busy_ttft_s + output_tokens * point.tpot_s
    cached_bytes = float(sequence_bytes_per_gpu(deployed, max(context_tokens, 1))) / max(
        context_tokens, 1
    )
    free = (
        budget.total_bytes
        - budget.reserved_bytes
        - budget.weights_bytes
        - budget.activation_bytes
        - kv_used
    )
    return {
        "model": deployed.model.name,
        "gpu": deployed.gpu.name,
        "gpus_per_replica": deployed.gpus,
        "tensor_parallel": deployed.tp,
        "expert_parallel": deployed.deployment.ep,
        "attention_data_parallel": deployed.attention_dp,
        "fits": fits and kv_used <= budget.kv_pool_bytes,
        "memory_per_gpu": {
            "weights_bytes": budget.weights_bytes,
            "kv_bytes": kv_used,
            "activation_bytes": budget.activation_bytes,
            "reserved_bytes": budget.reserved_bytes,
            "free_bytes": free,
            "total_bytes": budget.total_bytes,
            "kv_pool_bytes": budget.kv_pool_bytes,
            "weights_by_component_bytes": budget.weights_by_component,
        },
        "max_concurrent_sequences": max_seqs,
        "engine": {
            "name": deployed.engine.name,
            "version": deployed.engine.profile.version,
            "max_num_batched_tokens": deployed.deployment.max_batched_tokens,
            "max_num_seqs": deployed.deployment.max_num_seqs,
            "memory_fraction": deployed.deployment.gpu_memory_utilization,
        },
        "kv_pool_tokens": int(kv_pool_tokens(deployed, context_tokens, budget)),
        "max_concurrency": float(max_concurrency(deployed, context_tokens, budget)),
        "decode": {
            "batch": batch,
            "context_tokens": context_tokens,
            "step_time_s": point.step_time_s,
            "tokens_per_s": point.tokens_per_s,
            "tokens_per_s_per_gpu": point.tokens_per_s / deployed.gpus,
            "tpot_s": point.tpot_s,
            "bound": point.bound,
            "by_operator_s": point.by_operator_s,
        },
        "prefill": {
            "prompt_tokens": prompt_tokens,
            "prefix_hit_ratio": prefix_hit_ratio,
            "cached_tokens": cached_tokens,
            "tokens_per_s": prefill_tps,
            "ttft_s": ttft_s,
            "by_operator_s": prefill_breakdown_s(deployed, prompt_tokens, cached_tokens),
        },
        "kernel_fits": kernel_fits_report(deployed),
        "cost": {
            "usd_per_gpu_hour": deployed.gpu.price_usd_per_hour,
            "usd_per_replica_hour": usd_hour,
            "usd_per_million_input_tokens": usd_per_million_tokens(usd_hour, prefill_tps)
            if prefill_tps
            else None,
            "usd_per_million_output_tokens": usd_per_million_tokens(usd_hour, point.tokens_per_s),
            "usd_per_million_cached_input_tokens": usd_per_million_cached_tokens(
                # A token's cache lives in one attention-DP group: its share of the replica's
                # pool is per-GPU bytes / (per-GPU pool x DP groups).
                usd_hour,
                cached_bytes,
                budget.kv_pool_bytes * deployed.attention_dp,
                lifetime_s,
            ),
            "usd_per_replica_month": monthly_usd(deployed.gpus, deployed.gpu.price_usd_per_hour),
        },
    }


def kernel_fits_report(deployed: Deployed) -> dict[str, Any]:
    """Where the operator curves behind the step times came from."""
    eff = deployment_efficiency(deployed.gpu, deployed.deployment)
    analytic = sorted(k for k, v in eff.origin.items() if v.startswith("analytic"))
    calibrated = sorted(
        k for k, v in eff.origin.items() if eff.calibration_label and v == eff.calibration_label
    )
    d = deployed.deployment
    return {
        "engine": d.engine,
        "source": eff.source_label,
        "borrowed_from": eff.borrowed_from,
        "analytic_curves": analytic,
        "calibration": eff.calibration_label,
        "calibrated_curves": calibrated,
        "engine_terms": d.terms_source,
        "step_time_scale": d.step_time_scale,
    }


def traffic_report(
    deployed: Deployed,
    requests_per_s: float,
    input_tokens: int,
    output_tokens: int,
    tpot_slo_s: float,
    prefix_hit_ratio: float = 0.0,
    ttft_slo_s: float | None = None,
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE,
) -> dict[str, Any]:
    """Replicas, GPUs and monthly cost for steady traffic, with API list prices beside
    (APIs bill cached prompt tokens at their cached-input price where one is listed), and
    the TTFT (mean and at the percentile) and TPOT the plan expects at that load."""
    sizing = size_replicas(
        deployed,
        requests_per_s,
        input_tokens,
        output_tokens,
        tpot_slo_s,
        prefix_hit_ratio=prefix_hit_ratio,
        ttft_slo_s=ttft_slo_s,
        ttft_percentile=ttft_percentile,
    )
    gpu_price = deployed.gpu.price_usd_per_hour
    return {
        "requests_per_s": requests_per_s,
        "mean_input_tokens": input_tokens,
        "mean_output_tokens": output_tokens,
        "prefix_hit_ratio": prefix_hit_ratio,
        "tpot_slo_s": tpot_slo_s,
        "ttft_slo_s": ttft_slo_s,
        "ttft_percentile": ttft_percentile,
        "replicas": sizing.replicas,
        "gpus_total": sizing.gpus_total,
        "decode_batch": sizing.batch,
        "requests_per_s_per_replica": sizing.requests_per_s_per_replica,
        "ttft_s": sizing.ttft_s,
        "ttft_at_percentile_s": sizing.ttft_at_percentile_s,
        "prefill_s": sizing.prefill_s,
        "tpot_s": sizing.tpot_s,
        "prefill_utilisation": sizing.prefill_utilisation,
        "usd_per_month": monthly_usd(sizing.gpus_total, gpu_price),
        "usd_per_month_range": [
            monthly_usd(sizing.gpus_total, deployed.gpu.profile.price.low_usd_per_gpu_hour),
            monthly_usd(sizing.gpus_total, deployed.gpu.profile.price.high_usd_per_gpu_hour),
        ],
        "api_list_prices": [
            {
                "label": p.label,
                "source": p.source,
                "usd_per_month": p.monthly_usd(
                    requests_per_s, input_tokens, output_tokens, prefix_hit_ratio
                ),
            }
            for p in api_prices_for(deployed.model.name)
        ],
    }
