"""What a deployment search is asked: models, GPUs and engines to try, the traffic, the SLOs
and the layouts to enumerate (a frozen pydantic model: the user's input, validated)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from planner.schema import EngineName, Frozen, GpuCalibration, PositiveInt

# GPUs per replica tried by default: powers of two up to 16 nodes of 8 (divisors of the
# 256 routed experts of DeepSeek-V3/V3.2/V4-Flash, so expert parallelism splits evenly).
DEFAULT_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)
# Attention tensor-parallel sizes tried: within one NVLink node (TP across nodes is not
# how these engines are run).
DEFAULT_TP_SIZES = (1, 2, 4, 8)
MAX_SEARCH_ITEMS = 64


class SearchSpec(Frozen):
    models: tuple[str, ...] = Field(min_length=1, max_length=MAX_SEARCH_ITEMS)
    gpus: tuple[str, ...] = Field(min_length=1, max_length=MAX_SEARCH_ITEMS)
    engines: tuple[EngineName, ...] = Field(("vllm",), min_length=1)
    requests_per_s: float = Field(gt=0, le=1e7, allow_inf_nan=False)
    input_tokens: PositiveInt = Field(le=2**40, description="mean prompt tokens")
    output_tokens: PositiveInt = Field(le=2**40, description="mean answer tokens")
    prefix_hit_ratio: float = Field(0.0, ge=0, le=1, description="share of prompt tokens cached")
    tpot_slo_s: float = Field(gt=0, le=3600, allow_inf_nan=False)
    ttft_slo_s: float | None = Field(None, gt=0, le=86_400, allow_inf_nan=False)
    ttft_percentile: float = Field(0.9, gt=0, lt=1)
    gpus_per_replica: tuple[PositiveInt, ...] = Field(DEFAULT_GPU_COUNTS, min_length=1)
    tensor_parallel: tuple[PositiveInt, ...] = Field(DEFAULT_TP_SIZES, min_length=1)
    mtp: tuple[bool, ...] = Field((False, True), min_length=1)
    mtp_acceptance_rate: float = Field(
        0.85,
        ge=0,
        le=1,
        description="share of MTP draft tokens accepted (DeepSeek-V3 technical report, "
        "arXiv 2412.19437, sec. 5.4.3: 85-90% for the second token)",
    )
    disaggregated: tuple[bool, ...] = Field((False, True), min_length=1)
    eplb: tuple[bool, ...] = Field(
        (False, True),
        min_length=1,
        description="expert-parallel load balancing (vLLM / SGLang --enable-eplb), tried on MoE "
        "layouts of more than one GPU; planned as balanced expert load",
    )
    overlap: tuple[bool, ...] = Field(
        (False, True),
        min_length=1,
        description="dual micro-batch overlap of communication with computation (DeepSeek's "
        "DualPipe-style serving; vLLM --enable-dbo, SGLang --enable-two-batch-overlap), tried "
        "on MoE layouts of more than one GPU",
    )
    moe_dispatch: tuple[Literal["all_gather", "all_to_all"], ...] = Field(
        ("all_gather", "all_to_all"),
        min_length=1,
        description="how MoE layers move tokens between data-parallel attention groups and "
        "expert ranks, tried on MoE layouts with attention DP > 1 on vLLM and SGLang: "
        "'all_gather' (their default: gather every group's tokens, reduce-scatter the "
        "results) or 'all_to_all' (DeepEP dispatch/combine, as DeepSeek serves V3; vLLM "
        "--all2all-backend deepep_*, SGLang --moe-a2a-backend deepep)",
    )
    kv_dtype: str | None = Field(None, pattern="^(bf16|fp8)$")
    gpu_calibration: GpuCalibration | None = Field(
        None, description="curves measured on the user's GPU (kvplan calibrate), on that GPU"
    )
    top: PositiveInt = Field(10, le=1000)

    @model_validator(mode="after")
    def _bounded(self) -> SearchSpec:
        for field in ("gpus_per_replica", "tensor_parallel"):
            sizes = getattr(self, field)
            if max(sizes) > 4096 or len(sizes) > MAX_SEARCH_ITEMS:
                raise ValueError(f"{field}: at most {MAX_SEARCH_ITEMS} sizes, each <= 4096")
        return self

    @property
    def mean_context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens // 2
