"""Per-GPU memory budget: weights, activations, runtime reserve and the KV pool.

Sharding (what one GPU of a replica of N GPUs holds), following vLLM's layout with
data-parallel attention (N / TP groups of TP GPUs; DP = 1 is plain tensor parallelism):
- routed experts: split over all N GPUs (expert parallel x expert tensor parallel);
- embedding, LM head, dense FFN and shared experts: split over the TP group (every DP group
  holds a whole copy);
- attention projections: split over TP too, except the matrices every rank keeps whole
  (MLA/V4 latent and single-KV-head projections, V4 compressors, the DSA/CSA lightning
  indexer: ``Matrix.replicated``);
- router and mHC mixers: replicated on every GPU.
The KV pool follows the deployment's serving engine (``planner.engines``): vLLM gives it
gpu_memory_utilization x HBM minus weights, the profiled activation peak and the runtime
reserve (non-torch + CUDA-graph memory); SGLang mem_fraction_static x free memory minus
weights. The engine lays the cache out in pages (``planner.plan.kv_layout``) and admits
sequences by its own rule: ``max_concurrent_sequences`` counts what physically fits while
decoding, ``kv_pool_tokens`` / ``max_concurrency`` are what the engine logs at start-up.
MLA and V4 caches are one vector per token shared by all heads, so every TP rank holds a
sequence's whole cache; GQA caches split by KV head. Sequences are spread over the N / TP
data-parallel attention groups, each its own engine with its own pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.engines import Admission, ForwardShape
from planner.errors import KvplanError
from planner.model.attention import Matrix
from planner.plan.deployed import Deployed
from planner.plan.kv_layout import cache_pages
from planner.schema import DenseFFNSpec, LayerSpec
from planner.units import GIB_BYTES

SPLIT_OVER_ALL_GPUS = {"routed_experts"}
SPLIT_OVER_TP = {
    "attention",
    "indexer",
    "compressor",
    "embedding",
    "head",
    "dense_ffn",
    "shared_experts",
}
BF16_BYTES = 2
# Replica sizes tried when suggesting a GPU count that fits: the sizes tensor/expert
# parallelism is commonly run at (powers of two, then whole 8-GPU nodes).
SUGGESTED_GPU_COUNTS = (2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 96, 128)


class InsufficientMemoryError(KvplanError):
    """The weights alone do not fit in the usable memory of one GPU."""


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes per GPU. kv_pool_bytes is what the engine can give to the KV cache."""

    total_bytes: float
    reserved_bytes: float
    weights_bytes: float
    activation_bytes: float
    weights_by_component: dict[str, float]

    @property
    def kv_pool_bytes(self) -> float:
        return self.total_bytes - self.reserved_bytes - self.weights_bytes - self.activation_bytes


def shard_of(group: str, mat: Matrix, deployed: Deployed) -> int:
    """How many GPUs share one copy of this matrix (see the module docstring)."""
    if group in SPLIT_OVER_ALL_GPUS:
        return deployed.gpus
    if group in SPLIT_OVER_TP and not mat.replicated:
        return deployed.tp
    return 1


def weights_per_gpu(deployed: Deployed) -> dict[str, float]:
    """Weight bytes one GPU holds, by component (MTP only when MTP decoding is on)."""
    model = deployed.model
    out: dict[str, float] = {}
    for component, mat in model.weight_entries(include_mtp=deployed.deployment.mtp):
        nbytes = model.matrix_bytes(mat) / shard_of(mat.group, mat, deployed)
        out[component] = out.get(component, 0.0) + nbytes
    return out


