"""What each dashboard page shows, computed from one ViewConfig (no Streamlit here).

The dashboard and tests call these functions, so a number on screen is the number the
planner computes for the same inputs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.cost import api_prices_for
from planner.plan.deployed import Deployed
from planner.plan.frontier import frontier_curve, log_spaced_contexts
from planner.report.compare import compare_models
from planner.report.plan_report import plan_report, traffic_report
from planner.schema import DEFAULT_REASONING_MODES, ConstantDist, Deployment, LognormalDist
from planner.units import GIB_BYTES

REASONING_MODES = ("non-think", "think-high", "think-max")
FRONTIER_MAX_CONTEXT_TOKENS = 2**20
FRONTIER_POINTS = 96


def mean_of(dist: Any) -> float:
    if isinstance(dist, ConstantDist):
        return dist.value
    if isinstance(dist, LognormalDist):
        return dist.mean
    raise KvplanError(
        "only constant or lognormal reasoning budgets have a known mean", field="reasoning_tokens"
    )


@dataclass(frozen=True)
class ViewConfig:
    """Everything the sidebar sets; hashable so views can be cached on it."""

    # V3.2 first: ratios read "V4-Flash is x% of V3.2", the migration question.
    models: tuple[str, ...] = ("deepseek-v3.2", "deepseek-v4-flash")
    gpus: tuple[str, ...] = ("h200",)
    gpus_per_replica: int = 8
    tensor_parallel: int | None = None
    expert_parallel: int | None = None
    kv_dtype: str | None = None
    engine: str = "vllm"
    context_tokens: int = 131_072
    requests_per_s: float = 10.0
    input_tokens: int = 8192
    answer_tokens: int = 512
    reasoning_mix: tuple[float, float, float] = (0.5, 0.4, 0.1)
    tpot_slo_ms: float = 50.0
    custom_models: tuple[tuple[str, str], ...] = field(default=())  # (name, config path)

    def deployment(self) -> Deployment:
        return Deployment(
            gpus_per_replica=self.gpus_per_replica,
            tensor_parallel=self.tensor_parallel,
            expert_parallel=self.expert_parallel,
            kv_dtype=self.kv_dtype,
            engine=self.engine,
        )

    @property
    def mix(self) -> dict[str, float]:
        total = sum(self.reasoning_mix) or 1.0
        return {m: s / total for m, s in zip(REASONING_MODES, self.reasoning_mix, strict=True)}

    @property
    def mean_output_tokens(self) -> int:
        """Answer tokens plus the mix-weighted mean reasoning tokens."""
        reasoning = sum(
            share * mean_of(DEFAULT_REASONING_MODES[m].reasoning_tokens)
            for m, share in self.mix.items()
        )
        return round(self.answer_tokens + reasoning)

    @property
    def mean_input_tokens(self) -> int:
        """Prompt tokens plus think-max's extra system prompt, weighted by its share."""
        extra = (
            self.mix["think-max"] * DEFAULT_REASONING_MODES["think-max"].extra_system_prompt_tokens
        )
        return round(self.input_tokens + extra)

    def model_source(self, name: str) -> str:
        return dict(self.custom_models).get(name, name)


def deployed_for(config: ViewConfig, model_name: str, gpu_name: str) -> Deployed:
    model = resolve_model(config.model_source(model_name))
    return Deployed.build(model, load_gpu(gpu_name), config.deployment())


# --------------------------------------------------------------------------- capacity
MEMORY_PARTS = ("weights", "kv", "activation", "reserved", "free")


def capacity_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """Per (model, GPU): memory per GPU at the context, fit, concurrency and decode speed."""
    rows = []
    for model_name in config.models:
        for gpu_name in config.gpus:
            row: dict[str, Any] = {
                "model": model_name,
                "gpu": gpu_name,
                "gpus_per_replica": config.gpus_per_replica,
                "context_tokens": config.context_tokens,
            }
            try:
                report = plan_report(
                    deployed_for(config, model_name, gpu_name), config.context_tokens
                )
            except KvplanError as err:
                row.update({"fits": False, "note": str(err)})
                rows.append(row)
                continue
            mem = report["memory_per_gpu"]
            row.update({f"{part}_gib": mem[f"{part}_bytes"] / GIB_BYTES for part in MEMORY_PARTS})
            row.update(
                {
                    "total_gib": mem["total_bytes"] / GIB_BYTES,
                    "fits": report["fits"],
                    "max_concurrent_sequences": report["max_concurrent_sequences"],
                    "decode_batch": report["decode"]["batch"],
                    "decode_step_ms": report["decode"]["step_time_s"] * 1e3,
                    "decode_tokens_per_s": report["decode"]["tokens_per_s"],
                    "bound": report["decode"]["bound"],
                    "note": "",
                }
            )
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- frontier
def frontier_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """Long-format rows: (model, GPU, context, max concurrent sequences)."""
    contexts = log_spaced_contexts(1024, FRONTIER_MAX_CONTEXT_TOKENS, FRONTIER_POINTS)
    rows = []
    for model_name in config.models:
        model = resolve_model(config.model_source(model_name))
        for gpu_name in config.gpus:
            curve = frontier_curve(model, load_gpu(gpu_name), config.deployment(), contexts)
            for ctx, count in zip(
                curve.context_tokens.tolist(), curve.max_concurrent_sequences.tolist(), strict=True
            ):
                rows.append(
                    {
                        "model": model_name,
                        "gpu": gpu_name,
                        "context_tokens": ctx,
                        "max_concurrent_sequences": count,
                        "fits": curve.fits,
                    }
                )
    return rows


