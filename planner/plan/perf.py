"""Roofline step times for decode and prefill on one replica.

Each operator (a weight matrix, the attention core, the indexer, an expert group) takes
    kernel_overhead + max(FLOPs / achievable FLOP/s, bytes / achievable bandwidth)
on one GPU (``EfficiencySpec``): small operators are dominated by the fixed kernel time,
large ones approach the achievable fractions of peak. Operators run one after another;
communication (tensor-parallel all-reduce, expert-parallel all-to-all) is added without
overlap, which is conservative. A fixed per-step overhead covers scheduling and sampling.

MoE decode reads only the experts the batch touches: for T tokens each choosing k of E
experts, the expected number of distinct experts is E * (1 - (1 - k/E)^T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.dtypes import storage_format
from planner.model.attention import AttentionKind, Matrix
from planner.plan.deployed import Deployed
from planner.plan.memory import _shard
from planner.schema import LayerSpec, MoEFFNSpec

FloatArray = NDArray[np.float64]
BF16_BYTES = 2
FP8_BYTES = 1
# Elementwise kernels per layer not modelled individually (norms, RoPE, residual adds,
# activation, routing top-k): they cost their launch time only.
MISC_KERNELS_PER_LAYER = 6
ALL_REDUCES_PER_LAYER = 2  # after attention and after the FFN (tensor parallel)
ATTENTION_MATH_DTYPE = "bf16"  # FlashMLA / FlashAttention dequantise the cache to BF16


def expected_distinct_experts(num_experts: int, experts_per_token: int, tokens: float) -> float:
    """E * (1 - (1 - k/E)^T): distinct experts touched by T tokens choosing k of E each."""
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** tokens)


@dataclass
class StepTime:
    """Time of one step on the replica (every GPU works in parallel on its share)."""

    time_s: FloatArray
    compute_bound_s: FloatArray
    memory_bound_s: FloatArray
    overhead_s: float
    communication_s: FloatArray
    flops_per_gpu: FloatArray
    bytes_per_gpu: FloatArray
    by_operator_s: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def bound(self) -> str:
        """The larger of the compute- and memory-bound shares of operator time."""
        return "compute" if np.all(self.compute_bound_s > self.memory_bound_s) else "memory"


class _Timeline:
    def __init__(self, deployed: Deployed, shape: tuple[int, ...]) -> None:
        self.d = deployed
        self.gpu = deployed.gpu
        self.kernel_s = deployed.gpu.kernel_overhead_s(deployed.deployment.cuda_graphs)
        zeros = np.zeros(shape)
        self.compute = zeros.copy()
        self.memory = zeros.copy()
        self.comm = zeros.copy()
        self.flops = zeros.copy()
        self.bytes = zeros.copy()
        self.overhead = 0.0
        self.by_op: dict[str, FloatArray] = {}

    def op(
        self,
        name: str,
        flops: ArrayLike,
        nbytes: ArrayLike,
        dtype: str,
        repeat: int = 1,
        kernels: int = 1,
    ) -> None:
        flops_a = np.asarray(flops, dtype=np.float64)
        bytes_a = np.asarray(nbytes, dtype=np.float64)
        t_compute = flops_a / self.gpu.achievable_flop_per_s(dtype)
        t_memory = bytes_a / self.gpu.achievable_bandwidth_bytes_per_s
        roof = np.maximum(t_compute, t_memory) * repeat
        compute_bound = t_compute >= t_memory
        self.compute = self.compute + np.where(compute_bound, roof, 0.0)
        self.memory = self.memory + np.where(compute_bound, 0.0, roof)
        launch = kernels * repeat * self.kernel_s
        self.overhead += launch
        self.flops = self.flops + flops_a * repeat
        self.bytes = self.bytes + bytes_a * repeat
        self.by_op[name] = self.by_op.get(name, 0.0) + roof + launch

    def collective(self, name: str, nbytes: ArrayLike, repeat: int = 1) -> None:
        t = (
            np.asarray(nbytes, dtype=np.float64) / self.gpu.achievable_link_bytes_per_s
            + self.gpu.profile.efficiency.collective_latency_us * 1e-6
        ) * repeat
        self.comm = self.comm + t
        self.by_op[name] = self.by_op.get(name, 0.0) + t

    def result(self, step_overhead_s: float) -> StepTime:
        overhead = self.overhead + step_overhead_s
        total = self.compute + self.memory + self.comm + overhead
        return StepTime(
            total,
            self.compute,
            self.memory,
            overhead,
            self.comm,
            self.flops,
            self.bytes,
            self.by_op,
        )


def _matmul(
    tl: _Timeline,
    name: str,
    mat: Matrix,
    tokens: float,
    repeat: int,
    shard: int,
    active_fraction: float = 1.0,
) -> None:
    d = tl.d
    weight_bytes = d.model.matrix_bytes(mat) * active_fraction / shard
    activation_bytes = tokens * (mat.rows + mat.cols / shard) * BF16_BYTES
    flops = tokens * mat.flops_per_token / shard
    tl.op(name, flops, weight_bytes + activation_bytes, d.model.math_dtype(mat), repeat)


def _attention_ops(
    tl: _Timeline, kind: AttentionKind, seqs: float, q: int, context: NDArray[np.int64], repeat: int
) -> None:
    d = tl.d
    tp = d.tp
    share = kind.kv_shard_fraction(tp)
    index_bytes = kind.index_read_bytes(context)
    main_bytes = kind.read_bytes(context) - index_bytes
    tl.op(
        f"attention:{kind.label}",
        seqs * kind.attn_flops(q, context) / tp,
        seqs * main_bytes * share,
        ATTENTION_MATH_DTYPE,
        repeat,
    )
    if kind.has_indexer:
        fmt = storage_format(kind.spec.index_key_format)  # type: ignore[union-attr]
        tl.op(
            "indexer",
            seqs * kind.indexer_flops(q, context) / tp,
            seqs * index_bytes,
            fmt.math_dtype,
            repeat,
        )


def _layer_ops(
    tl: _Timeline,
    layer: LayerSpec,
    repeat: int,
    seqs_local: float,
    q: int,
    context: NDArray[np.int64],
) -> None:
    d = tl.d
    model = d.model
    hidden = model.spec.hidden_size
    tokens_local = seqs_local * q
    tokens_replica = tokens_local * d.attention_dp
    kind = model.attention_kind(layer.attention)
    for mat in kind.projections(hidden):
        _matmul(
            tl,
            "projections" if mat.group == "attention" else mat.group,
            mat,
            tokens_local,
            repeat,
            _shard(mat.group, mat, d),
        )
    _attention_ops(tl, kind, seqs_local, q, context, repeat)
    for mat in model.layer_matrices(layer)[len(kind.projections(hidden)) :]:
        if mat.group == "routed_experts":
            assert isinstance(layer.ffn, MoEFFNSpec)
            touched = expected_distinct_experts(mat.count, mat.active or mat.count, tokens_replica)
            _matmul(
                tl,
                "routed_experts",
                mat,
                tokens_replica,
                repeat,
                d.gpus,
                active_fraction=touched / mat.count,
            )
        elif mat.group in ("dense_ffn", "shared_experts"):
            _matmul(tl, mat.group, mat, tokens_replica, repeat, d.gpus)
        else:  # router, mHC mixers: replicated, on the local tokens
            _matmul(tl, mat.group, mat, tokens_local, repeat, 1)
    tl.op("misc", 0.0, 0.0, "bf16", repeat, kernels=MISC_KERNELS_PER_LAYER)
    if d.tp > 1:
        ring_bytes = 2 * (d.tp - 1) / d.tp * tokens_local * hidden * BF16_BYTES
        tl.collective("all_reduce", ring_bytes, repeat * ALL_REDUCES_PER_LAYER)
    if isinstance(layer.ffn, MoEFFNSpec) and d.deployment.ep > 1:
        ep = d.deployment.ep
        per_gpu_tokens = tokens_replica / d.gpus
        leaving = per_gpu_tokens * layer.ffn.experts_per_token * hidden * (ep - 1) / ep
        # Dispatch in FP8, combine in BF16 (DeepEP's defaults).
        tl.collective("all_to_all", leaving * (FP8_BYTES + BF16_BYTES), repeat)


def _forward(deployed: Deployed, seqs_local: float, q: int, context: ArrayLike) -> StepTime:
    ctx = np.asarray(context, dtype=np.int64)
    tl = _Timeline(deployed, np.shape(ctx))
    model = deployed.model
    for layer, count in model.distinct_layers:
        _layer_ops(tl, layer, count, seqs_local, q, ctx)
    tokens_replica = seqs_local * q * deployed.attention_dp
    _matmul(tl, "head", model.head_matrix, tokens_replica, 1, deployed.gpus)
    mtp = model.spec.mtp
    if deployed.deployment.mtp and mtp is not None:
        # The draft module runs once per step on each sequence's newest token.
        for _ in range(mtp.num_modules):
            _layer_ops(tl, mtp.layer, 1, seqs_local, 1, ctx)
            _matmul(
                tl, "head", model.head_matrix, seqs_local * deployed.attention_dp, 1, deployed.gpus
            )
    return tl.result(deployed.deployment.step_overhead_ms * 1e-3)


def decode_step(deployed: Deployed, batch: int, context_tokens: ArrayLike) -> StepTime:
    """One decode step for ``batch`` sequences (replica-wide) at context L (vectorised)."""
    seqs_local = math.ceil(batch / deployed.attention_dp)
    return _forward(deployed, seqs_local, deployed.query_tokens_per_step, context_tokens)


def prefill_chunk(deployed: Deployed, chunk_tokens: int, context_tokens: ArrayLike) -> StepTime:
    """Prefill of one chunk of T tokens ending at context L, in every attention-DP group."""
    return _forward(deployed, 1, chunk_tokens, context_tokens)


def prefill_time_s(deployed: Deployed, input_tokens: int) -> float:
    """Time to prefill one sequence of I tokens in chunks of max_batched_tokens."""
    if input_tokens <= 0:
        return 0.0
    chunk = deployed.deployment.max_batched_tokens
    full_chunks = input_tokens // chunk
    total = 0.0
    if full_chunks:
        ends = np.arange(1, full_chunks + 1, dtype=np.int64) * chunk
        total += float(np.sum(prefill_chunk(deployed, chunk, ends).time_s))
    rest = input_tokens - full_chunks * chunk
    if rest:
        total += float(prefill_chunk(deployed, rest, input_tokens).time_s)
    return total
