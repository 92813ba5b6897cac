"""What each dashboard page shows, computed from one ViewConfig (no Streamlit here).

The dashboard and tests call these functions, so a number on screen is the number the
planner computes for the same inputs.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from planner.errors import KvplanError
from planner.hardware import GPU, load_gpu
from planner.model.resolve import resolve_model
from planner.plan.cost import api_prices_for, monthly_usd
from planner.plan.deployed import Deployed
from planner.plan.frontier import frontier_curve, log_spaced_contexts
from planner.plan.throughput import DEFAULT_TTFT_PERCENTILE
from planner.report.compare import compare_models
from planner.report.plan_report import plan_report, traffic_report
from planner.schema import (
    DEFAULT_REASONING_MODES,
    ConstantDist,
    Deployment,
    EngineName,
    GpuCalibration,
    LognormalDist,
)
from planner.search.run import Candidate, SearchResult, run_search
from planner.search.spec import SearchSpec
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
    engine: EngineName = "vllm"
    kv_dtype: str | None = None
    context_tokens: int = 131_072
    requests_per_s: float = 10.0
    input_tokens: int = 8192
    answer_tokens: int = 512
    reasoning_mix: tuple[float, float, float] = (0.5, 0.4, 0.1)
    prefix_hit_ratio: float = 0.0
    tpot_slo_ms: float = 50.0
    ttft_slo_s: float = 2.0
    ttft_percentile: float = DEFAULT_TTFT_PERCENTILE  # the TTFT SLO holds at this quantile
    # $/GPU-hour chosen by the user, per GPU profile; others use the profile's estimate.
    gpu_prices: tuple[tuple[str, float], ...] = ()
    custom_models: tuple[tuple[str, str], ...] = field(default=())  # (label, stored path)
    # An uploaded calibrated GPU profile's curves (kvplan calibrate); used on its GPU only.
    gpu_calibration: GpuCalibration | None = None

    def deployment(self) -> Deployment:
        return Deployment(
            engine=self.engine,
            gpus_per_replica=self.gpus_per_replica,
            tensor_parallel=self.tensor_parallel,
            expert_parallel=self.expert_parallel,
            kv_dtype=self.kv_dtype,
            gpu_calibration=self.gpu_calibration,
        )

    @property
    def mix(self) -> dict[str, float]:
        total = sum(self.reasoning_mix) or 1.0
        return {m: s / total for m, s in zip(REASONING_MODES, self.reasoning_mix, strict=True)}

    @property
    def reasoning_output_tokens(self) -> float:
        """Mean reasoning tokens the mix adds to each answer."""
        return sum(
            share * mean_of(DEFAULT_REASONING_MODES[m].reasoning_tokens)
            for m, share in self.mix.items()
        )

    @property
    def reasoning_prompt_tokens(self) -> float:
        """Mean extra system-prompt tokens the mix adds to each prompt (think-max's)."""
        return sum(
            share * DEFAULT_REASONING_MODES[m].extra_system_prompt_tokens
            for m, share in self.mix.items()
        )

    @property
    def mean_output_tokens(self) -> int:
        """Answer tokens plus the mix-weighted mean reasoning tokens."""
        return round(self.answer_tokens + self.reasoning_output_tokens)

    @property
    def mean_input_tokens(self) -> int:
        """Prompt tokens plus think-max's extra system prompt, weighted by its share."""
        return round(self.input_tokens + self.reasoning_prompt_tokens)

    def model_source(self, name: str) -> str:
        return dict(self.custom_models).get(name, name)

    def gpu_price(self, gpu_name: str) -> float | None:
        """The user's $/GPU-hour for a GPU profile, or None for the profile's estimate."""
        return dict(self.gpu_prices).get(gpu_name)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every (model, GPU) of the view, in display order."""
        return [(m, g) for m in self.models for g in self.gpus]


@cache
def priced_gpu(gpu_name: str, usd_per_gpu_hour: float | None = None) -> GPU:
    """A GPU profile, with the user's $/GPU-hour as its default price when given (the
    profile's low-high range is kept, widened to include it)."""
    gpu = load_gpu(gpu_name)
    if usd_per_gpu_hour is None or usd_per_gpu_hour == gpu.price_usd_per_hour:
        return gpu
    price = gpu.profile.price
    priced = price.model_copy(
        update={
            "default_usd_per_gpu_hour": usd_per_gpu_hour,
            "low_usd_per_gpu_hour": min(price.low_usd_per_gpu_hour, usd_per_gpu_hour),
            "high_usd_per_gpu_hour": max(price.high_usd_per_gpu_hour, usd_per_gpu_hour),
        }
    )
    return GPU(gpu.profile.model_copy(update={"price": priced}))


# --------------------------------------------------------------------------- best layout
# With attention TP on "auto" the pages show each model's best layout: the cheapest plan of
# a deployment search (planner.search) for the view's traffic and SLOs over replicas of
# half, once and twice the sidebar's GPUs per replica, every attention TP / DP split and
# MTP on/off, aggregated or disaggregated (the Search page and `kvplan search` also try
# micro-batch overlap, EPLB and more replica sizes).
BEST_LAYOUT_OVERLAP = (False,)
BEST_LAYOUT_EPLB = (False,)


def best_layout_spec(config: ViewConfig, model_name: str, gpu_name: str) -> SearchSpec:
    n = config.gpus_per_replica
    return SearchSpec.model_validate(
        {
            "models": (config.model_source(model_name),),
            "gpus": (gpu_name,),
            "engines": (config.engine,),
            "requests_per_s": config.requests_per_s,
            "input_tokens": config.mean_input_tokens,
            "output_tokens": config.mean_output_tokens,
            "prefix_hit_ratio": config.prefix_hit_ratio,
            "tpot_slo_s": config.tpot_slo_ms / 1e3,
            "ttft_slo_s": config.ttft_slo_s,
            "ttft_percentile": config.ttft_percentile,
            "gpus_per_replica": tuple(sorted({max(n // 2, 1), n, 2 * n})),
            "overlap": BEST_LAYOUT_OVERLAP,
            "eplb": BEST_LAYOUT_EPLB,
            "kv_dtype": config.kv_dtype,
            "top": 1,
            "gpu_calibration": config.gpu_calibration,
        }
    )


@cache
def _searched(spec: SearchSpec) -> SearchResult:
    return run_search(spec)


def best_plan(config: ViewConfig, model_name: str, gpu_name: str) -> Candidate | None:
    """The search's cheapest plan for this model and GPU (None: the layout is as set)."""
    if config.tensor_parallel is not None:
        return None
    return _searched(best_layout_spec(config, model_name, gpu_name)).best


def replica_layout(config: ViewConfig, model_name: str, gpu_name: str) -> tuple[Deployment, str]:
    """The one replica layout the Capacity and Frontier pages show, and what it is: as set
    in the sidebar, or the best plan's replica (aggregated) or decode replica
    (disaggregated); as set, saying why, when no plan meets the traffic and SLOs."""
    try:
        plan = best_plan(config, model_name, gpu_name)
    except KvplanError as err:
        return config.deployment(), f"as set (no plan meets the traffic: {screen_text(err)})"
    if plan is None:
        return config.deployment(), "as set"
    return plan.pools[-1].layout.deployment, f"best: {plan.label}"


def deployed_for(config: ViewConfig, model_name: str, gpu_name: str) -> Deployed:
    model = resolve_model(config.model_source(model_name))
    gpu = priced_gpu(gpu_name, config.gpu_price(gpu_name))
    return Deployed.build(model, gpu, replica_layout(config, model_name, gpu_name)[0])


# What the dashboard calls the planner's fields (the words on the screen).
SCREEN_LABELS = {
    "gpus_per_replica": "GPUs per replica",
    "tensor_parallel": "Attention TP",
    "expert_parallel": "Expert parallel",
    "engine": "Serving engine",
    "kv_dtype": "KV cache dtype",
    "context": "Context length",
    "context_tokens": "Context length",
    "requests_per_s": "Requests per second",
    "mean_input_tokens": "Mean prompt tokens",
    "input_tokens": "Mean prompt tokens",
    "output_tokens": "Mean answer tokens",
    "tpot_slo_s": "TPOT SLO",
    "ttft_slo_s": "TTFT SLO",
    "ttft_percentile": "TTFT percentile",
    "prefix_hit_ratio": "Prefix cache hit ratio",
    "batch": "decode batch",
}


# Fields the dashboard shows in other units than the planner: (factor, unit).
SCREEN_UNITS = {"tpot_slo_s": (1e3, "ms"), "ttft_slo_s": (1.0, "s")}
_BOUND = re.compile(r"^([<>]=?) ?([0-9.eE+-]+)$")


def _shown(field_name: str, value: Any) -> str:
    if value is None or isinstance(value, tuple | list | dict):
        return ""
    if isinstance(value, bool):
        return f" {value}"
    if isinstance(value, int):
        return f" {value:,}"
    if isinstance(value, float):
        factor, unit = SCREEN_UNITS.get(field_name, (1.0, "s" if field_name.endswith("_s") else ""))
        return f" {value * factor:g}" + (f" {unit}" if unit else "")
    text = str(value)
    return f" {text if len(text) <= 40 else text[:37] + '...'!r}"


def screen_text(err: KvplanError) -> str:
    """An error in the dashboard's words: the widget's label instead of the planner's field
    name, no '(top level)'; a field the dashboard does not show (a scenario file's) keeps
    its path. One line."""
    field_name = err.field or ""
    label = SCREEN_LABELS.get(field_name)
    if label is None and field_name and field_name != "(top level)":
        label = field_name
    head = [f"{err.where}:"] if err.where else []
    if label:
        head.append(f"{label}{_shown(field_name, err.value)}:")
    expected = err.expected
    bound = _BOUND.match(expected or "")
    if bound and field_name in SCREEN_UNITS:
        factor, unit = SCREEN_UNITS[field_name]
        expected = f"{bound.group(1)} {float(bound.group(2)) * factor:g} {unit}"
    tail = f" (expected {expected})" if expected else ""
    return " ".join([*head, err.message]) + tail


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
                deployed = deployed_for(config, model_name, gpu_name)
                row["gpus_per_replica"] = deployed.gpus
                row["layout"] = replica_layout(config, model_name, gpu_name)[1]
                report = plan_report(deployed, config.context_tokens)
            except KvplanError as err:
                row.update({"fits": False, "note": screen_text(err)})
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
            gpu = priced_gpu(gpu_name, config.gpu_price(gpu_name))
            deployment, layout = replica_layout(config, model_name, gpu_name)
            curve = frontier_curve(model, gpu, deployment, contexts)
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
                        "gpus_per_replica": deployment.gpus_per_replica,
                        "layout": layout,
                    }
                )
    return rows


# --------------------------------------------------------------------------- cost
def traffic_for(config: ViewConfig, deployed: Deployed) -> dict[str, Any]:
    """The plan for the view's traffic on one deployment (replicas, GPUs, $/month)."""
    return traffic_report(
        deployed,
        config.requests_per_s,
        config.mean_input_tokens,
        config.mean_output_tokens,
        config.tpot_slo_ms / 1e3,
        prefix_hit_ratio=config.prefix_hit_ratio,
        ttft_slo_s=config.ttft_slo_s,
        ttft_percentile=config.ttft_percentile,
    )


def _pool_report(
    config: ViewConfig, model_name: str, gpu_name: str, deployment: Deployment
) -> dict[str, Any]:
    """plan_report for one pool layout, priced at the traffic: prompts of the mean length,
    decoding at the mean context (prompt + half the output), not the sidebar context."""
    model = resolve_model(config.model_source(model_name))
    gpu = priced_gpu(gpu_name, config.gpu_price(gpu_name))
    return plan_report(
        Deployed.build(model, gpu, deployment),
        config.mean_input_tokens + config.mean_output_tokens // 2,
        output_tokens=config.mean_output_tokens,
        input_tokens=config.mean_input_tokens,
        prefix_hit_ratio=config.prefix_hit_ratio,
    )


def _best_cost(
    config: ViewConfig, model_name: str, gpu_name: str, plan: Candidate
) -> dict[str, Any]:
    """A Cost-page row for the search's plan: input tokens priced on the prefill (or only)
    pool, output and cached tokens on the decode (or only) pool, the bill at the view's
    $/GPU-hour."""
    first = _pool_report(config, model_name, gpu_name, plan.pools[0].layout.deployment)
    last = _pool_report(config, model_name, gpu_name, plan.pools[-1].layout.deployment)
    price = priced_gpu(gpu_name, config.gpu_price(gpu_name)).profile.price
    gpus = plan.gpus_total
    return {
        "layout": f"best: {plan.label}",
        "usd_per_gpu_hour": price.default_usd_per_gpu_hour,
        "usd_per_million_input_tokens": first["cost"]["usd_per_million_input_tokens"],
        "usd_per_million_output_tokens": last["cost"]["usd_per_million_output_tokens"],
        "usd_per_million_cached_input_tokens": last["cost"]["usd_per_million_cached_input_tokens"],
        "replicas": sum(p.replicas for p in plan.pools),
        "gpus_total": gpus,
        "usd_per_month": monthly_usd(gpus, price.default_usd_per_gpu_hour),
        "usd_per_month_low": monthly_usd(gpus, price.low_usd_per_gpu_hour),
        "usd_per_month_high": monthly_usd(gpus, price.high_usd_per_gpu_hour),
        "planned_ttft_s": plan.ttft_s,
        "planned_ttft_at_percentile_s": plan.ttft_at_percentile_s,
        "planned_tpot_ms": plan.tpot_s * 1e3,
        "decode_batch": plan.pools[-1].decode_batch,
        "note": "",
    }


def cost_rows(config: ViewConfig) -> list[dict[str, Any]]:
    """Per (model, GPU): $ per million tokens and the monthly bill for the traffic, for the
    best plan (attention TP on auto) or the layout as set."""
    rows = []
    for model_name in config.models:
        for gpu_name in config.gpus:
            row: dict[str, Any] = {"model": model_name, "gpu": gpu_name}
            try:
                plan = best_plan(config, model_name, gpu_name)
                if plan is not None:
                    row.update(_best_cost(config, model_name, gpu_name, plan))
                    rows.append(row)
                    continue
                deployed = deployed_for(config, model_name, gpu_name)
                report = _pool_report(config, model_name, gpu_name, config.deployment())
                traffic = traffic_for(config, deployed)
            except KvplanError as err:
                row["note"] = screen_text(err)
                rows.append(row)
                continue
            cost = report["cost"]
            row.update(
                {
                    "layout": "as set",
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
                    "planned_ttft_s": traffic["ttft_s"],
                    "planned_ttft_at_percentile_s": traffic["ttft_at_percentile_s"],
                    "planned_tpot_ms": traffic["tpot_s"] * 1e3,
                    "decode_batch": traffic["decode_batch"],
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
                        config.requests_per_s,
                        config.mean_input_tokens,
                        config.mean_output_tokens,
                        config.prefix_hit_ratio,
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
            traffic = traffic_for(config, deployed_for(config, name, gpu_name))
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
                {
                    "replicas": None,
                    "gpus_total": None,
                    "usd_per_month": None,
                    "note": screen_text(err),
                }
            )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- exports
CSV_DECIMALS = (  # first match wins: (name prefix or suffix, decimals)
    ("usd_per_million", 4),
    ("usd_per_month", 0),
    ("tokens_per_s", 0),
    ("_bytes", 0),
    ("_tokens", 0),
    ("_s", 4),
    ("_ratio", 4),
    ("_vs_first", 4),
)


def csv_decimals(column: str) -> int:
    """Decimals a CSV column is rounded to, from the unit in its name (CSV_DECIMALS); 2 for
    the rest (GiB, ms, $/GPU-hour, percentages)."""
    for part, decimals in CSV_DECIMALS:
        if column.startswith(part) or column.endswith(part):
            return decimals
    return 2


def _rounded(column: str, value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""  # not known (a request that never produced a token): a blank cell
    if isinstance(value, float) and math.isfinite(value):
        decimals = csv_decimals(column)
        return round(value) if decimals == 0 else round(value, decimals)
    return value


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text with a header of every key that appears (spreadsheet-ready), floats
    rounded by the unit in the column's name (``csv_decimals``), NaN as an empty cell."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _rounded(k, v) for k, v in row.items()} for row in rows)
    return out.getvalue()
