"""Pydantic schema for everything a user (or the catalog) writes down.

A model is a list of layers; each layer has an attention spec and an FFN spec. Specs are
frozen data: the formulas that turn them into bytes and FLOPs live in ``planner.model``.
Field names carry units (``_tokens``) or are counts/sizes taken verbatim from the
Hugging Face ``config.json`` field of the same meaning.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from planner import limits as lim
from planner.dtypes import STORAGE_FORMATS
from planner.units import MAX_TOKEN_COUNT


def _known_format(name: str) -> str:
    if name not in STORAGE_FORMATS:
        raise ValueError(
            f"unknown storage format {name!r}; expected one of {', '.join(sorted(STORAGE_FORMATS))}"
        )
    return name


FormatName = Annotated[str, AfterValidator(_known_format)]
PositiveInt = Annotated[int, Field(gt=0)]
# Bounded counts (planner.limits says where each bound comes from).
HeadCount = Annotated[int, Field(ge=1, le=lim.MAX_HEADS)]
HeadDim = Annotated[int, Field(ge=1, le=lim.MAX_HEAD_DIM)]
Rank = Annotated[int, Field(ge=1, le=lim.MAX_RANK)]
Width = Annotated[int, Field(ge=1, le=lim.MAX_INTERMEDIATE_SIZE)]
ExpertCount = Annotated[int, Field(ge=1, le=lim.MAX_EXPERTS)]
TokenCount = Annotated[int, Field(ge=1, le=MAX_TOKEN_COUNT)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKEN_COUNT)]
GPUCount = Annotated[int, Field(ge=1, le=lim.MAX_GPUS_PER_REPLICA)]
Seconds = Annotated[float, Field(ge=0, le=lim.MAX_DURATION_S)]
Rate = Annotated[float, Field(ge=0, le=lim.MAX_RATE_PER_S)]
Label = Annotated[str, Field(max_length=200)]
PathText = Annotated[str, Field(min_length=1, max_length=4096)]


class Frozen(BaseModel):
    # allow_inf_nan=False: .inf / .nan in a YAML file, or NaN / Infinity in JSON, are
    # refused by every float field.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- attention
class GQASpec(Frozen):
    """Grouped-query attention (MHA when num_kv_heads == num_heads)."""

    kind: Literal["gqa"] = "gqa"
    num_heads: HeadCount
    num_kv_heads: HeadCount
    head_dim: HeadDim
    sliding_window_tokens: TokenCount | None = Field(
        None, description="keep only the last N tokens (Mistral-style); None = full attention"
    )
    kv_format: FormatName = "bf16"

    @model_validator(mode="after")
    def _heads_divide(self) -> GQASpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )
        return self


class MLASpec(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): one latent + RoPE key per token."""

    kind: Literal["mla"] = "mla"
    num_heads: HeadCount
    q_lora_rank: Rank | None = Field(None, description="None: direct query projection")
    kv_lora_rank: Rank
    qk_nope_head_dim: HeadDim
    qk_rope_head_dim: HeadDim
    v_head_dim: HeadDim
    latent_format: FormatName = "bf16"
    rope_format: FormatName = "bf16"


class DSASpec(MLASpec):
    """DeepSeek sparse attention (V3.2): MLA + lightning indexer selecting top-k tokens."""

    kind: Literal["dsa"] = "dsa"  # type: ignore[assignment]
    index_n_heads: HeadCount
    index_head_dim: HeadDim
    index_topk: TokenCount
    index_key_format: FormatName = "fp8_b128"


