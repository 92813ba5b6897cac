"""Roofline step times for decode and prefill on one replica.

Each operator (a weight matrix, the attention core, the indexer, an expert group) takes
    kernel_overhead + max(FLOPs / achievable FLOP/s, bytes / achievable bandwidth)
on one GPU (``EfficiencySpec``): small operators are dominated by the fixed kernel time,
large ones approach the achievable fractions of peak. Operators run one after another;
communication (tensor-parallel all-reduce, expert-parallel all-to-all) is added without
overlap, which is conservative. A fixed per-step overhead covers scheduling and sampling.

A step splits into two parts (``StepModel``), which the simulator reuses:
- the *linear* part depends only on how many tokens the step processes: every weight
  matrix, the MoE experts, the LM head, elementwise kernels and communication;
- the *attention* part depends on each sequence's context: per layer kind, one kernel over
  the summed FLOPs and cache bytes of all sequences in the step (and one for the indexer).
With attention data parallelism (DP groups of TP GPUs), each group handles 1/DP of the
sequences; the FFN (experts over all GPUs) sees every token of the replica.

MoE decode reads only the experts the batch touches: for T tokens each choosing k of E
experts, the expected number of distinct experts is E * (1 - (1 - k/E)^T).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.model.attention import AttentionKind, Matrix
from planner.plan.deployed import Deployed
from planner.plan.memory import shard_of
from planner.schema import LayerSpec, MoEFFNSpec

FloatArray = NDArray[np.float64]
BF16_BYTES = 2
FP8_BYTES = 1
# Elementwise kernels per layer not modelled individually (norms, RoPE, residual adds,
# activation, routing top-k): they cost their launch time only.
MISC_KERNELS_PER_LAYER = 6
ALL_REDUCES_PER_LAYER = 2  # after attention and after the FFN (tensor parallel)
ATTENTION_MATH_DTYPE = "bf16"  # FlashMLA / FlashAttention dequantise the cache to BF16


def expected_distinct_experts(
    num_experts: int, experts_per_token: int, tokens: ArrayLike
) -> FloatArray:
    """E * (1 - (1 - k/E)^T): distinct experts touched by T tokens choosing k of E each."""
    t = np.asarray(tokens, dtype=np.float64)
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** t)


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
    """Accumulates operator times (vectorised over whatever shape the inputs have)."""

    def __init__(self, deployed: Deployed) -> None:
        self.gpu = deployed.gpu
        self.kernel_s = deployed.gpu.kernel_overhead_s(deployed.deployment.cuda_graphs)
        self.compute: FloatArray | float = 0.0
        self.memory: FloatArray | float = 0.0
        self.comm: FloatArray | float = 0.0
        self.flops: FloatArray | float = 0.0
        self.bytes: FloatArray | float = 0.0
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

    def merge(self, other: _Timeline) -> None:
        self.compute = self.compute + other.compute
        self.memory = self.memory + other.memory
        self.comm = self.comm + other.comm
        self.flops = self.flops + other.flops
        self.bytes = self.bytes + other.bytes
        self.overhead += other.overhead
        for name, t in other.by_op.items():
            self.by_op[name] = self.by_op.get(name, 0.0) + t

    def total_s(self) -> FloatArray:
        return np.asarray(self.compute + self.memory + self.comm + self.overhead)

    def result(self, step_overhead_s: float) -> StepTime:
        def arr(x: FloatArray | float) -> FloatArray:
            return np.asarray(x, dtype=np.float64)

        overhead = self.overhead + step_overhead_s
        return StepTime(
            self.total_s() + step_overhead_s,
            arr(self.compute),
            arr(self.memory),
            overhead,
            arr(self.comm),
            arr(self.flops),
            arr(self.bytes),
            self.by_op,
        )


@dataclass(frozen=True)
class AttentionWork:
    """Summed work of all sequences of a step for one attention kind (replica-wide)."""

    flops: FloatArray | float
    main_read_bytes: FloatArray | float
    index_flops: FloatArray | float
    index_read_bytes: FloatArray | float


class StepModel:
    """Step time of a replica = step overhead + linear(tokens) + attention(contexts).

    With ``per_group=True`` (data-parallel attention in the simulator) the inputs describe
    ONE attention-DP group, and the step is timed as if every group of the replica ran the
    same load (the FFN experts see DP x the group's tokens): the symmetric-groups
    approximation, the same one ``prefill_chunk`` makes.
    """

    def __init__(self, deployed: Deployed, per_group: bool = False) -> None:
        self.deployed = deployed
        self.group_scale = deployed.attention_dp if per_group else 1
        model = deployed.model
        self.hidden = model.spec.hidden_size
        self.layers: list[tuple[LayerSpec, int]] = list(model.distinct_layers)
        # Attention kinds of the main model with their layer counts.
        self.kinds: list[tuple[AttentionKind, int]] = list(model.attention_groups)
        self.step_overhead_s = deployed.deployment.step_overhead_ms * 1e-3

    # ------------------------------------------------------------------ linear part
    def _matmul(
        self,
        tl: _Timeline,
        name: str,
        mat: Matrix,
        tokens: FloatArray,
        repeat: int,
        shard: int,
        active_fraction: FloatArray | float = 1.0,
    ) -> None:
        model = self.deployed.model
        weight_bytes = model.matrix_bytes(mat) * active_fraction / shard
        activation_bytes = tokens * (mat.rows + mat.cols / shard) * BF16_BYTES
        flops = tokens * mat.flops_per_token / shard
        tl.op(name, flops, weight_bytes + activation_bytes, model.math_dtype(mat), repeat)

    def _layer_linear(
        self, tl: _Timeline, layer: LayerSpec, repeat: int, tokens_replica: FloatArray
    ) -> None:
        d = self.deployed
        model = d.model
        tokens_local = tokens_replica / d.attention_dp
        kind = model.attention_kind(layer.attention)
        projections = kind.projections(self.hidden)
        for mat in projections:
            name = "projections" if mat.group == "attention" else mat.group
            self._matmul(tl, name, mat, tokens_local, repeat, shard_of(mat.group, mat, d))
        for mat in model.layer_matrices(layer)[len(projections) :]:
            if mat.group == "routed_experts":
                touched = expected_distinct_experts(
                    mat.count, mat.active or mat.count, tokens_replica
                )
                self._matmul(
                    tl,
                    "routed_experts",
                    mat,
                    tokens_replica,
                    repeat,
                    d.gpus,
                    active_fraction=touched / mat.count,
                )
            elif mat.group in ("dense_ffn", "shared_experts"):
                # Whole in every DP group, split over its TP ranks (see planner.plan.memory).
                self._matmul(tl, mat.group, mat, tokens_local, repeat, d.tp)
            else:  # router, mHC mixers: replicated, on the local tokens
                self._matmul(tl, mat.group, mat, tokens_local, repeat, 1)
        tl.op("misc", 0.0, 0.0, "bf16", repeat, kernels=MISC_KERNELS_PER_LAYER)
        # Communication. Tensor parallel: an all-reduce after attention. The FFN output is
        # all-reduced too when every rank holds every token (no DP attention: experts split
        # over the ranks need no all-to-all, the all-reduce combines them). With DP attention
        # tokens live in their group, so MoE layers dispatch and combine with an all-to-all
        # (DeepEP) instead.
        moe_all_to_all = (
            isinstance(layer.ffn, MoEFFNSpec) and d.deployment.ep > 1 and d.attention_dp > 1
        )
        if d.tp > 1:
            ring_bytes = 2 * (d.tp - 1) / d.tp * tokens_local * self.hidden * BF16_BYTES
            reduces = 1 if moe_all_to_all else ALL_REDUCES_PER_LAYER
            tl.collective("all_reduce", ring_bytes, repeat * reduces)
        if moe_all_to_all:
            assert isinstance(layer.ffn, MoEFFNSpec)
            ep = d.deployment.ep
            per_gpu_tokens = tokens_replica / d.gpus
            leaving = per_gpu_tokens * layer.ffn.experts_per_token * self.hidden * (ep - 1) / ep
            # Dispatch in FP8, combine in BF16 (DeepEP's defaults).
            tl.collective("all_to_all", leaving * (FP8_BYTES + BF16_BYTES), repeat)

    def linear_timeline(
        self,
        tokens_replica: ArrayLike,
        draft_tokens: ArrayLike = 0,
        sampled_tokens: ArrayLike | None = None,
    ) -> _Timeline:
        """Everything but attention, for a step over ``tokens_replica`` tokens (vectorised).
        The LM head runs only for ``sampled_tokens`` (default: every token, as in decode;
        a prefill chunk samples at most once); ``draft_tokens`` run the MTP module."""
        tl = _Timeline(self.deployed)
        tokens = np.asarray(tokens_replica, dtype=np.float64)
        for layer, count in self.layers:
            self._layer_linear(tl, layer, count, tokens)
        model = self.deployed.model
        dp, tp = self.deployed.attention_dp, self.deployed.tp
        sampled = tokens if sampled_tokens is None else np.asarray(sampled_tokens, np.float64)
        self._matmul(tl, "head", model.head_matrix, sampled / dp, 1, tp)
        mtp = model.spec.mtp
        drafts = np.asarray(draft_tokens, dtype=np.float64)
        if mtp is not None and np.any(drafts > 0):
            for _ in range(mtp.num_modules):
                self._layer_linear(tl, mtp.layer, 1, drafts)
                self._matmul(tl, "head", model.head_matrix, drafts / dp, 1, tp)
        return tl

    @cached_property
    def _linear_tables_s(self) -> tuple[FloatArray, FloatArray]:
        """(time without the LM head for 0..max_batched_tokens + max_num_seqs tokens,
        LM head time for 0..max_num_seqs sampled tokens); no MTP."""
        d = self.deployed.deployment
        scale = float(self.group_scale)
        tokens = np.arange(d.max_batched_tokens + d.max_num_seqs + 1, dtype=np.float64)
        body = self.linear_timeline(tokens * scale, sampled_tokens=0.0).total_s()
        sampled = np.arange(d.max_num_seqs + 1, dtype=np.float64)
        with_head = self.linear_timeline(0.0, sampled_tokens=sampled * scale).total_s()
        head = with_head - self.linear_timeline(0.0, sampled_tokens=0.0).total_s()
        return body, head

    def linear_time_s(self, tokens_replica: int, sampled_tokens: int) -> float:
        """Linear time of a step over ``tokens_replica`` tokens of which ``sampled_tokens``
        produce logits (one per decoding sequence, one per prefill that completes)."""
        body, head = self._linear_tables_s
        if tokens_replica < len(body) and sampled_tokens < len(head):
            return float(body[tokens_replica] + head[sampled_tokens])
        scale = self.group_scale
        timeline = self.linear_timeline(
            tokens_replica * scale, sampled_tokens=sampled_tokens * scale
        )
        return float(timeline.total_s())

    # ------------------------------------------------------------------ attention part
    @staticmethod
    def decode_work(
        kind: AttentionKind, contexts: ArrayLike, query_tokens: int = 1, axis: int | None = 0
    ) -> AttentionWork:
        """Summed work of decode sequences at the given contexts (sum over ``axis``)."""
        c = np.asarray(contexts, dtype=np.int64)
        index_bytes = kind.index_read_bytes(c)
        return AttentionWork(
            np.sum(kind.attn_flops(query_tokens, c), axis=axis),
            np.sum(kind.read_bytes(c) - index_bytes, axis=axis),
            np.sum(kind.indexer_flops(query_tokens, c), axis=axis),
            np.sum(index_bytes, axis=axis),
        )

    @staticmethod
    def chunk_work(kind: AttentionKind, chunk_tokens: int, context: ArrayLike) -> AttentionWork:
        """Work of one prefill chunk of T tokens ending at context L (vectorised over L)."""
        c = np.asarray(context, dtype=np.int64)
        index_bytes = kind.index_read_bytes(c)
        return AttentionWork(
            kind.attn_flops(chunk_tokens, c),
            kind.read_bytes(c) - index_bytes,
            kind.indexer_flops(chunk_tokens, c),
            index_bytes,
        )

    def attention_timeline(self, work: list[AttentionWork]) -> _Timeline:
        """One attention (and indexer) kernel per layer, over the summed work of the step;
        ``work`` is aligned with ``self.kinds``. Each DP group does 1/DP of it."""
        d = self.deployed
        tl = _Timeline(d)
        for (kind, count), w in zip(self.kinds, work, strict=True):
            share = kind.kv_shard_fraction(d.tp) / d.attention_dp
            tl.op(
                f"attention:{kind.label}",
                np.asarray(w.flops) / d.tp / d.attention_dp,
                np.asarray(w.main_read_bytes) * share,
                ATTENTION_MATH_DTYPE,
                count,
            )
            if kind.has_indexer:
                tl.op(
                    "indexer",
                    # The indexer is replicated on every TP rank: no division by TP.
                    np.asarray(w.index_flops) / d.attention_dp,
                    np.asarray(w.index_read_bytes) / d.attention_dp,
                    kind.index_math_dtype,
                    count,
                )
        return tl

    def attention_time_s(self, work: list[AttentionWork]) -> FloatArray:
        """Attention time of the step (of one DP group's step with per_group)."""
        if self.group_scale != 1:
            work = [_scaled(w, self.group_scale) for w in work]
        return self.attention_timeline(work).total_s()

    @cached_property
    def _attention_constants(self) -> list[tuple[AttentionKind, int, float, float, float, float]]:
        """Per kind: layers, seconds per FLOP and per byte of the attention kernel, and of
        the indexer kernel (0 without one); the DP split and KV share folded in."""
        d = self.deployed
        gpu = d.gpu
        # Work given for the whole replica is split over its DP groups; work given for one
        # group (per_group) is that group's own.
        groups = d.attention_dp / self.group_scale
        per_byte = 1.0 / gpu.achievable_bandwidth_bytes_per_s / groups
        out = []
        for kind, count in self.kinds:
            attn_flop_s = 1.0 / gpu.achievable_flop_per_s(ATTENTION_MATH_DTYPE) / d.tp / groups
            index_flop_s = index_byte_s = 0.0
            if kind.has_indexer:
                index_flop_s = 1.0 / gpu.achievable_flop_per_s(kind.index_math_dtype) / groups
                index_byte_s = per_byte
            out.append(
                (
                    kind,
                    count,
                    attn_flop_s,
                    per_byte * kind.kv_shard_fraction(d.tp),
                    index_flop_s,
                    index_byte_s,
                )
            )
        return out

    @cached_property
    def _work_table(self) -> DecodeWorkTable:
        return DecodeWorkTable(self.kinds)

    def decode_work_sums(self, contexts: ArrayLike, axis: int = 0) -> list[FloatArray]:
        """Per kind, the summed decode work of sequences at these contexts (sum over
        ``axis``) as four rows: attention FLOPs, main read bytes, indexer FLOPs, indexer
        read bytes; equal to ``decode_work`` (sums of dyadic rationals are exact)."""
        c = np.asarray(contexts, dtype=np.int64)
        sums = self._work_table.sums(c, axis)
        if sums is not None:
            return [sums[4 * i : 4 * i + 4] for i in range(len(self.kinds))]
        out = []
        for kind, _ in self.kinds:
            w = StepModel.decode_work(kind, c, axis=axis)
            out.append(
                np.array(
                    [w.flops, w.main_read_bytes, w.index_flops, w.index_read_bytes],
                    dtype=np.float64,
                )
            )
        return out

    def decode_attention_time_s(self, contexts: ArrayLike, axis: int = 0) -> FloatArray | float:
        """Attention time of a decode batch whose sequences have these contexts, summed over
        ``axis`` (a 2-D array gives one time per column). Same formula as
        attention_timeline, written for the simulator's hot loop."""
        kernel_s = self.deployed.gpu.kernel_overhead_s(self.deployed.deployment.cuda_graphs)
        total: FloatArray | float = 0.0
        sums = self.decode_work_sums(contexts, axis)
        for (_, count, flop_s, byte_s, index_flop_s, index_byte_s), work in zip(
            self._attention_constants, sums, strict=True
        ):
            main = np.maximum(work[0] * flop_s, work[1] * byte_s)
            total = total + count * (main + kernel_s)
            if index_flop_s:
                index = np.maximum(work[2] * index_flop_s, work[3] * index_byte_s)
                total = total + count * (index + kernel_s)
        return total

    def mixed_attention_time_s(
        self, decode_contexts: ArrayLike, chunks: list[tuple[int, int]]
    ) -> float:
        """``attention_time_s`` of a step with decode sequences at ``decode_contexts`` and
        prefill chunks ``(tokens, context after the chunk)``, computed without building a
        timeline (the same operations in the same order; for the simulator's hot loop)."""
        contexts = np.asarray(decode_contexts, dtype=np.int64)
        decode = self.decode_work_sums(contexts) if contexts.size else None
        d = self.deployed
        gpu = d.gpu
        kernel_s = gpu.kernel_overhead_s(d.deployment.cuda_graphs)
        bandwidth = gpu.achievable_bandwidth_bytes_per_s
        compute = memory = overhead = 0.0
        for i, (kind, count) in enumerate(self.kinds):
            fields = [0.0, 0.0, 0.0, 0.0]
            if decode is not None:
                fields = [float(x) for x in decode[i]]
            for tokens, end in chunks:
                # A chunk reads the cache at its end context as a decode would (the table's
                # byte rows); its FLOPs cover all of its queries.
                read = self._work_table.at(end)
                if read is None:
                    w = StepModel.chunk_work(kind, tokens, end)
                    main_bytes, index_bytes = float(w.main_read_bytes), float(w.index_read_bytes)
                else:
                    main_bytes, index_bytes = read[4 * i + 1], read[4 * i + 3]
                fields[0] += float(kind.attn_flops(tokens, end))
                fields[1] += main_bytes
                fields[2] += float(kind.indexer_flops(tokens, end))
                fields[3] += index_bytes
            if self.group_scale != 1:
                fields = [x * self.group_scale for x in fields]
            share = kind.kv_shard_fraction(d.tp) / d.attention_dp
            ops = [
                (
                    fields[0] / d.tp / d.attention_dp,
                    fields[1] * share,
                    gpu.achievable_flop_per_s(ATTENTION_MATH_DTYPE),
                )
            ]
            if kind.has_indexer:
                ops.append(
                    (
                        fields[2] / d.attention_dp,
                        fields[3] / d.attention_dp,
                        gpu.achievable_flop_per_s(kind.index_math_dtype),
                    )
                )
            for flops, nbytes, flop_per_s in ops:
                t_compute = flops / flop_per_s
                t_memory = nbytes / bandwidth
                roof = max(t_compute, t_memory) * count
                if t_compute >= t_memory:
                    compute += roof
                else:
                    memory += roof
                overhead += count * kernel_s
        return compute + memory + 0.0 + overhead


class DecodeWorkTable:
    """One sequence's decode attention work at every context 0..n-1, for each attention
    kind (rows: FLOPs, main read bytes, indexer FLOPs, indexer read bytes per kind), so a
    batch's sums are one gather and one sum instead of a dozen small array calls.

    Values come from the attention kinds' own methods (``StepModel.decode_work``); they
    are dyadic rationals (byte counts with 1/2..1/8-byte parts, integer FLOPs) far below
    2^53, so their sums are exact in any order and equal the direct computation. The table
    grows by doubling up to ``MAX_CONTEXT`` contexts; longer contexts are computed
    directly (``sums`` returns None).
    """

    MIN_CONTEXT = 1 << 12
    MAX_CONTEXT = 1 << 18

    def __init__(self, kinds: list[tuple[AttentionKind, int]]) -> None:
        self.kinds = kinds
        self.table: FloatArray = np.zeros((4 * len(kinds), 0), dtype=np.float64)

    def _grow(self, needed: int) -> bool:
        if needed <= self.table.shape[1]:
            return True
        if needed > self.MAX_CONTEXT:
            return False
        size = self.MIN_CONTEXT
        while size < needed:
            size *= 2
        c = np.arange(size, dtype=np.int64)
        rows = []
        for kind, _ in self.kinds:
            w = StepModel.decode_work(kind, c[None, :], axis=0)
            rows += [w.flops, w.main_read_bytes, w.index_flops, w.index_read_bytes]
        self.table = np.ascontiguousarray(
            np.stack([np.broadcast_to(np.asarray(r, dtype=np.float64), (size,)) for r in rows])
        )
        return True

    def at(self, context: int) -> list[float] | None:
        """Every row at one context; None beyond the table."""
        if not self._grow(context + 1):
            return None
        column: list[float] = self.table[:, context].tolist()
        return column

    def sums(self, contexts: NDArray[np.int64], axis: int) -> FloatArray | None:
        """Rows summed over ``axis`` of ``contexts``; None if a context is beyond the table."""
        if contexts.size == 0 or not self._grow(int(contexts.max()) + 1):
            return None
        gathered = self.table[:, contexts]
        return np.asarray(gathered.sum(axis=axis + 1), dtype=np.float64)


def _scaled(work: AttentionWork, factor: float) -> AttentionWork:
    """The same work done ``factor`` times (identical sequences or DP groups)."""
    return AttentionWork(
        *(
            np.asarray(x) * factor
            for x in (work.flops, work.main_read_bytes, work.index_flops, work.index_read_bytes)
        )
    )


_STEP_MODEL_ATTR = "_cached_step_model"


def step_model(deployed: Deployed) -> StepModel:
    """A replica's StepModel, built once per Deployed object and kept on it (Deployed is
    frozen and unhashable, so the cache lives in the instance; its tables are reused)."""
    cached = deployed.__dict__.get(_STEP_MODEL_ATTR)
    if not isinstance(cached, StepModel):
        cached = StepModel(deployed)
        object.__setattr__(deployed, _STEP_MODEL_ATTR, cached)
    return cached


def decode_time_s(deployed: Deployed, batch: int, context_tokens: int) -> float:
    """decode_step(...).time_s for one context, from the cached tables (no breakdown)."""
    if deployed.deployment.mtp:  # the tables leave the MTP module out
        return float(decode_step(deployed, batch, context_tokens).time_s)
    model = step_model(deployed)
    work = [
        _scaled(StepModel.chunk_work(kind, 1, context_tokens), batch) for kind, _ in model.kinds
    ]
    return (
        model.step_overhead_s
        + model.linear_time_s(batch, batch)
        + float(model.attention_time_s(work))
    )


def decode_step(deployed: Deployed, batch: int, context_tokens: ArrayLike) -> StepTime:
    """One decode step for ``batch`` sequences (replica-wide) at context L (vectorised)."""
    model = StepModel(deployed)
    q = deployed.query_tokens_per_step
    ctx = np.asarray(context_tokens, dtype=np.int64)
    tl = model.linear_timeline(
        np.full(np.shape(ctx), float(batch * q)), batch if deployed.deployment.mtp else 0
    )
    # Per-sequence work at each context (one query chunk of q tokens), times the batch.
    work = [StepModel.chunk_work(kind, q, ctx) for kind, _ in model.kinds]
    scaled = [_scaled(w, batch) for w in work]
    tl.merge(model.attention_timeline(scaled))
    return tl.result(model.step_overhead_s)


def prefill_chunk(deployed: Deployed, chunk_tokens: int, context_tokens: ArrayLike) -> StepTime:
    """Prefill of one chunk of T tokens ending at context L, in every attention-DP group."""
    model = StepModel(deployed)
    ctx = np.asarray(context_tokens, dtype=np.int64)
    groups = deployed.attention_dp
    # The chunk samples once, if it is the prompt's last: charge one head row per group.
    tl = model.linear_timeline(
        np.full(np.shape(ctx), float(chunk_tokens * groups)), sampled_tokens=float(groups)
    )
    work = [StepModel.chunk_work(kind, chunk_tokens, ctx) for kind, _ in model.kinds]
    scaled = [_scaled(w, groups) for w in work]
    tl.merge(model.attention_timeline(scaled))
    return tl.result(model.step_overhead_s)


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