# --------------------------------------------------------------------------- cost
def cost_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """Per (model, GPU): $ per million tokens and the monthly bill for the traffic."""
    rows = []
    for model_name in config.models:
        for gpu_name in config.gpus:
            row: dict[str, Any] = {"model": model_name, "gpu": gpu_name}
            try:
                deployed = deployed_for(config, model_name, gpu_name)
                # Priced at the traffic, not the sidebar context: prompts of the mean
                # length, decoding at the mean context (prompt + half the output).
                report = plan_report(
                    deployed,
                    config.mean_input_tokens + config.mean_output_tokens // 2,
                    output_tokens=config.mean_output_tokens,
                    input_tokens=config.mean_input_tokens,
                )
                traffic = traffic_report(
                    deployed,
                    config.requests_per_s,
                    config.mean_input_tokens,
                    config.mean_output_tokens,
                    config.tpot_slo_ms / 1e3,
                )
            except KvplanError as err:
                row["note"] = str(err)
                rows.append(row)
                continue
            cost = report["cost"]
            row.update(
                {
                    "usd_per_gpu_hour": cost["usd_per_gpu_hour"],
                    "usd_per_million_input_tokens": cost["usd_per_million_input_tokens"],
                    "usd_per_million_output_tokens": cost["usd_per_million_output_tokens"],
                    "usd_per_million_cached_input_tokens": cost[
                        "usd_per_million_cached_input_tokens"
                    ],
                    "replicas": traffic["replicas"],
                    "gpus_total": traffic["gpus_total"],
                    "usd_per_month": traffic["usd_per_month"],
                    "usd_per_month_low": traffic["usd_per_month_range"][0],
                    "usd_per_month_high": traffic["usd_per_month_range"][1],
                    "note": "",
                }
            )
            rows.append(row)
    return rows


def api_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """API list prices for the chosen models and the monthly bill they imply."""
    rows = []
    for model_name in config.models:
        for price in api_prices_for(model_name):
            rows.append(
                {
                    "model": model_name,
                    "label": price.label,
                    "usd_per_million_input_tokens": price.usd_per_million_input_tokens,
                    "usd_per_million_output_tokens": price.usd_per_million_output_tokens,
                    "usd_per_million_cached_input_tokens": (
                        price.usd_per_million_cached_input_tokens
                    ),
                    "usd_per_month": price.monthly_usd(
                        config.requests_per_s, config.mean_input_tokens, config.mean_output_tokens
                    ),
                    "source": price.source,
                }
            )
    return rows


# --------------------------------------------------------------------------- compare
def compare_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """Models side by side at the context: cache, FLOPs, weights, and replicas and monthly
    cost for the same traffic on the first GPU."""
    models = [resolve_model(config.model_source(m), config.kv_dtype) for m in config.models]
    result = compare_models(models, config.context_tokens)
    gpu_name = config.gpus[0]
    rows = []
    for name, data in zip(config.models, result["models"], strict=True):
        row = {
            "model": name,
            "context_tokens": config.context_tokens,
            "gpu": gpu_name,
            **{
                k: data[k]
                for k in (
                    "kv_bytes_per_sequence",
                    "state_bytes_per_sequence",
                    "decode_flops_per_token",
                    "weight_bytes",
                    "kv_ratio_vs_first",
                    "flops_ratio_vs_first",
                    "beyond_max_context",
                )
            },
        }
        try:
            traffic = traffic_report(
                deployed_for(config, name, gpu_name),
                config.requests_per_s,
                config.mean_input_tokens,
                config.mean_output_tokens,
                config.tpot_slo_ms / 1e3,
            )
            row.update(
                {
                    "replicas": traffic["replicas"],
                    "gpus_total": traffic["gpus_total"],
                    "usd_per_month": traffic["usd_per_month"],
                    "note": "",
                }
            )
        except KvplanError as err:
            row.update(
                {"replicas": None, "gpus_total": None, "usd_per_month": None, "note": str(err)}
            )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- exports
def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text with a header of every key that appears (spreadsheet-ready)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def scenario_document(
    config: ViewConfig, replicas: int = 1, duration_s: float = 300.0
) -> dict[str, Any]:
    """A scenario (for `kvplan simulate`) reproducing the view: the first model and GPU,
    the deployment, Poisson traffic split into one class per reasoning mode."""
    deployment = {
        k: v
        for k, v in config.deployment().model_dump().items()
        if v != Deployment.model_fields[k].default
    }
    classes = []
    for mode, share in config.mix.items():
        if share <= 0:
            continue
        classes.append(
            {
                "name": mode,
                "share": round(share, 6),
                "reasoning_mode": mode,
                "input_tokens": {"kind": "lognormal", "mean": config.input_tokens, "sigma": 0.8},
                "output_tokens": {"kind": "lognormal", "mean": config.answer_tokens, "sigma": 0.6},
                "slo": {"ttft_s": 2.0, "tpot_s": config.tpot_slo_ms / 1e3},
            }
        )
    return {
        "name": "dashboard-view",
        "description": "exported from the kvplan dashboard",
        "model": config.model_source(config.models[0]),
        "gpu": config.gpus[0],
        "deployment": deployment,
        "replicas": replicas,
        "duration_s": duration_s,
        "drain_s": 60,
        "workload": {
            "arrival": {"kind": "poisson", "rate_per_s": config.requests_per_s},
            "classes": classes,
        },
    }