class CompressedSpec(Frozen):
    """DeepSeek-V4 attention layer: shared-KV MQA over compressed entries + sliding window.

    compress_ratio 0 keeps only the sliding window; CSA (ratio m, e.g. 4) adds an indexer
    that picks index_topk compressed entries; HCA (ratio m', e.g. 128) attends densely to
    every compressed entry.
    """

    kind: Literal["csa", "hca", "swa"]
    num_heads: HeadCount
    head_dim: HeadDim = Field(description="shared K/V entry width, RoPE part included")
    qk_rope_head_dim: HeadDim
    q_lora_rank: Rank
    o_lora_rank: Rank
    o_groups: HeadCount
    compress_ratio: int = Field(ge=0, le=lim.MAX_COMPRESS_RATIO)
    sliding_window_tokens: TokenCount
    entry_nope_format: FormatName = "fp8_b64_ue8m0"
    entry_rope_format: FormatName = "bf16"
    entry_pad_bytes: int = Field(
        0, ge=0, le=lim.MAX_PAD_BYTES, description="alignment padding per cached entry"
    )
    compressor_overlap: int = Field(
        1,
        ge=1,
        le=lim.MAX_COMPRESSOR_OVERLAP,
        description="tokens pooled per entry / ratio (V4 CSA: 2, overlapping windows)",
    )
    compressor_state_format: FormatName = Field(
        "fp32", description="format of the per-sequence compressor state (unfolded tail)"
    )
    index_n_heads: HeadCount | None = None
    index_head_dim: HeadDim | None = None
    index_topk: TokenCount | None = None
    index_key_format: FormatName | None = None

    @model_validator(mode="after")
    def _kind_matches_fields(self) -> CompressedSpec:
        has_indexer = self.index_topk is not None
        if self.kind == "csa":
            if self.compress_ratio < 1 or not has_indexer:
                raise ValueError("a 'csa' layer needs compress_ratio >= 1 and index_* fields")
            if None in (self.index_n_heads, self.index_head_dim, self.index_key_format):
                raise ValueError(
                    "a 'csa' layer needs index_n_heads, index_head_dim, "
                    "index_topk and index_key_format"
                )
        elif self.kind == "hca":
            if self.compress_ratio < 1 or has_indexer:
                raise ValueError("an 'hca' layer needs compress_ratio >= 1 and no indexer")
        elif self.compress_ratio != 0 or has_indexer:
            raise ValueError("an 'swa' layer has compress_ratio 0 and no indexer")
        if self.qk_rope_head_dim >= self.head_dim:
            raise ValueError("qk_rope_head_dim must be smaller than head_dim")
        if (self.num_heads * self.head_dim) % self.o_groups:
            raise ValueError(
                f"o_groups ({self.o_groups}) must divide num_heads x head_dim "
                f"({self.num_heads * self.head_dim})"
            )
        return self


AttentionSpec = Annotated[GQASpec | MLASpec | DSASpec | CompressedSpec, Field(discriminator="kind")]


# --------------------------------------------------------------------------- FFN
class DenseFFNSpec(Frozen):
    """Gated (SwiGLU) feed-forward: gate, up (hidden x inter) and down (inter x hidden)."""

    kind: Literal["dense"] = "dense"
    intermediate_size: Width


class MoEFFNSpec(Frozen):
    """Mixture of experts; every expert is a gated FFN of expert_intermediate_size."""

    kind: Literal["moe"] = "moe"
    num_routed_experts: ExpertCount
    experts_per_token: ExpertCount
    expert_intermediate_size: Width
    num_shared_experts: int = Field(0, ge=0, le=lim.MAX_EXPERTS)
    shared_intermediate_size: Width | None = Field(
        None, description="width of the shared expert block; default n_shared x expert width"
    )
    routing: Literal["gate", "hash"] = Field(
        "gate",
        description="'hash': experts chosen by token-id hash (V4's first layers); "
        "the gate still weights them",
    )

    @model_validator(mode="after")
    def _k_le_e(self) -> MoEFFNSpec:
        if self.experts_per_token > self.num_routed_experts:
            raise ValueError("experts_per_token exceeds num_routed_experts")
        return self

    @property
    def shared_width(self) -> int:
        if self.shared_intermediate_size is not None:
            return self.shared_intermediate_size
        return self.num_shared_experts * self.expert_intermediate_size


FFNSpec = Annotated[DenseFFNSpec | MoEFFNSpec, Field(discriminator="kind")]


class LayerSpec(Frozen):
    attention: AttentionSpec
    ffn: FFNSpec


# --------------------------------------------------------------------------- model
class WeightFormats(Frozen):
    """Storage format of each weight group."""

    embedding: FormatName = "bf16"
    attention: FormatName = "bf16"
    indexer: FormatName = "bf16"
    compressor: FormatName = "bf16"
    dense_ffn: FormatName = "bf16"
    shared_experts: FormatName = "bf16"
    routed_experts: FormatName = "bf16"
    router: FormatName = "bf16"
    head: FormatName = "bf16"
    other: FormatName = "bf16"


class MTPSpec(Frozen):
    """Multi-token prediction modules (DeepSeek): each is one extra decoder layer plus a
    2h x h projection; embedding and head are shared with the main model."""

    num_modules: int = Field(ge=1, le=lim.MAX_MTP_MODULES)
    layer: LayerSpec


