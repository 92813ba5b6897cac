"""Data format of fitted kernel-efficiency curves (``hardware_profiles/fits/<gpu>/<engine>.yaml``).

One file holds every curve fitted for one GPU under one serving engine, with where the
measured data came from (``provenance``) and, per curve, how well the fit reproduces
held-out measurements (``fit``). ``benchmarks/fit/fit_aic.py`` writes these files from
NVIDIA AIConfigurator's silicon-measured tables; ``kvplan calibrate`` can write the same
format from a user's own microbenchmarks. The curve forms (what each parameter means) are
documented on each class and evaluated in ``planner.plan.efficiency.curves``.

All times are microseconds, efficiencies are fractions of the GPU profile's dense peak
(FLOP/s of the operator's math dtype, HBM bandwidth, or one direction of the link), so a
fit transfers to another GPU of the same architecture by applying it to that GPU's peaks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EngineName = Literal["vllm", "sglang", "trtllm"]

# GEMM classes: the math a weight format runs as on the GPU. "fp8_block" is FP8 with
# block scales (DeepSeek's 128x128 weights, DeepGEMM-style kernels); "fp8" is per-tensor.
GemmClass = Literal["bf16", "fp8", "fp8_block", "fp4"]
GEMM_CLASSES: tuple[GemmClass, ...] = ("bf16", "fp8", "fp8_block", "fp4")

# Attention kernels by kind and phase. CSA/HCA are DeepSeek-V4's compressed layers (a
# sliding-window-only V4 layer uses the HCA kernel); "indexer" is the DSA/CSA lightning
# indexer's scoring kernel.
AttentionOp = Literal[
    "gqa_decode",
    "gqa_prefill",
    "mla_decode",
    "mla_prefill",
    "dsa_decode",
    "dsa_prefill",
    "csa_decode",
    "csa_prefill",
    "hca_decode",
    "hca_prefill",
    "indexer_decode",
    "indexer_prefill",
]
ATTENTION_OPS: tuple[AttentionOp, ...] = (
    "gqa_decode",
    "gqa_prefill",
    "mla_decode",
    "mla_prefill",
    "dsa_decode",
    "dsa_prefill",
    "csa_decode",
    "csa_prefill",
    "hca_decode",
    "hca_prefill",
    "indexer_decode",
    "indexer_prefill",
)
# Math class of an attention kernel's main cache (the storage format's math dtype): decode
# kernels stream the cache, and BF16 and FP8 caches run at different fractions of HBM
# bandwidth in the measured tables (FP8 pays a dequantisation in the inner loop).
KvCacheClass = Literal["bf16", "fp8"]
KV_CACHE_CLASSES: tuple[KvCacheClass, ...] = ("bf16", "fp8")

CollectiveOp = Literal[
    "all_reduce_scale_up", "all_reduce_scale_out", "all_to_all_scale_up", "all_to_all_scale_out"
]
COLLECTIVE_OPS: tuple[CollectiveOp, ...] = (
    "all_reduce_scale_up",
    "all_reduce_scale_out",
    "all_to_all_scale_up",
    "all_to_all_scale_out",
)

LatencyUs = Field(ge=0, le=100_000, description="fixed time of one kernel or call, µs")
Efficiency = Field(gt=0, le=1, description="achieved fraction of the peak rate")
HalfPoint = Field(ge=0, le=1e9, description="size at which the rate reaches half its maximum")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FitQuality(Frozen):
    """How a curve was fitted and how well it predicts measurements it did not see."""

    table: str = Field(description="measured table, as a path inside its package")
    selection: str = Field(description="which rows of the table were used")
    points: int = Field(ge=1, description="measurements used to fit")
    held_out_points: int = Field(ge=0, description="measurements kept out of the fit")
    median_rel_err: float = Field(ge=0, description="median |model/measured - 1| on held-out")
    p90_rel_err: float = Field(ge=0, description="90th percentile of the same")


class GemmCurve(Frozen):
    """Dense GEMM of m tokens x (k -> n) weights:
    t = latency + max(FLOPs / (peak x compute_efficiency x fill),
                      bytes / (bw x bandwidth_efficiency)),
    fill = m/(m + half_m) x n/(n + half_n) x k/(k + half_k): partial tiles for few tokens
    (m), too few output tiles to occupy every SM (n), short main loops (k)."""

    latency_us: float = LatencyUs
    compute_efficiency: float = Efficiency
    bandwidth_efficiency: float = Efficiency
    half_m: float = HalfPoint
    half_n: float = HalfPoint
    half_k: float = HalfPoint
    fit: FitQuality | None = None


class GroupedGemmCurve(Frozen):
    """Fused MoE experts on the busiest expert-parallel rank, which receives R token-expert
    assignments spread over A active local experts (``planner.plan.efficiency.routing``)
    and is handed P token-expert pairs (every pair of every token when experts are split
    over ranks that all hold all tokens; the R dispatched pairs after an all-to-all):
    t = latency + max(F_e x (R + half_tokens_per_expert x A) / (peak x compute_efficiency),
                      (A x expert weight bytes + token bytes) / (bw x bandwidth_efficiency))
        + P x token vector bytes / (bw x pair_bandwidth_efficiency).
    Each active expert costs ``half_tokens_per_expert`` tokens' worth of extra math (a
    partly filled tile, per-expert pipeline fill): an expert with that many tokens runs at
    half the maximum rate. Every pair moves its token's BF16 hidden vector through the
    routing passes (permute, gather, weighted combine) at the pair efficiency."""

    latency_us: float = LatencyUs
    compute_efficiency: float = Efficiency
    bandwidth_efficiency: float = Efficiency
    half_tokens_per_expert: float = HalfPoint
    pair_bandwidth_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="fraction of HBM bandwidth the routing passes reach; None: "
        "bandwidth_efficiency (measurements without routing passes cannot tell)",
    )
    fit: FitQuality | None = None


class ShapedGroupedGemmCurve(GroupedGemmCurve):
    """A fused-MoE curve fitted to one expert shape alone (engines tune their MoE kernels
    per shape, so efficiencies differ between shapes), and to one expert tensor-parallel
    size where ``moe_tp_size`` is set; used for layers of that shape (and split)."""

    gemm_class: GemmClass
    hidden_size: int = Field(ge=1, le=1_000_000)
    inter_size: int = Field(ge=1, le=1_000_000, description="one expert's width, unsplit")
    num_experts: int = Field(ge=1, le=1_000_000)
    experts_per_token: int = Field(ge=1, le=1_000_000)
    moe_tp_size: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="expert tensor-parallel size the curve was fitted to (each rank holds "
        "1/moe_tp of every expert's width, so its GEMMs are that much narrower); unset: "
        "fitted over every size, the curve for sizes without their own",
    )


class AttentionCurve(Frozen):
    """An attention (or indexer) kernel over a step's sequences:
    t = latency + per_sequence_us x sequences
        + max(cache bytes / (bw x bandwidth_efficiency),
              (FLOPs + half_query_tokens x FLOPs per query token) / (peak x compute_efficiency)).
    A sequence feeding q query tokens runs its math at q / (q + half_query_tokens) of the
    maximum rate (query tiles filled); the per-sequence term covers split-KV scheduling and
    the combine pass."""

    latency_us: float = LatencyUs
    per_sequence_us: float = Field(0.0, ge=0, le=1_000, description="µs per sequence")
    compute_efficiency: float = Efficiency
    bandwidth_efficiency: float = Efficiency
    half_query_tokens: float = HalfPoint
    fit: FitQuality | None = None


class MemoryCurve(Frozen):
    """A memory-bound kernel (norm, activation, RoPE, residual, quantisation, KV write):
    t = latency + bytes read and written / (bw x bandwidth_efficiency)."""

    latency_us: float = LatencyUs
    bandwidth_efficiency: float = Efficiency
    fit: FitQuality | None = None


class CollectiveCurve(Frozen):
    """A collective over n GPUs: t = latency + bytes each GPU sends / (link x
    bandwidth_efficiency), the link being one direction of the GPU's scale-up link
    (NVLink) or of its scale-out NIC, as the curve's name says. All-reduce sends
    2 (n-1)/n x the message (ring), all-to-all the tokens bound for other GPUs."""

    latency_us: float = LatencyUs
    bandwidth_efficiency: float = Efficiency
    fit: FitQuality | None = None


class Provenance(Frozen):
    """Where the measured data behind a fit file came from."""

    package: str = Field(description="package that shipped the measured tables")
    package_version: str
    system: str = Field(description="the package's name for the GPU system")
    engine_version: str = Field(description="engine version the tables were measured with")
    fitted_on: str = Field(description="date of the fit, YYYY-MM-DD")
    script: str = Field(description="script that wrote this file")


class KernelFits(Frozen):
    """Every fitted curve for one GPU under one engine. Missing entries fall back to the
    GPU profile's analytic defaults (constant fractions of peak plus a kernel time)."""

    gpu: str = Field(description="GPU profile name (hardware_profiles/<gpu>.yaml)")
    engine: EngineName
    provenance: Provenance
    gemm: dict[GemmClass, GemmCurve] = Field(default_factory=dict)
    grouped_gemm: dict[GemmClass, GroupedGemmCurve] = Field(default_factory=dict)
    grouped_gemm_by_shape: list[ShapedGroupedGemmCurve] = Field(default_factory=list)
    attention: dict[AttentionOp, AttentionCurve] = Field(default_factory=dict)
    attention_by_kv_cache: dict[KvCacheClass, dict[AttentionOp, AttentionCurve]] = Field(
        default_factory=dict,
        description="curves fitted to one main-cache class alone, used before 'attention' "
        "for kernels over that cache; 'attention' stays the curve for every other cache",
    )
    elementwise: MemoryCurve | None = None
    collectives: dict[CollectiveOp, CollectiveCurve] = Field(default_factory=dict)
    step_overhead_us: float | None = Field(
        None, ge=0, le=100_000, description="host time per step not hidden behind the GPU"
    )
    sources: dict[str, str]
    notes: tuple[str, ...] = ()


MoEDispatch = Literal["all_to_all", "all_gather"]


class EngineDefaults(Frozen):
    """Communication behaviour of each engine's default configuration
    (``hardware_profiles/fits/engine_defaults.yaml``)."""

    moe_dispatch: dict[EngineName, MoEDispatch]
    sources: dict[str, str]