def widest_activation_bytes_per_token(deployed: Deployed) -> float:
    """Bytes of the widest per-token BF16 activation on one GPU (residual or a layer's
    widest matrix output)."""
    model = deployed.model
    widest = model.spec.hidden_size * model.spec.hc_mult
    for layer, _ in model.distinct_layers:
        for mat in model.layer_matrices(layer):
            widest = max(widest, mat.cols // shard_of(mat.group, mat, deployed))
    return float(widest * BF16_BYTES)


# Row-parallel output projections: each TP rank writes a whole hidden-size output (then
# all-reduced), whatever the TP size (vLLM RowParallelLinear).
OUTPUT_PROJECTIONS = {"o_proj", "wo", "wo_b"}


def _attention_block_elements(layer: LayerSpec, deployed: Deployed) -> int:
    """Per-token elements live in an attention block on one GPU: every projection's
    output (q/kv/latent projections, indexer, compressor; the output projection's whole)."""
    model = deployed.model
    return sum(
        mat.cols
        if mat.name in OUTPUT_PROJECTIONS
        else mat.cols // shard_of(mat.group, mat, deployed)
        for mat in model.layer_matrices(layer)
        if mat.group in ("attention", "indexer", "compressor")
    )


def _ffn_block_elements(width: int, shard: int, hidden: int) -> int:
    """A gated FFN of ``width`` split ``shard`` ways, per token: the gate and up outputs
    (2 x width), the activation's output (width) and down_proj's output (hidden), all live
    while down_proj writes (vLLM model_executor/models/llama.py LlamaMLP.forward keeps
    gate_up referenced until it returns; SiluAndMul writes a new tensor)."""
    return 3 * (width // shard) + hidden


def forward_shape(deployed: Deployed) -> ForwardShape:
    """Per-token activation bytes of the deployed model's forward pass on one GPU.

    A block's live tensors: the residual stream and its normed copy (2 x hidden x
    hc_mult) plus the block's own outputs (attention projections, or the gated FFN's gate,
    up, activation and down outputs; an MoE block keeps its shared experts' block and the
    routed experts' output beside the residual). The fused-MoE call adds its workspace per token
    of one call: top_k x (max(N, K) + N / 2) elements, N = 2 x the expert width on this
    GPU, K = hidden (vLLM model_executor/layers/fused_moe/fused_moe.py TritonExperts
    workspace_shapes: workspace13 (M, topk, max(N, K)), workspace2 (M, topk, N // 2)).
    All in BF16."""
    model = deployed.model
    d = deployed.deployment
    h = model.spec.hidden_size
    stream = 2 * h * model.spec.hc_mult
    layer_elements = 0
    moe_layer_elements = 0
    moe_elements = 0
    for layer, _ in model.distinct_layers:
        layer_elements = max(layer_elements, stream + _attention_block_elements(layer, deployed))
        ffn = layer.ffn
        if isinstance(ffn, DenseFFNSpec):
            block = _ffn_block_elements(ffn.intermediate_size, deployed.tp, h)
            layer_elements = max(layer_elements, stream + block)
            continue
        shared = _ffn_block_elements(ffn.shared_width, deployed.tp, h) if ffn.shared_width else 0
        # The routed experts' output (hidden) beside the shared experts' block.
        moe_layer_elements = max(moe_layer_elements, stream + shared + h)
        expert_tp = max(d.gpus_per_replica // d.ep, 1)
        n = 2 * (ffn.expert_intermediate_size // expert_tp)
        moe_elements = max(moe_elements, ffn.experts_per_token * (max(n, h) + n // 2))
    return ForwardShape(
        widest_bytes=widest_activation_bytes_per_token(deployed),
        layer_bytes=float(layer_elements * BF16_BYTES),
        moe_layer_bytes=float(moe_layer_elements * BF16_BYTES),
        moe_workspace_bytes=float(moe_elements * BF16_BYTES),
    )


def activation_bytes(deployed: Deployed) -> float:
    """The engine's peak activation estimate for one step of max_batched_tokens (the
    engine's own profiled figure when the deployment carries one from its log)."""
    d = deployed.deployment
    if d.activation_gib is not None:
        return d.activation_gib * GIB_BYTES
    return deployed.engine.activation_bytes(
        forward_shape(deployed),
        deployed.model.spec.vocab_size,
        d.max_batched_tokens,
        d.max_num_seqs,
        d.attention_dp,
    )


def gpu_memory_bytes(deployed: Deployed) -> float:
    """GPU memory the engine divides: as it saw it where the deployment carries that (an
    engine log's total), else the GPU profile's."""
    seen = deployed.deployment.gpu_memory_gib
    return seen * GIB_BYTES if seen is not None else deployed.gpu.hbm_bytes


def _budget_unchecked(deployed: Deployed) -> MemoryBudget:
    weights = weights_per_gpu(deployed)
    weights_bytes = sum(weights.values())
    activations = activation_bytes(deployed)
    total = gpu_memory_bytes(deployed)
    _, held_back = deployed.engine.available_kv_bytes(
        total,
        weights_bytes,
        activations,
        deployed.deployment.gpu_memory_utilization,
        deployed.runtime_reserve_bytes,
    )
    return MemoryBudget(
        total_bytes=total,
        reserved_bytes=held_back,
        weights_bytes=weights_bytes,
        activation_bytes=activations,
        weights_by_component=weights,
    )


def _suggestions(deployed: Deployed) -> list[str]:
    """The smallest GPU count, and dtype changes, under which the weights would fit."""
    d = deployed.deployment
    hints = []
    for gpus in SUGGESTED_GPU_COUNTS:
        if gpus <= d.gpus_per_replica:
            continue
        trial = d.model_copy(
            update={"gpus_per_replica": gpus, "tensor_parallel": None, "expert_parallel": None}
        )
        try:
            larger = Deployed.build(deployed.model, deployed.gpu, trial)
        except KvplanError:  # a count this model cannot be laid out on (TP vs its heads)
            continue
        if _budget_unchecked(larger).kv_pool_bytes > 0:
            hints.append(f"{gpus} GPUs per replica would fit")
            break
    formats = deployed.model.spec.weight_formats
    for group, smaller in (
        ("routed_experts", "mxfp4"),
        ("shared_experts", "fp8_w128"),
        ("attention", "fp8_w128"),
        ("dense_ffn", "fp8_w128"),
    ):
        if (
            getattr(formats, group) in ("bf16", "fp16", "fp8_w128", "fp8_w128_ue8m0")
            and getattr(formats, group) != smaller
        ):
            trial = d.model_copy(update={"weight_formats": {**d.weight_formats, group: smaller}})
            candidate = Deployed.build(deployed.model, deployed.gpu, trial)
            if _budget_unchecked(candidate).kv_pool_bytes > 0:
                hints.append(f"or weight_formats.{group}={smaller} on {d.gpus_per_replica} GPUs")
                break
    return hints


def memory_budget(deployed: Deployed, suggest: bool = True) -> MemoryBudget:
    """The per-GPU budget; raises InsufficientMemoryError if nothing is left for KV
    (with the smallest GPU count or dtype change that would fit, unless suggest=False)."""
    budget = _budget_unchecked(deployed)
    if budget.kv_pool_bytes <= 0:
        short_gib = -budget.kv_pool_bytes / GIB_BYTES
        usable_gib = (budget.total_bytes - budget.reserved_bytes) / GIB_BYTES
        need_gib = (budget.weights_bytes + budget.activation_bytes) / GIB_BYTES
        hints = _suggestions(deployed) if suggest else []
        raise InsufficientMemoryError(
            f"{deployed.model.name} does not fit on {deployed.gpus} x {deployed.gpu.name}: "
            f"weights + activations need {need_gib:,.1f} GiB per GPU, {usable_gib:,.1f} GiB "
            f"usable; short by {short_gib:,.1f} GiB" + (f" ({'; '.join(hints)})" if hints else ""),
            field="gpus_per_replica",
            value=deployed.gpus,
        )
    return budget


def engine_admission(deployed: Deployed, budget: MemoryBudget | None = None) -> Admission:
    """The engine's admission of the deployed model on one GPU (one attention-DP engine);
    with ``budget`` None only the geometry (unit bytes, per-sequence units) is meaningful."""
    d = deployed.deployment
    pool = budget.kv_pool_bytes if budget is not None else 0.0
    return deployed.engine.admission(
        cache_pages(deployed), pool, d.max_batched_tokens, d.max_num_seqs
    )


def sequence_bytes_per_gpu(deployed: Deployed, context_tokens: ArrayLike) -> NDArray[np.float64]:
    """Cache bytes one decoding sequence of L tokens holds on each GPU of its attention
    group, in the engine's whole pages, fixed state (windows, compressor state) included."""
    admission = engine_admission(deployed)
    return admission.held_units(context_tokens) * admission.unit_bytes


def max_concurrent_sequences(
    deployed: Deployed, context_tokens: ArrayLike, budget: MemoryBudget | None = None
) -> NDArray[np.int64]:
    """Most sequences of L tokens one replica can hold at once while decoding (vectorised
    over L): what physically fits in each attention-DP engine's pool, times the engines."""
    budget = budget or memory_budget(deployed)
    admission = engine_admission(deployed, budget)
    per_group = np.floor(admission.pool_units / admission.held_units(context_tokens))
    if admission.swa_pool_tokens is not None and admission.swa_tokens_per_request:
        per_group = np.minimum(
            per_group, admission.swa_pool_tokens // admission.swa_tokens_per_request
        )
    return per_group.astype(np.int64) * deployed.attention_dp


def kv_pool_tokens(
    deployed: Deployed, context_tokens: ArrayLike, budget: MemoryBudget | None = None
) -> NDArray[np.int64]:
    """What the engine logs as its KV cache size in tokens, per attention-DP engine, when
    started with max_model_len = L (vLLM: 'GPU KV cache size'; SGLang:
    max_total_num_tokens)."""
    admission = engine_admission(deployed, budget or memory_budget(deployed))
    return admission.kv_pool_tokens(context_tokens)


def max_concurrency(
    deployed: Deployed, context_tokens: ArrayLike, budget: MemoryBudget | None = None
) -> NDArray[np.float64]:
    """What the engine logs as its maximum concurrency for L-token requests, per
    attention-DP engine (vLLM: 'Maximum concurrency for L tokens per request'; SGLang logs
    none: pool tokens / L)."""
    admission = engine_admission(deployed, budget or memory_budget(deployed))
    return admission.max_concurrency(context_tokens)


def max_context_tokens(
    deployed: Deployed, concurrency: ArrayLike, budget: MemoryBudget | None = None
) -> NDArray[np.int64]:
    """Longest context at which ``concurrency`` sequences fit (vectorised over C); capped at
    the model's maximum context, 0 where not even an empty sequence fits."""
    budget = budget or memory_budget(deployed)
    wanted = np.asarray(concurrency, dtype=np.int64)
    low = np.zeros(np.shape(wanted), dtype=np.int64)
    high = np.full(np.shape(wanted), deployed.model.max_context_tokens, dtype=np.int64)
    fits_max = max_concurrent_sequences(deployed, high, budget) >= wanted
    # Bisection on the monotone count: the largest L with count(L) >= C.
    for _ in range(int(np.ceil(np.log2(deployed.model.max_context_tokens + 1))) + 1):
        mid = (low + high + 1) // 2
        ok = max_concurrent_sequences(deployed, mid, budget) >= wanted
        low = np.where(ok, mid, low)
        high = np.where(ok, high, mid - 1)
    fits_empty = max_concurrent_sequences(deployed, np.zeros_like(wanted), budget) >= wanted
    result = np.where(fits_max, deployed.model.max_context_tokens, low)
    return np.where(fits_empty, result, 0)