class ModelSpec(Frozen):
    name: Label
    display_name: Label
    architecture: str = Field(description="HF architecture or family the spec was built from")
    hidden_size: int = Field(ge=1, le=lim.MAX_HIDDEN_SIZE)
    vocab_size: int = Field(ge=1, le=lim.MAX_VOCAB_SIZE)
    max_context_tokens: TokenCount
    tie_word_embeddings: bool = False
    hc_mult: int = Field(
        1, ge=1, le=lim.MAX_HC_MULT, description="mHC residual streams (V4: 4); 1 = plain residual"
    )
    layers: tuple[LayerSpec, ...] = Field(min_length=1, max_length=lim.MAX_LAYERS)
    mtp: MTPSpec | None = None
    weight_formats: WeightFormats = WeightFormats()
    reference_total_params: float | None = Field(
        None,
        ge=0,
        le=lim.MAX_PARAMS,
        description="published total parameter count, for cross-checking",
    )
    reference_active_params: float | None = Field(None, ge=0, le=lim.MAX_PARAMS)
    sources: dict[str, str] = Field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- hardware
class ComputeSpec(Frozen):
    """Dense (not 'with sparsity') tensor-core peak for one math dtype."""

    native: bool = Field(description="false: the GPU has no tensor-core path for this dtype")
    peak_tflop_per_s: float | None = Field(
        None, gt=0, le=lim.MAX_PEAK_TFLOP_PER_S, description="dense peak, 10^12 FLOP/s"
    )

    @model_validator(mode="after")
    def _native_has_peak(self) -> ComputeSpec:
        if self.native and self.peak_tflop_per_s is None:
            raise ValueError("a native dtype needs peak_tflop_per_s")
        return self


class PriceSpec(Frozen):
    default_usd_per_gpu_hour: float = Field(gt=0, le=lim.MAX_USD_PER_GPU_HOUR)
    low_usd_per_gpu_hour: float = Field(gt=0, le=lim.MAX_USD_PER_GPU_HOUR)
    high_usd_per_gpu_hour: float = Field(gt=0, le=lim.MAX_USD_PER_GPU_HOUR)
    as_of: str = Field(description="when the estimate was made, e.g. '2026-11'")

    @model_validator(mode="after")
    def _ordered(self) -> PriceSpec:
        if (
            not self.low_usd_per_gpu_hour
            <= self.default_usd_per_gpu_hour
            <= self.high_usd_per_gpu_hour
        ):
            raise ValueError("expected low <= default <= high price")
        return self


class EfficiencySpec(Frozen):
    """Achievable fractions of peak for large operators, and the fixed cost of a kernel.

    An operator takes kernel_overhead + max(FLOPs / (peak x flops_fraction),
    bytes / (bandwidth x bandwidth_fraction)): small operators are dominated by the fixed
    part, large ones approach the fractions.
    """

    bandwidth_fraction: float = Field(gt=0, le=1)
    flops_fraction: float = Field(gt=0, le=1)
    kernel_overhead_us: float = Field(
        ge=0, le=lim.MAX_KERNEL_OVERHEAD_US, description="fixed time per kernel, CUDA graphs on"
    )
    kernel_overhead_no_graphs_us: float = Field(
        ge=0, le=lim.MAX_KERNEL_OVERHEAD_US, description="fixed time per kernel, eager"
    )
    interconnect_fraction: float = Field(gt=0, le=1)
    collective_latency_us: float = Field(
        ge=0, le=lim.MAX_KERNEL_OVERHEAD_US, description="fixed time per collective op"
    )
    kernel_fits_from: str | None = Field(
        None,
        description="GPU profile whose fitted kernel curves (hardware_profiles/fits/<name>/) "
        "this GPU borrows when it has none of its own; None: the constants above",
    )


class InterconnectSpec(Frozen):
    name: str
    bandwidth_gb_per_s: float = Field(
        gt=0,
        le=lim.MAX_LINK_GB_PER_S,
        description="scale-up bandwidth per GPU, both directions together (vendor style)",
    )
    scale_up_domain_gpus: int | None = Field(
        None,
        ge=1,
        le=lim.MAX_GPUS_PER_REPLICA * 1024,
        description="GPUs one scale-up link (NVLink / Infinity Fabric / HCCS) connects; "
        "collectives over more GPUs cross the scale-out network. None: not given",
    )
    scale_out_gb_per_s: float | None = Field(
        None,
        gt=0,
        le=lim.MAX_LINK_GB_PER_S,
        description="scale-out (inter-node) bandwidth per GPU, one direction, 10^9 B/s",
    )


class HardwareProfile(Frozen):
    name: str
    display_name: str
    aliases: tuple[Label, ...] = Field(
        (), max_length=16, description="other names accepted for this profile (e.g. h100)"
    )
    vendor: str
    hbm_gib: float = Field(
        gt=0, le=lim.MAX_HBM_GIB, description="device memory in GiB (2^30 bytes), as reported"
    )
    hbm_bandwidth_tb_per_s: float = Field(
        gt=0, le=lim.MAX_HBM_BANDWIDTH_TB_PER_S, description="10^12 bytes/s"
    )
    compute: dict[Literal["bf16", "fp16", "fp8", "fp4", "int8"], ComputeSpec]
    interconnect: InterconnectSpec
    power_watts: float = Field(gt=0, le=lim.MAX_POWER_WATTS)
    price: PriceSpec
    efficiency: EfficiencySpec
    devices_per_package: int = Field(
        1,
        ge=1,
        le=lim.MAX_DEVICES_PER_PACKAGE,
        description="devices (dies) per package; every other figure is per device",
    )
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _bf16_native(self) -> HardwareProfile:
        bf16 = self.compute.get("bf16")
        if bf16 is None or not bf16.native:
            raise ValueError("compute.bf16 must be present and native (the fallback dtype)")
        return self


# --------------------------------------------------------------------------- deployment
EngineName = Literal["vllm", "sglang", "trtllm"]


class GpuCalibration(Frozen):
    """Kernel-efficiency curves fitted to the user's own GPU (``kvplan calibrate``), carried
    with the deployment so that every step time (plan, simulation, search) uses them.
    The curves are the JSON of a ``planner.plan.efficiency.schema.KernelFits`` (validated
    where they are used, in the plan layer); they apply only on the GPU they name."""

    gpu: Label = Field(description="kvplan GPU profile the curves were fitted for")
    label: str = Field(max_length=300, description="how outputs name this calibration")
    kernel_fits_json: str = Field(
        max_length=lim.MAX_CALIBRATION_JSON_CHARS, description="the fitted curves (JSON)"
    )


class Deployment(Frozen):
    """How one replica is laid out and run."""

    engine: EngineName = Field(
        "vllm",
        description="serving engine: decides KV layout, memory admission, defaults and "
        "kernel efficiencies (engines/<name>.yaml)",
    )
    gpus_per_replica: GPUCount = Field(8, description="GPUs serving one model copy")
    tensor_parallel: GPUCount | None = Field(
        None,
        description="attention tensor-parallel size (default: gpus_per_replica); "
        "gpus_per_replica / tensor_parallel is the data-parallel attention size",
    )
    expert_parallel: GPUCount | None = Field(
        None, description="expert-parallel size (default: gpus_per_replica)"
    )
    weight_formats: dict[str, FormatName] = Field(
        default_factory=dict, description="override the model's format per weight group"
    )
    kv_dtype: Literal["bf16", "fp8"] | None = Field(
        None, description="main KV cache dtype; None = the model's reference stack"
    )
    kv_block_tokens: int = Field(
        64, ge=1, le=lim.MAX_BLOCK_TOKENS, description="paged-KV block size in tokens"
    )
    gpu_memory_utilization: float = Field(
        0.90, gt=0, le=1, description="share of HBM the engine may use (vLLM semantics)"
    )
    runtime_reserve_gib: float = Field(
        2.0,
        ge=0,
        le=lim.MAX_RUNTIME_RESERVE_GIB,
        description="CUDA graphs, workspaces and communication buffers per GPU",
    )
    max_batched_tokens: int = Field(
        8192, ge=1, le=lim.MAX_BATCHED_TOKENS, description="token budget of one step"
    )
    max_num_seqs: int = Field(
        256, ge=1, le=lim.MAX_NUM_SEQS, description="most sequences in one batch"
    )
    cuda_graphs: bool = True
    step_overhead_ms: float | None = Field(
        None,
        ge=0,
        le=lim.MAX_STEP_OVERHEAD_MS,
        description="host time per step not hidden behind the GPU; None: the engine's "
        "fitted value (hardware_profiles/fits), 0 where none is fitted",
    )
    moe_routing_alpha: float | None = Field(
        1.01,
        gt=1,
        le=10,
        description="power-law exponent of MoE routing skew (AIConfigurator's MoE "
        "collection uses 1.01 and 1.2); None: uniform routing",
    )
    moe_dispatch: Literal["all_to_all", "all_gather"] | None = Field(
        None,
        description="how MoE layers move tokens between attention-DP groups and expert ranks: "
        "'all_to_all' (DeepEP-style dispatch and combine) or 'all_gather' (every rank gathers "
        "every group's tokens, results reduce-scattered); None: the engine's default "
        "(hardware_profiles/fits/engine_defaults.yaml)",
    )
    overlap_micro_batches: bool = Field(
        False,
        description="overlap communication with computation by splitting each step into two "
        "micro-batches (DeepSeek's dual micro-batch)",
    )
    eplb: bool = Field(
        False,
        description="expert-parallel load balancing (vLLM / SGLang --enable-eplb; "
        "deepseek-ai/EPLB): planned as balanced expert load, so moe_routing_alpha defaults "
        "to None (uniform) unless given",
    )
    mtp: bool = Field(False, description="MTP speculative decoding (one draft token per step)")
    mtp_acceptance_rate: float = Field(0.85, ge=0, le=1)
    gpu_memory_gib: float | None = Field(
        None,
        gt=0,
        le=lim.MAX_HBM_GIB,
        description="GPU memory as the engine sees it (torch's total, a log's "
        "total_gpu_memory); None: the GPU profile's hbm_gib",
    )
    activation_gib: float | None = Field(
        None,
        ge=0,
        le=lim.MAX_RUNTIME_RESERVE_GIB,
        description="peak activation memory per GPU the engine profiled (vLLM's 'PyTorch "
        "activation peak memory'); None: the engine's estimate",
    )
    step_time_scale: float = Field(
        1.0,
        ge=lim.MIN_STEP_TIME_SCALE,
        le=lim.MAX_STEP_TIME_SCALE,
        description="multiplies every kernel and collective time of a step: a per-deployment "
        "correction fitted by kvplan calibrate --from-bench",
    )
    gpu_calibration: GpuCalibration | None = Field(
        None, description="curves fitted to the user's own GPU (kvplan calibrate --gpu)"
    )
    terms_source: str | None = Field(
        None,
        max_length=500,
        description="where the engine terms of this deployment came from (kvplan calibrate "
        "--from-log / --from-bench), for outputs to name",
    )

    @model_validator(mode="before")
    @classmethod
    def _eplb_balances_experts(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("eplb") and "moe_routing_alpha" not in data:
            return {**data, "moe_routing_alpha": None}
        return data

    @model_validator(mode="after")
    def _parallel_sizes_divide(self) -> Deployment:
        for field in ("tensor_parallel", "expert_parallel"):
            size = getattr(self, field)
            if size is not None and self.gpus_per_replica % size:
                raise ValueError(
                    f"{field} ({size}) must divide gpus_per_replica ({self.gpus_per_replica})"
                )
        return self

    @model_validator(mode="after")
    def _known_weight_groups(self) -> Deployment:
        unknown = set(self.weight_formats) - set(WeightFormats.model_fields)
        if unknown:
            raise ValueError(
                f"unknown weight group(s) {sorted(unknown)} in weight_formats; expected "
                + ", ".join(WeightFormats.model_fields)
            )
        return self

    @property
    def tp(self) -> int:
        return self.tensor_parallel or self.gpus_per_replica

    @property
    def ep(self) -> int:
        return self.expert_parallel or self.gpus_per_replica

    @property
    def attention_dp(self) -> int:
        return self.gpus_per_replica // self.tp


# --------------------------------------------------------------------------- workload
# A distribution's numbers are token counts, seconds or turns depending on where it is
# used; the generic bound is the token cap, and the user of a distribution tightens it.
DistValue = Annotated[float, Field(ge=0, le=MAX_TOKEN_COUNT)]


class ConstantDist(Frozen):
    kind: Literal["constant"] = "constant"
    value: DistValue


class LognormalDist(Frozen):
    """Lognormal with the given mean and log-space sigma, clipped to [min, max]. Without
    a max, token counts drawn above the global cap (2^40) count as the cap."""

    kind: Literal["lognormal"] = "lognormal"
    mean: float = Field(gt=0, le=MAX_TOKEN_COUNT)
    sigma: float = Field(ge=0, le=lim.MAX_LOGNORMAL_SIGMA)
    min: DistValue = 1
    max: float | None = Field(None, gt=0, le=MAX_TOKEN_COUNT)

    @model_validator(mode="after")
    def _min_le_max(self) -> LognormalDist:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not exceed max ({self.max:g})")
        return self


class EmpiricalDist(Frozen):
    """Samples drawn with replacement from a file of numbers (one per line, or a CSV column)."""

    kind: Literal["empirical"] = "empirical"
    file: PathText
    column: Label | None = Field(None, description="CSV column name; None: one number per line")


Distribution = Annotated[ConstantDist | LognormalDist | EmpiricalDist, Field(discriminator="kind")]


def distribution_upper_bound(dist: ConstantDist | LognormalDist | EmpiricalDist) -> float | None:
    """The largest value a distribution can draw, where the spec alone says (None for an
    unbounded lognormal or an empirical file)."""
    if isinstance(dist, ConstantDist):
        return dist.value
    if isinstance(dist, LognormalDist):
        return dist.max
    return None


class PoissonArrivals(Frozen):
    kind: Literal["poisson"] = "poisson"
    rate_per_s: float = Field(gt=0, le=lim.MAX_RATE_PER_S)


class GammaArrivals(Frozen):
    """Bursty arrivals: gamma inter-arrival times with coefficient of variation cv."""

    kind: Literal["gamma"] = "gamma"
    rate_per_s: float = Field(gt=0, le=lim.MAX_RATE_PER_S)
    cv: float = Field(
        ge=lim.MIN_GAMMA_CV, le=lim.MAX_GAMMA_CV, description="1 = Poisson; > 1 burstier"
    )


class PiecewiseArrivals(Frozen):
    """Poisson with a piecewise-constant rate: [[start_s, rate_per_s], ...]."""

    kind: Literal["piecewise"] = "piecewise"
    points: list[tuple[Seconds, Rate]] = Field(min_length=1, max_length=lim.MAX_LIST_ITEMS)

    @model_validator(mode="after")
    def _sorted(self) -> PiecewiseArrivals:
        starts = [p[0] for p in self.points]
        if starts != sorted(starts) or starts[0] != 0:
            raise ValueError("points must start at 0 s and be sorted by time")
        return self


class DiurnalArrivals(Frozen):
    """Poisson with rate mean x (1 + amplitude x sin(2 pi (t - phase) / period))."""

    kind: Literal["diurnal"] = "diurnal"
    mean_rate_per_s: float = Field(gt=0, le=lim.MAX_RATE_PER_S)
    amplitude: float = Field(ge=0, le=1)
    period_s: float = Field(86_400, gt=0, le=lim.MAX_DURATION_S)
    phase_s: float = Field(0.0, ge=-lim.MAX_DURATION_S, le=lim.MAX_DURATION_S)


Arrivals = Annotated[
    PoissonArrivals | GammaArrivals | PiecewiseArrivals | DiurnalArrivals,
    Field(discriminator="kind"),
]


def expected_arrivals(
    arrival: PoissonArrivals | GammaArrivals | PiecewiseArrivals | DiurnalArrivals,
    duration_s: float,
) -> float:
    """Mean number of arrivals in [0, duration_s) (for the diurnal process: the candidates
    its thinning draws at the peak rate, which is what sampling costs)."""
    if isinstance(arrival, PoissonArrivals | GammaArrivals):
        return arrival.rate_per_s * duration_s
    if isinstance(arrival, DiurnalArrivals):
        return arrival.mean_rate_per_s * (1 + arrival.amplitude) * duration_s
    total = 0.0
    points = arrival.points
    for i, (start, rate) in enumerate(points):
        end = min(points[i + 1][0] if i + 1 < len(points) else duration_s, duration_s)
        total += rate * max(end - start, 0.0)
    return total


ReasoningMode = Literal["non-think", "think-high", "think-max"]


class ReasoningModeSpec(Frozen):
    """Tokens a reasoning mode adds to the output, and the system prompt it prepends."""

    reasoning_tokens: Distribution
    extra_system_prompt_tokens: Tokens = 0


# kvplan's defaults for the three V4 reasoning modes. These are assumptions, not published
# figures: the seeds only say think-max produces the most output tokens and prepends a
# system prompt. Override them per scenario (workload.reasoning_modes).
DEFAULT_REASONING_MODES: dict[str, ReasoningModeSpec] = {
    "non-think": ReasoningModeSpec(reasoning_tokens=ConstantDist(value=0)),
    "think-high": ReasoningModeSpec(
        reasoning_tokens=LognormalDist(mean=1500, sigma=0.8, max=32_768)
    ),
    "think-max": ReasoningModeSpec(
        reasoning_tokens=LognormalDist(mean=6000, sigma=0.8, max=131_072),
        extra_system_prompt_tokens=1000,
    ),
}


class SLOSpec(Frozen):
    ttft_s: float = Field(gt=0, le=lim.MAX_SLO_S)
    tpot_s: float = Field(gt=0, le=lim.MAX_SLO_S)


class SessionSpec(Frozen):
    """Multi-turn sessions: each next turn's prompt extends the previous context."""

    turns: Distribution = Field(description="turns per session (>= 1)")
    think_time_s: Distribution = Field(description="user pause after a reply, seconds")
    new_user_tokens: Distribution = Field(description="tokens the user adds per turn")
    keep_reasoning: bool = Field(
        False,
        description="True: reasoning tokens stay in the history (V4 interleaved "
        "thinking); False: dropped at each new user turn (V3.2)",
    )


class WorkloadClass(Frozen):
    name: Label
    share: float = Field(gt=0, le=1e6, description="relative share of arrivals")
    input_tokens: Distribution
    output_tokens: Distribution = Field(description="answer tokens, without reasoning")
    reasoning_mode: ReasoningMode = "non-think"
    system_prompt_tokens: Tokens = Field(0, description="shared system prompt length")
    system_prompt_variants: int = Field(
        1, ge=1, le=lim.MAX_SYSTEM_PROMPT_VARIANTS, description="distinct shared system prompts"
    )
    session: SessionSpec | None = None
    slo: SLOSpec


class TraceSpec(Frozen):
    path: PathText
    format: Literal["mooncake", "csv"] = "mooncake"
    time_scale: float = Field(
        1.0, gt=0, le=lim.MAX_TIME_SCALE, description="multiply timestamps (0.5 = 2x faster)"
    )
    slo: SLOSpec = SLOSpec(ttft_s=2.0, tpot_s=0.1)


class WorkloadSpec(Frozen):
    arrival: Arrivals | None = None
    classes: list[WorkloadClass] = Field(default_factory=list, max_length=lim.MAX_CLASSES)
    reasoning_modes: dict[ReasoningMode, ReasoningModeSpec] = Field(default_factory=dict)
    trace: TraceSpec | None = None

    @model_validator(mode="after")
    def _synthetic_or_trace(self) -> WorkloadSpec:
        if self.trace is None and (self.arrival is None or not self.classes):
            raise ValueError("a workload needs 'arrival' and 'classes', or a 'trace'")
        return self

    def reasoning(self, mode: ReasoningMode) -> ReasoningModeSpec:
        """The scenario's spec for a reasoning mode, or kvplan's default."""
        return self.reasoning_modes.get(mode) or DEFAULT_REASONING_MODES[mode]


# --------------------------------------------------------------------------- scenario
class HostTierSpec(Frozen):
    """Second prefix-cache tier (host DRAM or disk) that HBM evicts into."""

    capacity_gib: float = Field(gt=0, le=lim.MAX_HOST_TIER_GIB)
    bandwidth_gb_per_s: float = Field(
        gt=0, le=lim.MAX_LINK_GB_PER_S, description="load bandwidth into HBM"
    )


class PrefixCacheSpec(Frozen):
    enabled: bool = True
    host_tier: HostTierSpec | None = None
    invalidate_at_s: list[Seconds] = Field(
        default_factory=list,
        max_length=lim.MAX_LIST_ITEMS,
        description="times at which every cached prefix is dropped "
        "(e.g. a tokenizer change at cut-over)",
    )


class FaultSpec(Frozen):
    replica: int = Field(ge=0, lt=lim.MAX_REPLICAS)
    at_s: Seconds
    duration_s: float = Field(gt=0, le=lim.MAX_DURATION_S)


class PoolSpec(Frozen):
    """One pool of a disaggregated deployment: its replicas, layout and GPU type."""

    gpu: Label | None = Field(None, description="GPU profile; default: the scenario's gpu")
    replicas: int = Field(1, ge=1, le=lim.MAX_REPLICAS)
    deployment: Deployment = Deployment()


class DisaggregationSpec(Frozen):
    """Disaggregated prefill and decode (vLLM / SGLang PD disaggregation, DeepSeek's serving
    layout): the prefill pool computes prompts, their KV moves to the decode pool over the
    scale-up link (both pools in one scale-up domain) or the scale-out network."""

    prefill: PoolSpec
    decode: PoolSpec


class Scenario(Frozen):
    name: Label
    description: str = Field("", max_length=10_000)
    model: PathText
    gpu: Label
    deployment: Deployment = Deployment()
    replicas: int = Field(1, ge=1, le=lim.MAX_REPLICAS)
    router: Literal["round_robin", "least_outstanding_tokens", "prefix_affinity", "cache_aware"] = (
        "least_outstanding_tokens"
    )
    duration_s: float = Field(
        gt=0, le=lim.MAX_DURATION_S, description="arrivals stop after this time"
    )
    drain_s: Seconds = Field(0, description="keep simulating after arrivals stop")
    seed: int = Field(0, ge=0, le=lim.MAX_SEED)
    block_tokens: int = Field(
        512,
        ge=1,
        le=lim.MAX_BLOCK_TOKENS,
        description="paged-KV block and prefix-hash block size (Mooncake traces: 512)",
    )
    queue_timeout_s: float = Field(
        60, gt=0, le=lim.MAX_DURATION_S, description="reject requests waiting longer"
    )
    admission_watermark: float = Field(0.01, ge=0, lt=1, description="share of blocks kept free")
    prefix_cache: PrefixCacheSpec = PrefixCacheSpec()
    faults: list[FaultSpec] = Field(default_factory=list, max_length=lim.MAX_LIST_ITEMS)
    disaggregation: DisaggregationSpec | None = Field(
        None,
        description="separate prefill and decode pools (then leave the top-level "
        "deployment and replicas unset)",
    )
    workload: WorkloadSpec
    sample_interval_s: float = Field(
        1.0,
        gt=0,
        le=lim.MAX_DURATION_S,
        description="time-series sampling interval; left unset, it widens to "
        f"(duration_s + drain_s) / {lim.MAX_TIME_SERIES_SAMPLES:,} for long runs",
    )

    @property
    def end_s(self) -> float:
        """Simulated time at which a run stops: arrivals plus the drain."""
        return self.duration_s + self.drain_s

    @property
    def effective_sample_interval_s(self) -> float:
        """The sampling interval used: as set, or widened (when unset) so that one run
        records at most MAX_TIME_SERIES_SAMPLES samples."""
        floor = self.end_s / lim.MAX_TIME_SERIES_SAMPLES
        if "sample_interval_s" in self.model_fields_set:
            return self.sample_interval_s
        return max(self.sample_interval_s, floor)

    def with_gpu_calibration(self, calibration: GpuCalibration) -> Scenario:
        """The scenario with a calibrated GPU profile's curves in every deployment it runs
        (each uses them on the profile's own GPU only: ``planner.plan.efficiency``)."""

        def put(d: Deployment) -> Deployment:
            return d.model_copy(update={"gpu_calibration": calibration})

        pools = self.disaggregation
        if pools is None:
            return self.model_copy(update={"deployment": put(self.deployment)})
        roles = {
            role: getattr(pools, role).model_copy(
                update={"deployment": put(getattr(pools, role).deployment)}
            )
            for role in ("prefill", "decode")
        }
        return self.model_copy(update={"disaggregation": pools.model_copy(update=roles)})

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        for fault in self.faults:
            if fault.replica >= self.replicas:
                raise ValueError(
                    f"fault names replica {fault.replica} but there are "
                    f"{self.replicas} replicas (0-based)"
                )
        pools = [("deployment", self.replicas, self.deployment)]
        if self.disaggregation is not None:
            given = {"deployment", "replicas"} & self.model_fields_set
            if given:
                raise ValueError(
                    f"with disaggregation, set {', '.join(sorted(given))} per pool "
                    "(disaggregation.prefill / .decode), not at the top level"
                )
            if self.faults:
                raise ValueError("faults are not simulated with disaggregated pools")
            pools = [
                (f"disaggregation.{name}.deployment", pool.replicas, pool.deployment)
                for name, pool in (
                    ("prefill", self.disaggregation.prefill),
                    ("decode", self.disaggregation.decode),
                )
            ]
        engines = 0
        for field, replicas, deployment in pools:
            if (
                "kv_block_tokens" in deployment.model_fields_set
                and deployment.kv_block_tokens != self.block_tokens
            ):
                raise ValueError(
                    f"{field}.kv_block_tokens ({deployment.kv_block_tokens}) differs from "
                    f"block_tokens ({self.block_tokens}); the simulator pages by block_tokens: "
                    "set that one"
                )
            engines += replicas * deployment.attention_dp
        if engines > lim.MAX_ENGINES:
            raise ValueError(
                f"replicas x attention-DP groups = {engines:,} engines; at most {lim.MAX_ENGINES:,}"
            )
        arrival = self.workload.arrival
        if self.workload.trace is None and arrival is not None:
            expected = expected_arrivals(arrival, self.duration_s)
            if expected > lim.MAX_EXPECTED_ARRIVALS:
                raise ValueError(
                    f"the arrival process expects {expected:,.0f} requests in duration_s "
                    f"{self.duration_s:g}; at most {lim.MAX_EXPECTED_ARRIVALS:,} per run "
                    "(lower the rate or the duration)"
                )
        if (
            "sample_interval_s" in self.model_fields_set
            and self.sample_interval_s * lim.MAX_TIME_SERIES_SAMPLES < self.end_s
        ):
            raise ValueError(
                f"sample_interval_s {self.sample_interval_s:g} gives more than "
                f"{lim.MAX_TIME_SERIES_SAMPLES:,} samples over {self.end_s:g} s; at least "
                f"{self.end_s / lim.MAX_TIME_SERIES_SAMPLES:g}"
            )
        return self
