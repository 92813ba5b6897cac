"""Step times for decode and prefill on one replica, operator by operator.

Each operator's time comes from its efficiency curve for the GPU and serving engine
(``planner.plan.efficiency``: fitted to measured kernel tables where they exist, the GPU
profile's constant fractions otherwise):
- dense GEMMs (projections, dense FFN, shared experts, router, mHC mixers, LM head):
  fixed time + max(FLOPs / (peak x efficiency(m, n, k)), bytes / achievable bandwidth);
  engines fuse matrices that read the same input into one GEMM (``FUSED``);
- routed experts: one fused-MoE kernel timed on the busiest expert-parallel rank, which
  receives R token-expert assignments over A active experts under the deployment's routing
  model (``Deployment.moe_routing_alpha``; ``planner.plan.efficiency.routing``);
- attention and indexer kernels per layer kind, decode (absorbed MLA form, also with MTP's
  extra query token) and prefill (naive MLA form) timed on their own curves over the
  summed work of the step's sequences; where the engine's kernel needs more query heads
  than a rank owns (``engines/*.yaml`` ``head_padding``, ``kernel_heads``) the padded
  heads cost FLOPs (and, where the engine allocates them, their query and output bytes),
  never extra cache reads: MLA-family caches are shared by all heads;
- memory-bound kernels (residual add + RMSNorm, mHC stream mixing, SiLU x mul, RoPE, KV
  cache writes, routing top-k, embedding lookup, sampling) as the bytes they move;
- collectives: tensor-parallel all-reduce and expert-parallel all-to-all on the scale-up
  link inside the NVLink domain, on the scale-out NIC beyond it; the busiest rank's
  incoming tokens bound the all-to-all. Communication is added after compute, or overlapped
  with it (``Deployment.overlap_micro_batches``: DeepSeek's dual micro-batch).
A per-step host cost (the engine's fitted ``step_overhead_us``, or ``step_overhead_ms``)
is added once per step.

A step splits into two parts (``StepModel``), which the simulator reuses:
- the *linear* part depends only on how many tokens the step processes;
- the *attention* part depends on each sequence's context: per layer kind, one kernel
  over the summed work of all decode sequences and one over all prefill chunks.
With attention data parallelism (DP groups of TP GPUs), each group handles 1/DP of the
sequences; the FFN (experts over all GPUs) sees every token of the replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.dtypes import storage_format
from planner.model.attention import AttentionKind, Matrix
from planner.model.model import LINEAR_COMPONENT
from planner.plan.deployed import Deployed
from planner.plan.efficiency import Efficiency, OpTime, deployment_efficiency
from planner.plan.efficiency.routing import busiest_rank
from planner.plan.efficiency.schema import GemmClass
from planner.plan.memory import shard_of
from planner.schema import LayerSpec, MoEFFNSpec

FloatArray = NDArray[np.float64]
# Integers up to 2**53 are exact in float64, so are sums of them that stay below it.
EXACT_FLOAT_INTEGER = 2.0**53
CHUNK_CACHE_ENTRIES = 1 << 16  # prefill chunks whose work StepModel keeps (a few MB)
BF16_BYTES = 2
FP8_BYTES = 1
FP32_BYTES = 4
ALL_REDUCES_PER_LAYER = 2  # after attention and after the FFN (tensor parallel)
ATTENTION_MATH_DTYPE = "bf16"  # FlashMLA / FlashAttention dequantise the cache to BF16
# Matrices engines run as one GEMM because they read the same input (vLLM's
# QKVParallelLinear, MergedColumnParallelLinear gate_up_proj, DeepSeek fused_qkv_a_proj).
FUSED: tuple[frozenset[str], ...] = (
    frozenset({"q_proj", "k_proj", "v_proj"}),
    frozenset({"wq_a", "wkv_a"}),
    frozenset({"wq_a", "wkv"}),
    frozenset({"compressor.wkv", "compressor.wgate"}),
    frozenset({"indexer.compressor.wkv", "indexer.compressor.wgate"}),
    frozenset({"mlp.gate_proj", "mlp.up_proj"}),
    frozenset({"shared_experts.gate_proj", "shared_experts.up_proj"}),
)
# Memory traffic of the elementwise kernels, per token (BF16 activations):
# - residual add + RMSNorm reads the residual and the sublayer output and writes both:
#   4 h values; with mHC (hc_mult m > 1) the stream is m h wide: pre-mix reads m h and
#   writes h, the norm reads and writes h, post-mix reads h + m h and writes m h:
#   (3 m + 4) h values in three kernels.
NORM_VALUES_PER_HIDDEN = 4
# - SiLU(gate) x up reads 2 I and writes I values (dense FFN and shared experts; routed
#   experts do it inside the fused MoE kernel).
ACTIVATION_VALUES_PER_INTER = 3
# - sampling reads the FP32 logits twice (softmax / top-k, then the draw).
SAMPLER_PASSES = 2
# - a dispatched token goes out in FP8 and comes back in BF16 (DeepEP's defaults).
ALL_TO_ALL_BYTES_PER_VALUE = FP8_BYTES + BF16_BYTES


def expected_distinct_experts(
    num_experts: int, experts_per_token: int, tokens: ArrayLike
) -> FloatArray:
    """E * (1 - (1 - k/E)^T): distinct experts touched by T tokens choosing k of E each."""
    t = np.asarray(tokens, dtype=np.float64)
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** t)


def destinations_per_token(
    ep: ArrayLike, experts_per_token: ArrayLike, domain_gpus: int
) -> tuple[FloatArray, FloatArray]:
    """Copies of one token an all-to-all sends (DeepEP: once per destination rank inside the
    sender's NVLink domain, once per other domain across it) when its k experts fall
    uniformly on the ep ranks: (other ranks of its domain hit, other domains hit). A set of
    s ranks out of ep is hit by s (1 - (1 - 1/ep)^k) ranks on average."""
    n = np.asarray(ep, dtype=np.float64)
    k = np.asarray(experts_per_token, dtype=np.float64)
    g = np.minimum(n, domain_gpus)
    inside = (g - 1) * (1 - (1 - 1 / n) ** k)
    domains = n / g
    across = np.where(domains > 1, (domains - 1) * (1 - (1 - 1 / domains) ** k), 0.0)
    return np.asarray(inside, dtype=np.float64), np.asarray(across, dtype=np.float64)


def gemm_class(deployed: Deployed, fmt_name: str) -> tuple[GemmClass, str]:
    """(curve class, math dtype) a weight format runs as on the deployment's GPU."""
    fmt = storage_format(fmt_name)
    math = deployed.gpu.math_dtype(fmt.math_dtype)
    if math == "fp4":
        return "fp4", math
    if math in ("fp8", "int8"):
        blocked = fmt.scale_bytes > 0 and (fmt.scale_block_rows > 1 or fmt.math_dtype == "fp4")
        return ("fp8_block" if blocked else "fp8"), math
    return "bf16", math


@dataclass
class StepTime:
    """Time of one step on the replica (every GPU works in parallel on its share)."""

    time_s: FloatArray
    compute_bound_s: FloatArray
    memory_bound_s: FloatArray
    overhead_s: FloatArray | float
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

    def __init__(self, deployed: Deployed, eff: Efficiency) -> None:
        self.eff = eff
        profile = deployed.gpu.profile.efficiency
        # Eager launches cost more than graph replays (profile estimates; the fitted fixed
        # times are CUDA-graph replays where the collector could capture one).
        self.eager_extra_s = (
            0.0
            if deployed.deployment.cuda_graphs
            else max(profile.kernel_overhead_no_graphs_us - profile.kernel_overhead_us, 0.0) * 1e-6
        )
        # Per element where a step's groups disagree (``linear_timeline``'s busy groups).
        self.overlap: bool | NDArray[np.bool_] = deployed.deployment.overlap_micro_batches
        self.compute: FloatArray | float = 0.0
        self.memory: FloatArray | float = 0.0
        self.comm: FloatArray | float = 0.0
        self.flops: FloatArray | float = 0.0
        self.bytes: FloatArray | float = 0.0
        self.overhead: FloatArray | float = 0.0
        self.work: FloatArray | float = 0.0  # this timeline's own operator time
        self.own_comm: FloatArray | float = 0.0  # and its own communication
        self.serial: FloatArray | float = 0.0  # merged timelines' totals
        self.by_op: dict[str, FloatArray] = {}

    def add(
        self, name: str, t: OpTime, flops: ArrayLike, nbytes: ArrayLike, repeat: float = 1
    ) -> None:
        compute = np.asarray(t.compute_s, dtype=np.float64)
        memory = np.asarray(t.memory_s, dtype=np.float64)
        roof = np.maximum(compute, memory) * repeat
        compute_bound = compute >= memory
        self.compute = self.compute + np.where(compute_bound, roof, 0.0)
        self.memory = self.memory + np.where(compute_bound, 0.0, roof)
        fixed = (np.asarray(t.fixed_s, dtype=np.float64) + self.eager_extra_s) * repeat
        self.overhead = self.overhead + fixed
        self.work = self.work + roof + fixed
        self.flops = self.flops + np.asarray(flops, dtype=np.float64) * repeat
        self.bytes = self.bytes + np.asarray(nbytes, dtype=np.float64) * repeat
        self.by_op[name] = self.by_op.get(name, 0.0) + roof + fixed

    def collective(self, name: str, seconds: ArrayLike, repeat: float = 1) -> None:
        t = np.asarray(seconds, dtype=np.float64) * repeat
        self.comm = self.comm + t
        self.own_comm = self.own_comm + t
        self.by_op[name] = self.by_op.get(name, 0.0) + t

    def merge(self, other: _Timeline) -> None:
        """Add another timeline that runs after this one (its own overlap rule kept)."""
        self.compute = self.compute + other.compute
        self.memory = self.memory + other.memory
        self.comm = self.comm + other.comm
        self.flops = self.flops + other.flops
        self.bytes = self.bytes + other.bytes
        self.overhead = self.overhead + other.overhead
        self.serial = self.serial + other.total_s()
        for name, t in other.by_op.items():
            self.by_op[name] = self.by_op.get(name, 0.0) + t

    def total_s(self) -> FloatArray:
        # Dual micro-batch: one micro-batch's communication runs while the other computes
        # its projections and FFN (attention is not counted as cover).
        own = np.where(
            self.overlap, np.maximum(self.work, self.own_comm), self.work + self.own_comm
        )
        return np.asarray(own + self.serial, dtype=np.float64)

    def result(self, step_overhead_s: float) -> StepTime:
        def arr(x: FloatArray | float) -> FloatArray:
            return np.asarray(x, dtype=np.float64)

        by_op = dict(self.by_op)
        if step_overhead_s:
            by_op["step_overhead"] = np.asarray(step_overhead_s, dtype=np.float64)
        return StepTime(
            self.total_s() + step_overhead_s,
            arr(self.compute),
            arr(self.memory),
            self.overhead + step_overhead_s,
            arr(self.comm),
            arr(self.flops),
            arr(self.bytes),
            by_op,
        )


@dataclass(frozen=True)
class PhaseWork:
    """Summed attention work of one phase for one kind; fields add up over sequences."""

    flops: FloatArray | float = 0.0
    flops_per_query: FloatArray | float = 0.0  # sum over sequences of FLOPs / query tokens
    read_bytes: FloatArray | float = 0.0
    index_flops: FloatArray | float = 0.0
    index_flops_per_query: FloatArray | float = 0.0
    index_read_bytes: FloatArray | float = 0.0
    sequences: FloatArray | float = 0.0
    queries: FloatArray | float = 0.0  # query tokens (each sequence's q, summed)

    def __add__(self, other: PhaseWork) -> PhaseWork:
        return PhaseWork(
            *(np.add(getattr(self, f.name), getattr(other, f.name)) for f in fields(PhaseWork))
        )

    def scaled(self, factor: ArrayLike) -> PhaseWork:
        return PhaseWork(*(np.multiply(getattr(self, f.name), factor) for f in fields(PhaseWork)))

    def summed(self, axis: int | None) -> PhaseWork:
        return PhaseWork(*(np.sum(getattr(self, f.name), axis=axis) for f in fields(PhaseWork)))


@dataclass(frozen=True)
class AttentionWork:
    """Summed work of a step's sequences for one attention kind (replica-wide): decode
    sequences and prefill chunks run different kernels. ``a + b`` adds two steps' work."""

    decode: PhaseWork = PhaseWork()
    prefill: PhaseWork = PhaseWork()

    def __add__(self, other: AttentionWork) -> AttentionWork:
        return AttentionWork(self.decode + other.decode, self.prefill + other.prefill)

    def scaled(self, factor: ArrayLike) -> AttentionWork:
        """The same work done ``factor`` times (identical sequences or DP groups)."""
        return AttentionWork(self.decode.scaled(factor), self.prefill.scaled(factor))

    @property
    def flops(self) -> FloatArray | float:
        return np.add(self.decode.flops, self.prefill.flops)

    @property
    def main_read_bytes(self) -> FloatArray | float:
        return np.add(self.decode.read_bytes, self.prefill.read_bytes)

    @property
    def index_flops(self) -> FloatArray | float:
        return np.add(self.decode.index_flops, self.prefill.index_flops)

    @property
    def index_read_bytes(self) -> FloatArray | float:
        return np.add(self.decode.index_read_bytes, self.prefill.index_read_bytes)

    @staticmethod
    def total(parts: list[AttentionWork]) -> AttentionWork:
        out = AttentionWork()
        for p in parts:
            out = out + p
        return out


def _phase_work(
    kind: AttentionKind, query_tokens: int, contexts: ArrayLike, decode: bool
) -> PhaseWork:
    """Work of one sequence feeding q query tokens that end at context L (vectorised)."""
    c = np.asarray(contexts, dtype=np.int64)
    q = max(query_tokens, 1)
    flops = kind.decode_attn_flops(q, c) if decode else kind.attn_flops(q, c)
    index_bytes = kind.index_read_bytes(c)
    index_flops = kind.indexer_flops(q, c)
    ones = np.ones(np.shape(c))
    return PhaseWork(
        flops,
        flops / q,
        kind.read_bytes(c) - index_bytes,
        index_flops,
        index_flops / q,
        index_bytes,
        ones,
        q * ones,
    )


@dataclass(frozen=True)
class KernelHeads:
    """The query heads one rank's attention kernel computes for an attention kind and
    phase under the deployment's engine and GPU (``engines/*.yaml`` ``head_padding``):
    ``heads`` real heads per rank, ``kernel_heads`` computed (padded heads cost their
    FLOPs: ``flops_factor``), and the padded heads' query read and output write per query
    token where the engine materialises them (``extra_bytes_per_query``; a row tile pads
    inside the kernel and moves no extra bytes). The cache is shared by all heads (MLA,
    DSA, V4), so padding reads no more of it."""

    heads: float
    kernel_heads: float
    extra_bytes_per_query: float = 0.0

    @property
    def flops_factor(self) -> float:
        return self.kernel_heads / self.heads if self.heads else 1.0


def _query_output_values(kind: AttentionKind) -> int:
    """Values per head and query token the attention kernel reads (query) and writes
    (output): absorbed MLA / DSA latent + RoPE in, latent out; V4 head_dim in and out."""
    spec = kind.spec
    latent = getattr(spec, "kv_lora_rank", None)
    if latent is not None:
        return int(latent) + int(getattr(spec, "qk_rope_head_dim", 0)) + int(latent)
    return 2 * int(getattr(spec, "head_dim", 0))


def kernel_heads(
    deployed: Deployed, kind: AttentionKind, phase: str, query_tokens: int = 1
) -> KernelHeads:
    """Heads the engine's kernel runs per rank for ``kind`` in ``phase`` ("prefill" or
    "decode"), sequences feeding ``query_tokens`` queries each (decode with MTP: 2)."""
    heads = kind.spec.num_heads / deployed.tp
    rule = deployed.engine.head_padding(kind.label.lower(), phase, deployed.gpu.name)
    if rule is None:
        return KernelHeads(heads, heads)
    padded = max(rule.kernel_heads(heads, query_tokens), heads)
    extra = 0.0
    if rule.head_counts:  # the engine allocates the padded query and output tensors
        extra = (padded - heads) * _query_output_values(kind) * BF16_BYTES
    return KernelHeads(heads, padded, extra)


def _fused_groups(mats: list[Matrix]) -> list[list[Matrix]]:
    """Matrices grouped as engines run them (see FUSED); order kept."""
    groups: list[list[Matrix]] = []
    used: set[int] = set()
    names = {m.name: i for i, m in enumerate(mats)}
    for i, mat in enumerate(mats):
        if i in used:
            continue
        group = [mat]
        used.add(i)
        for fused in FUSED:
            if mat.name not in fused:
                continue
            partners = [names.get(other) for other in sorted(fused - {mat.name})]
            found = [j for j in partners if j is not None and j not in used]
            if found and all(mats[j].rows == mat.rows for j in found):
                for j in found:
                    group.append(mats[j])
                    used.add(j)
                break
        groups.append(group)
    return groups


class StepModel:
    """Step time of a replica = step overhead + linear(tokens) + attention(contexts).

    With ``per_group=True`` (data-parallel attention in the simulator) the inputs describe
    ONE attention-DP group, and the step is timed as if every group of the replica ran the
    same load (the FFN experts see DP x the group's tokens), or, given ``busy_groups`` k,
    as if k groups ran it and the others empty batches: the symmetric-groups
    approximation, the same one ``prefill_chunk`` makes.
    """

    def __init__(self, deployed: Deployed, per_group: bool = False) -> None:
        self.deployed = deployed
        self.eff = deployment_efficiency(deployed.gpu, deployed.deployment)
        self.group_scale = deployed.attention_dp if per_group else 1
        # Linear tables for steps with fewer DP groups busy (linear_time_s), by count.
        self._partial_tables: dict[int, tuple[FloatArray, FloatArray]] = {}
        model = deployed.model
        self.hidden = model.spec.hidden_size
        self.layers: list[tuple[LayerSpec, int]] = list(model.distinct_layers)
        # Attention kinds of the main model with their layer counts.
        self.kinds: list[tuple[AttentionKind, int]] = list(model.attention_groups)
        # Heads each kind's kernels run per rank (engine head padding), per phase.
        q = deployed.query_tokens_per_step
        self.kernel_heads: dict[str, list[KernelHeads]] = {
            phase: [kernel_heads(deployed, kind, phase, q) for kind, _ in self.kinds]
            for phase in ("decode", "prefill")
        }
        self.moe_dispatch = deployed.deployment.moe_dispatch or self.eff.moe_dispatch
        override_ms = deployed.deployment.step_overhead_ms
        self.step_overhead_s = (
            override_ms * 1e-3 if override_ms is not None else self.eff.step_overhead_s
        )

    # ------------------------------------------------------------------ linear part
    def _gemm(
        self,
        tl: _Timeline,
        name: str,
        mats: list[Matrix],
        tokens: FloatArray,
        repeat: int,
        shard: int,
    ) -> None:
        """One GEMM over ``tokens`` rows through the (fused) matrices, sharded ``shard``
        ways: the output dimension (column parallel), or the input for matrices that
        produce the hidden state (row parallel)."""
        model = self.deployed.model
        first = mats[0]
        k = float(first.rows)
        n = float(sum(m.cols for m in mats))
        count = first.count
        if shard > 1 and count > 1 and count % shard == 0:
            count //= shard  # a grouped matrix (V4's wo_a): whole groups per rank
        elif shard > 1 and first.cols == self.hidden and len(mats) == 1:
            k = k / shard
        else:
            n = n / shard
        weight_bytes = sum(model.matrix_bytes(m) for m in mats) / shard
        activation_bytes = tokens * count * (k + n) * BF16_BYTES
        flops = tokens * sum(m.flops_per_token for m in mats) / shard
        cls, math = gemm_class(self.deployed, model.matrix_format(first))
        t = self.eff.gemm_time(cls, math, tokens, n, k, flops, weight_bytes + activation_bytes)
        tl.add(name, t, flops, weight_bytes + activation_bytes, repeat)

    def _experts(
        self,
        tl: _Timeline,
        layer: LayerSpec,
        mats: list[Matrix],
        tokens: FloatArray,
        repeat: int,
        local: FloatArray,
    ) -> None:
        """The routed experts as one fused MoE kernel on the busiest EP rank, over the
        ``tokens`` of every DP group in the step (``local``: the busiest group's)."""
        assert isinstance(layer.ffn, MoEFFNSpec)
        d = self.deployed
        model = d.model
        ffn = layer.ffn
        ep = d.deployment.ep
        moe_tp = max(d.gpus // ep, 1)
        assignments, active = busiest_rank(
            ffn.num_routed_experts,
            ffn.experts_per_token,
            ep,
            tokens,
            d.deployment.moe_routing_alpha,
        )
        per_expert_bytes = sum(model.matrix_bytes(m) for m in mats) / mats[0].count / moe_tp
        flops_per_assignment = sum(2.0 * m.rows * m.cols for m in mats) / moe_tp
        inter_local = ffn.expert_intermediate_size / moe_tp
        # Tokens in and out (hidden) and the gate/up output written and read back.
        activation_bytes = assignments * (2 * self.hidden + 3 * inter_local) * BF16_BYTES
        nbytes = active * per_expert_bytes + activation_bytes
        # Pairs the rank is handed: after an all-to-all only the R dispatched to it; when
        # every rank holds every token (no DP attention, or tokens all-gathered) all T k
        # pairs, masked or not.
        pairs = assignments if self._uses_all_to_all(layer) else tokens * ffn.experts_per_token
        pair_bytes = pairs * self.hidden * BF16_BYTES
        cls, math = gemm_class(d, model.matrix_format(mats[0]))
        shape = (
            self.hidden,
            ffn.expert_intermediate_size,
            ffn.num_routed_experts,
            ffn.experts_per_token,
        )
        t = self.eff.grouped_gemm_time(
            cls, math, assignments, active, flops_per_assignment, nbytes, pair_bytes, shape, moe_tp
        )
        tl.add("routed_experts", t, flops_per_assignment * assignments, nbytes, repeat)
        # Router top-k over FP32 logits on the local tokens.
        self._elementwise(tl, "moe_routing", local * ffn.num_routed_experts * FP32_BYTES, repeat)
        self._moe_all_to_all(tl, layer, local, assignments, repeat)

    def _elementwise(self, tl: _Timeline, name: str, nbytes: ArrayLike, repeat: float) -> None:
        tl.add(name, self.eff.memory_time(nbytes), 0.0, nbytes, repeat)

    def _attention_elementwise(
        self, tl: _Timeline, kind: AttentionKind, local: FloatArray, repeat: int
    ) -> None:
        d = self.deployed
        # RoPE on the rotary part of each query and key head, read and written (MLA and V4
        # have one shared key per token).
        rope_dims = _rope_dims(kind)
        kv_heads = getattr(kind.spec, "num_kv_heads", None)
        keys_local = -(-kv_heads // d.tp) if kv_heads else 1
        heads_local = kind.spec.num_heads / d.tp
        rope_bytes = local * (heads_local + keys_local) * rope_dims * 2 * BF16_BYTES
        self._elementwise(tl, "rope", rope_bytes, repeat)
        # The new tokens' cache entries: read from the projection, written to the cache.
        kv_bytes = local * 2 * kind.kv_bytes_per_token * kind.kv_shard_fraction(d.tp)
        self._elementwise(tl, "kv_write", kv_bytes, repeat)

    def attention_block_linear_s(self, kind: AttentionKind, tokens_local: ArrayLike) -> FloatArray:
        """One layer's attention-block projections (fused as engines run them) and its RoPE
        and KV-write kernels, for ``tokens_local`` tokens on one GPU: everything an
        attention-module measurement holds besides the attention and indexer kernels
        (benchmarks/fit uses it to fit those kernels to module tables)."""
        d = self.deployed
        tl = _Timeline(d, self.eff)
        local = np.asarray(tokens_local, dtype=np.float64)
        for group in _fused_groups(kind.projections(self.hidden)):
            mat = group[0]
            name = LINEAR_COMPONENT.get(mat.group, mat.group)
            self._gemm(tl, name, group, local, 1, shard_of(mat.group, mat, d))
        self._attention_elementwise(tl, kind, local, 1)
        return tl.total_s()

    def _layer_elementwise(
        self, tl: _Timeline, layer: LayerSpec, kind: AttentionKind, local: FloatArray, repeat: int
    ) -> None:
        d = self.deployed
        h = self.hidden
        m = d.model.spec.hc_mult
        # Two sublayers (attention, FFN), each with its residual/norm (and mHC) kernels.
        if m == 1:
            per_sublayer, kernels = NORM_VALUES_PER_HIDDEN * h, 1
        else:
            per_sublayer, kernels = (3 * m + NORM_VALUES_PER_HIDDEN) * h, 3
        norm_bytes = local * per_sublayer * BF16_BYTES / kernels
        self._elementwise(tl, "norms", norm_bytes, repeat * 2 * kernels)
        self._attention_elementwise(tl, kind, local, repeat)
        ffn = layer.ffn
        widths = []
        if isinstance(ffn, MoEFFNSpec):
            if ffn.shared_width:
                widths.append(ffn.shared_width)
        else:
            widths.append(ffn.intermediate_size)
        for width in widths:
            act = local * ACTIVATION_VALUES_PER_INTER * width / d.tp * BF16_BYTES
            self._elementwise(tl, "activation", act, repeat)

    def _layer_linear(
        self,
        tl: _Timeline,
        layer: LayerSpec,
        repeat: int,
        tokens_replica: FloatArray,
        tokens_local: FloatArray | None = None,
    ) -> None:
        """One layer but its attention kernels, over ``tokens_replica`` tokens of which the
        busiest DP group holds ``tokens_local`` (default: an equal share of every group)."""
        d = self.deployed
        model = d.model
        if tokens_local is None:
            tokens_local = tokens_replica / d.attention_dp
        kind = model.attention_kind(layer.attention)
        projections = kind.projections(self.hidden)
        for group in _fused_groups(projections):
            mat = group[0]
            name = LINEAR_COMPONENT.get(mat.group, mat.group)
            self._gemm(tl, name, group, tokens_local, repeat, shard_of(mat.group, mat, d))
        rest = model.layer_matrices(layer)[len(projections) :]
        experts = [m for m in rest if m.group == "routed_experts"]
        others = [m for m in rest if m.group != "routed_experts"]
        if experts:
            self._experts(tl, layer, experts, tokens_replica, repeat, tokens_local)
        for group in _fused_groups(others):
            mat = group[0]
            if mat.group in ("dense_ffn", "shared_experts"):
                # Whole in every DP group, split over its TP ranks (see planner.plan.memory).
                self._gemm(tl, mat.group, group, tokens_local, repeat, d.tp)
            else:  # router, mHC mixers: replicated, on the local tokens
                name = LINEAR_COMPONENT.get(mat.group, mat.group)
                self._gemm(tl, name, group, tokens_local, repeat, 1)
        self._layer_elementwise(tl, layer, kind, tokens_local, repeat)
        # Tensor parallel: an all-reduce after attention. The FFN output is all-reduced too
        # when every rank holds every token (no DP attention: experts split over the ranks
        # need no all-to-all, the all-reduce combines them). With DP attention tokens live
        # in their group, so MoE layers move them to the experts' ranks and back: with an
        # all-to-all (DeepEP), or by gathering every group's tokens on every rank and
        # reduce-scattering the results (the engine's ``moe_dispatch``).
        moe_dispatched = self._dispatched(layer)
        if d.tp > 1:
            ring_bytes = 2 * (d.tp - 1) / d.tp * tokens_local * self.hidden * BF16_BYTES
            reduces = 1 if moe_dispatched else ALL_REDUCES_PER_LAYER
            tl.collective("all_reduce", self._all_reduce_s(ring_bytes, d.tp), repeat * reduces)
        if moe_dispatched and self.moe_dispatch == "all_gather":
            # All-gather + reduce-scatter of the replica's tokens over its GPUs: the bytes
            # of one ring all-reduce of the gathered tensor.
            g = d.gpus
            ring_bytes = 2 * (g - 1) / g * tokens_replica * self.hidden * BF16_BYTES
            tl.collective("all_gather_reduce_scatter", self._all_reduce_s(ring_bytes, g), repeat)

    def _dispatched(self, layer: LayerSpec) -> bool:
        """An MoE layer whose tokens live in attention-DP groups and must reach the
        experts' ranks (experts split over ranks that do not all hold every token)."""
        d = self.deployed
        return isinstance(layer.ffn, MoEFFNSpec) and d.deployment.ep > 1 and d.attention_dp > 1

    def _uses_all_to_all(self, layer: LayerSpec) -> bool:
        return self._dispatched(layer) and self.moe_dispatch == "all_to_all"

    def _all_reduce_s(self, ring_bytes: FloatArray, gpus: int) -> FloatArray:
        domain = self.eff.scale_up_domain_gpus
        op = (
            "all_reduce_scale_out"
            if domain is not None and gpus > domain
            else "all_reduce_scale_up"
        )
        return self.eff.collective_time(op, ring_bytes)  # type: ignore[arg-type]

    def _moe_all_to_all(
        self,
        tl: _Timeline,
        layer: LayerSpec,
        tokens_group: FloatArray,
        assignments: FloatArray,
        repeat: int,
    ) -> None:
        """Dispatch (FP8) and combine (BF16), DeepEP style: a token goes once to every
        other rank holding one of its experts inside its NVLink domain, and once to every
        other domain that does (forwarded over NVLink there), over the NIC, at the same
        time (``destinations_per_token``). A GPU of the busiest DP group sends its share of
        that group's ``tokens_group`` (ranks of idle groups send nothing but still join
        the collective, so its fixed time is paid); the busiest rank receives its R
        assignments' tokens: the larger of what a GPU sends and what that rank receives
        sets the time."""
        if not self._uses_all_to_all(layer):
            return
        d = self.deployed
        ep = d.deployment.ep
        k = layer.ffn.experts_per_token  # type: ignore[union-attr]
        per_value = self.hidden * ALL_TO_ALL_BYTES_PER_VALUE
        domain = self.eff.scale_up_domain_gpus or ep
        inside, across = destinations_per_token(ep, k, domain)
        tokens_local = tokens_group / d.tp
        copies = inside + across
        # The busiest rank's incoming token copies, deduplicated as the sender does.
        received = assignments * copies / k
        scale = np.maximum(1.0, received / np.maximum(tokens_local * copies, 1e-30))
        t = self.eff.collective_time(
            "all_to_all_scale_up", tokens_local * inside * per_value * scale
        )
        if float(across) > 0:
            out = self.eff.collective_time(
                "all_to_all_scale_out", tokens_local * across * per_value * scale
            )
            t = np.maximum(t, out)
        tl.collective("all_to_all", t, repeat)

    def linear_timeline(
        self,
        tokens_replica: ArrayLike,
        draft_tokens: ArrayLike = 0,
        sampled_tokens: ArrayLike | None = None,
        busy_groups: ArrayLike | None = None,
    ) -> _Timeline:
        """Everything but attention, for a step over ``tokens_replica`` tokens (vectorised).
        The LM head runs only for ``sampled_tokens`` (default: every token, as in decode;
        a prefill chunk samples at most once); ``draft_tokens`` run the MTP module.
        ``busy_groups`` (default: every attention-DP group) is how many DP groups hold the
        tokens, in equal shares: the others run empty batches in step (vLLM's
        ``execute_dummy_batch``, SGLang's idle batch), so the step is the busiest group's
        dense work, the experts over every group's tokens and the collectives' fixed time."""
        tl = _Timeline(self.deployed, self.eff)
        tokens = np.asarray(tokens_replica, dtype=np.float64)
        dp, tp = self.deployed.attention_dp, self.deployed.tp
        busy = dp if busy_groups is None else np.asarray(busy_groups, dtype=np.float64)
        if (
            busy_groups is not None
            and self.deployed.engine.profile.defaults.micro_batches_need_every_dp_group
        ):
            # vLLM: an idle group's dummy batch is below the micro-batch threshold, and
            # the groups micro-batch all or none (engines/vllm.yaml).
            tl.overlap = np.logical_and(tl.overlap, np.asarray(busy) >= dp)
        local = tokens / busy
        for layer, count in self.layers:
            self._layer_linear(tl, layer, count, tokens, local)
        model = self.deployed.model
        self._elementwise(tl, "embedding", local * self.hidden * 2 * BF16_BYTES, 1)
        sampled = tokens if sampled_tokens is None else np.asarray(sampled_tokens, np.float64)
        self._head(tl, sampled / busy, tp)
        mtp = model.spec.mtp
        drafts = np.asarray(draft_tokens, dtype=np.float64)
        if mtp is not None and np.any(drafts > 0):
            for _ in range(mtp.num_modules):
                self._layer_linear(tl, mtp.layer, 1, drafts)
                self._head(tl, drafts / dp, tp)
        return tl

    def _head(self, tl: _Timeline, sampled_local: FloatArray, tp: int) -> None:
        model = self.deployed.model
        self._gemm(tl, "head", [model.head_matrix], sampled_local, 1, tp)
        logits = sampled_local * model.spec.vocab_size / tp * FP32_BYTES * SAMPLER_PASSES
        self._elementwise(tl, "sampler", logits, 1)

    @cached_property
    def _linear_tables_s(self) -> tuple[FloatArray, FloatArray]:
        """(time without the LM head for 0..max_batched_tokens + max_num_seqs tokens,
        LM head time for 0..max_num_seqs sampled tokens); no MTP."""
        return self._busy_tables_s(self.group_scale, None)

    def _busy_tables_s(self, scale: int, busy: int | None) -> tuple[FloatArray, FloatArray]:
        """The tables of ``_linear_tables_s`` for ``scale`` x the given tokens in ``busy``
        DP groups (None: every group)."""
        d = self.deployed.deployment
        tokens = np.arange(d.max_batched_tokens + d.max_num_seqs + 1, dtype=np.float64)
        body = self.linear_timeline(tokens * scale, sampled_tokens=0.0, busy_groups=busy)
        sampled = np.arange(d.max_num_seqs + 1, dtype=np.float64)
        with_head = self.linear_timeline(0.0, sampled_tokens=sampled * scale, busy_groups=busy)
        no_head = self.linear_timeline(0.0, sampled_tokens=0.0, busy_groups=busy)
        return body.total_s(), with_head.total_s() - no_head.total_s()

    def linear_time_s(
        self, tokens_replica: int, sampled_tokens: int, busy_groups: int | None = None
    ) -> float:
        """Linear time of a step over ``tokens_replica`` tokens of which ``sampled_tokens``
        produce logits (one per decoding sequence, one per prefill that completes). With
        ``per_group``, ``busy_groups`` (default: all) is how many DP groups run a step like
        this one; the others run empty batches in step (``linear_timeline``)."""
        scale, busy = self.group_scale, None
        if busy_groups is not None and scale > 1 and busy_groups < scale:
            scale = busy = max(busy_groups, 1)
            tables = self._partial_tables.get(busy)
            if tables is None:
                tables = self._partial_tables[busy] = self._busy_tables_s(busy, busy)
            body, head = tables
        else:
            body, head = self._linear_tables_s
        if tokens_replica < len(body) and sampled_tokens < len(head):
            return float(body[tokens_replica] + head[sampled_tokens])
        timeline = self.linear_timeline(
            tokens_replica * scale, sampled_tokens=sampled_tokens * scale, busy_groups=busy
        )
        return float(timeline.total_s())

    # ------------------------------------------------------------------ attention part
    @staticmethod
    def decode_work(
        kind: AttentionKind, contexts: ArrayLike, query_tokens: int = 1, axis: int | None = 0
    ) -> AttentionWork:
        """Summed work of decode sequences at the given contexts (sum over ``axis``), each
        feeding ``query_tokens`` queries (2 with an MTP draft), in the decode kernel's form
        (MLA absorbed)."""
        work = _phase_work(kind, query_tokens, contexts, decode=True)
        return AttentionWork(decode=work.summed(axis))

    @staticmethod
    def chunk_work(kind: AttentionKind, chunk_tokens: int, context: ArrayLike) -> AttentionWork:
        """Work of one prefill chunk of T tokens ending at context L (vectorised over L)."""
        return AttentionWork(prefill=_phase_work(kind, chunk_tokens, context, decode=False))

    def attention_timeline(self, work: list[AttentionWork]) -> _Timeline:
        """Per layer, a decode and a prefill attention kernel (and indexer kernels) over
        the summed work of the step; ``work`` is aligned with ``self.kinds``. Each DP group
        does 1/DP of it."""
        d = self.deployed
        tl = _Timeline(d, self.eff)
        for i, ((kind, count), w) in enumerate(zip(self.kinds, work, strict=True)):
            share = kind.kv_shard_fraction(d.tp) / d.attention_dp
            label = kind.label.lower()
            for phase, pw in (("decode", w.decode), ("prefill", w.prefill)):
                if not np.any(np.asarray(pw.sequences) > 0):
                    continue
                # Padded heads (engine head padding) are computed like real ones.
                heads = self.kernel_heads[phase][i]
                flops = np.asarray(pw.flops) / d.tp / d.attention_dp * heads.flops_factor
                per_query = (
                    np.asarray(pw.flops_per_query) / d.tp / d.attention_dp * heads.flops_factor
                )
                nbytes = np.asarray(pw.read_bytes) * share + (
                    np.asarray(pw.queries) * heads.extra_bytes_per_query / d.attention_dp
                )
                seqs = np.asarray(pw.sequences) / d.attention_dp
                t = self.eff.attention_time(
                    f"{label}_{phase}",
                    ATTENTION_MATH_DTYPE,
                    flops,
                    per_query,
                    nbytes,
                    seqs,
                    kind.cache_math_dtype,
                )
                tl.add(f"attention:{kind.label}", t, flops, nbytes, count)
                if kind.has_indexer:
                    # The indexer is replicated on every TP rank: no division by TP.
                    iflops = np.asarray(pw.index_flops) / d.attention_dp
                    iper_query = np.asarray(pw.index_flops_per_query) / d.attention_dp
                    ibytes = np.asarray(pw.index_read_bytes) / d.attention_dp
                    t = self.eff.attention_time(
                        f"indexer_{phase}", kind.index_math_dtype, iflops, iper_query, ibytes, seqs
                    )
                    tl.add("indexer", t, iflops, ibytes, count)
        return tl

    def attention_time_s(self, work: list[AttentionWork]) -> FloatArray:
        """Attention time of the step (of one DP group's step with per_group)."""
        if self.group_scale != 1:
            work = [_scaled(w, self.group_scale) for w in work]
        return self.attention_timeline(work).total_s()

    def _phase_constants(
        self, phase: str
    ) -> list[tuple[AttentionKind, int, tuple[float, ...], float]]:
        """Per kind: layers; for the phase's attention and indexer kernels, the fixed
        time, time per sequence, per FLOP, per FLOP-per-query and per byte (DP split, KV
        share and head padding folded in); and the padded heads' time per query token:
        the attention_timeline curves, unrolled for the hot loops."""
        d = self.deployed
        gpu = d.gpu
        eff = self.eff
        # Work given for the whole replica is split over its DP groups; work given for one
        # group (per_group) is that group's own.
        groups = d.attention_dp / self.group_scale
        bw = gpu.hbm_bandwidth_bytes_per_s
        extra = 0.0
        if not d.deployment.cuda_graphs:
            p = gpu.profile.efficiency
            extra = max(p.kernel_overhead_no_graphs_us - p.kernel_overhead_us, 0.0) * 1e-6
        out = []
        for i, (kind, count) in enumerate(self.kinds):
            c = eff.attention_curve(f"{kind.label.lower()}_{phase}", kind.cache_math_dtype)
            heads = self.kernel_heads[phase][i]
            per_flop = heads.flops_factor / (
                gpu.peak_flop_per_s(ATTENTION_MATH_DTYPE) * c.compute_efficiency
            )
            per_byte = 1.0 / (bw * c.bandwidth_efficiency) / groups
            consts: tuple[float, ...] = (
                c.latency_us * 1e-6 + extra,
                c.per_sequence_us * 1e-6 / groups,
                per_flop / d.tp / groups,
                c.half_query_tokens * per_flop / d.tp / groups,
                kind.kv_shard_fraction(d.tp) * per_byte,
            )
            if kind.has_indexer:
                ci = eff.attention_curve(f"indexer_{phase}")
                iflop = 1.0 / (gpu.peak_flop_per_s(kind.index_math_dtype) * ci.compute_efficiency)
                consts += (
                    ci.latency_us * 1e-6 + extra,
                    ci.per_sequence_us * 1e-6 / groups,
                    iflop / groups,
                    ci.half_query_tokens * iflop / groups,
                    1.0 / (bw * ci.bandwidth_efficiency) / groups,
                )
            out.append((kind, count, consts, heads.extra_bytes_per_query * per_byte))
        return out

    @cached_property
    def _decode_constants(self) -> list[tuple[AttentionKind, int, tuple[float, ...], float]]:
        return self._phase_constants("decode")

    @cached_property
    def _prefill_constants(self) -> list[tuple[AttentionKind, int, tuple[float, ...], float]]:
        return self._phase_constants("prefill")

    @cached_property
    def _work_table(self) -> DecodeWorkTable:
        return DecodeWorkTable(self.kinds, self._decode_terms[0].tolist())

    def decode_work_sums(self, contexts: ArrayLike, axis: int = 0) -> list[FloatArray]:
        """Per kind, the summed decode work (one query each) of sequences at these contexts
        (sum over ``axis``) as four rows: attention FLOPs, main read bytes, indexer FLOPs,
        indexer read bytes; equal to ``decode_work``."""
        c = np.asarray(contexts, dtype=np.int64)
        sums = self._work_table.sums(c, axis)
        if sums is not None:
            return [sums[4 * i : 4 * i + 4] for i in range(len(self.kinds))]
        out = []
        for kind, _ in self.kinds:
            w = StepModel.decode_work(kind, c, axis=axis).decode
            out.append(
                np.array(
                    [w.flops, w.read_bytes, w.index_flops, w.index_read_bytes], dtype=np.float64
                )
            )
        return out

    @cached_property
    def _decode_terms(self) -> tuple[NDArray[np.intp], FloatArray]:
        """The decode constants as vectors over the time terms, in the order they are
        added (per kind: the attention kernel, then its indexer kernel): the work-table
        rows of every term's FLOPs then of every term's bytes, and rows of s per FLOP
        (attention + per query), s per byte, fixed s, s per sequence, layers and the padded
        heads' s per query (one query per sequence)."""
        flops_rows: list[int] = []
        bytes_rows: list[int] = []
        consts: list[tuple[float, float, float, float, float, float]] = []
        for i, (kind, count, k, pad_s) in enumerate(self._decode_constants):
            flops_rows.append(4 * i)
            bytes_rows.append(4 * i + 1)
            consts.append((k[2] + k[3], k[4], k[0], k[1], float(count), pad_s))
            if kind.has_indexer:
                flops_rows.append(4 * i + 2)
                bytes_rows.append(4 * i + 3)
                consts.append((k[7] + k[8], k[9], k[5], k[6], float(count), 0.0))
        rows = np.array(flops_rows + bytes_rows, dtype=np.intp)
        return rows, np.array(consts, dtype=np.float64).T

    def decode_attention_time_s(self, contexts: ArrayLike, axis: int = 0) -> FloatArray | float:
        """Attention time of a decode batch (one query per sequence) whose sequences have
        these contexts, summed over ``axis`` (a 2-D array gives one time per column). Same
        curves as attention_timeline, written for the simulator's hot loop: per term
        (a kind's attention or indexer kernel) layers x (max(FLOPs x s per FLOP, bytes x s
        per byte) + fixed + per sequence x sequences), the terms added in order."""
        c = np.asarray(contexts, dtype=np.int64)
        n = c.shape[axis] if c.ndim else 1
        # Summed work with the rows (FLOPs, main bytes, indexer FLOPs, indexer bytes per
        # kind) on the last axis.
        rows, (per_flop, per_byte, fixed, per_seq, layers, per_query_s) = self._decode_terms
        w = self._work_table.sums_last(c, axis)
        if w is None:
            w = np.moveaxis(np.concatenate(self.decode_work_sums(c, axis)), 0, -1)[..., rows]
        t = len(layers)
        if w.ndim == 1:
            # One batch: the same operations on Python floats (IEEE doubles, as numpy's).
            work: list[float] = w.tolist()
            one = 0.0
            for j, (pf, pb, fx, ps, ly, pq) in enumerate(self._decode_terms_list):
                one = one + ly * (max(work[j] * pf, work[t + j] * pb + pq * n) + fx + ps * n)
            return one
        # One query per sequence: FLOPs per query = FLOPs.
        main = np.maximum(w[..., :t] * per_flop, w[..., t:] * per_byte + per_query_s * n)
        terms = layers * (main + fixed + per_seq * n)
        # Added left to right (np.add.accumulate is sequential), as a loop over terms would.
        total: FloatArray = np.add.accumulate(terms, axis=-1)[..., -1]
        return total

    @cached_property
    def _decode_terms_list(self) -> list[tuple[float, float, float, float, float, float]]:
        """Per term (s per FLOP, s per byte, fixed s, s per sequence, layers, padded heads'
        s per query) as floats."""
        return [
            (float(a), float(b), float(c), float(d), float(e), float(f))
            for a, b, c, d, e, f in self._decode_terms[1].T.tolist()
        ]

    def mixed_attention_time_s(
        self, decode_contexts: ArrayLike, chunks: list[tuple[int, int]]
    ) -> float:
        """Attention time of a step with decode sequences at these contexts and prefill
        chunks given as (tokens, context at the chunk's end): the same curves as
        attention_timeline over the step's summed work, for the simulator's mixed steps."""
        c = np.asarray(decode_contexts, dtype=np.int64)
        total = float(self.decode_attention_time_s(c)) if c.size else 0.0
        if not chunks:
            return total
        n = len(chunks)
        parts = [self._chunk_parts(tokens, end) for tokens, end in chunks]
        queries = sum(tokens for tokens, _ in chunks)
        for i, (kind, count, k, pad_s) in enumerate(self._prefill_constants):
            flops = per_query = nbytes = iflops = iper_query = ibytes = 0.0
            for part in parts:
                f, fq, main_bytes, fi, fiq, index_bytes = part[i]
                flops += f
                per_query += fq
                nbytes += main_bytes
                if kind.has_indexer:
                    iflops += fi
                    iper_query += fiq
                    ibytes += index_bytes
            main = max(flops * k[2] + per_query * k[3], nbytes * k[4] + queries * pad_s)
            total += count * (main + k[0] + k[1] * n)
            if kind.has_indexer:
                index = max(iflops * k[7] + iper_query * k[8], ibytes * k[9])
                total += count * (index + k[5] + k[6] * n)
        return total

    def _chunk_parts(self, tokens: int, end: int) -> list[tuple[float, ...]]:
        """Per kind, a prefill chunk's FLOPs, FLOPs per query, main read bytes, indexer
        FLOPs, indexer FLOPs per query and indexer read bytes (a chunk reads the cache at
        its end context as a decode would). Kept by exact (tokens, end): the simulator
        meets the same chunks again (a shared prompt, a whole token budget)."""
        cache = self._chunk_cache
        key = (tokens, end)
        parts = cache.get(key)
        if parts is not None:
            return parts
        read = self._work_table.at(end)
        parts = []
        for i, (kind, _) in enumerate(self.kinds):
            if read is None:
                index_bytes = float(kind.index_read_bytes(end))
                main_bytes = float(kind.read_bytes(end)) - index_bytes
            else:
                main_bytes, index_bytes = read[4 * i + 1], read[4 * i + 3]
            f = float(kind.attn_flops(tokens, end))
            fi = float(kind.indexer_flops(tokens, end)) if kind.has_indexer else 0.0
            parts.append((f, f / tokens, main_bytes, fi, fi / tokens, index_bytes))
        if len(cache) >= CHUNK_CACHE_ENTRIES:
            cache.clear()
        cache[key] = parts
        return parts

    @cached_property
    def _chunk_cache(self) -> dict[tuple[int, int], list[tuple[float, ...]]]:
        return {}


class DecodeWorkTable:
    """One sequence's decode attention work (one query) at every context 0..n-1, for each
    attention kind (rows: FLOPs, main read bytes, indexer FLOPs, indexer read bytes per
    kind), so a batch's sums are one gather and one sum instead of a dozen small array
    calls. Values come from the attention kinds' own methods (``StepModel.decode_work``).
    The table grows by doubling up to ``MAX_CONTEXT`` contexts; longer contexts are
    computed directly (``sums`` returns None)."""

    MIN_CONTEXT = 1 << 12
    MAX_CONTEXT = 1 << 18

    def __init__(self, kinds: list[tuple[AttentionKind, int]], order: list[int]) -> None:
        self.kinds = kinds
        self.order = order  # the rows, in the order sums_last returns them
        self.table: FloatArray = np.zeros((4 * len(kinds), 0), dtype=np.float64)
        self.by_context: FloatArray = self.table[order].T  # one row per context
        self.largest = math.inf  # largest |value| if all are whole numbers, else inf

    def _grow(self, needed: int) -> bool:
        if needed <= self.table.shape[1]:
            return True
        if needed > self.MAX_CONTEXT:
            return False
        size = self.MIN_CONTEXT
        while size < needed:
            size *= 2
        c = np.arange(size, dtype=np.int64)
        rows: list[FloatArray | float] = []
        for kind, _ in self.kinds:
            w = _phase_work(kind, 1, c, decode=True)
            rows += [w.flops, w.read_bytes, w.index_flops, w.index_read_bytes]
        full = [np.broadcast_to(np.asarray(r, dtype=np.float64), (size,)) for r in rows]
        self.table = np.ascontiguousarray(np.stack(full))
        by_context = np.stack([full[i] for i in self.order], axis=1)
        whole = bool(np.all(np.floor(by_context) == by_context))
        self.by_context = by_context
        self.largest = float(np.abs(by_context).max()) if whole else math.inf
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

    def sums_last(self, contexts: NDArray[np.int64], axis: int) -> FloatArray | None:
        """``sums`` of the rows in ``order``, on the last axis. Where every value in the table is a
        whole number and no sum can reach 2**53, each partial sum is exact in float64,
        so the sums are the same in any order: one gather from a row-major copy of the
        table (``np.take``, the simulator's hot path); otherwise ``sums``' order."""
        if contexts.size == 0 or not self._grow(int(np.maximum.reduce(contexts, axis=None)) + 1):
            return None
        if contexts.size * self.largest < EXACT_FLOAT_INTEGER:
            summed: FloatArray = np.add.reduce(self.by_context.take(contexts, axis=0), axis=axis)
            return summed
        rows = self.table[self.order]
        ordered: FloatArray = np.moveaxis(rows[:, contexts].sum(axis=axis + 1), 0, -1)
        return ordered


def _rope_dims(kind: AttentionKind) -> int:
    spec = kind.spec
    rope = getattr(spec, "qk_rope_head_dim", None)
    if rope is not None:
        return int(rope)
    return int(getattr(spec, "head_dim", 0))


def _sequence_work(kind: AttentionKind, query_tokens: int, contexts: ArrayLike) -> AttentionWork:
    """Decode work of ONE sequence at each context (vectorised, not summed)."""
    return AttentionWork(decode=_phase_work(kind, query_tokens, contexts, decode=True))


def _scaled(work: AttentionWork, factor: float) -> AttentionWork:
    """The same work done ``factor`` times (identical sequences or DP groups)."""
    return work.scaled(factor)


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
    work = [_scaled(_sequence_work(kind, 1, context_tokens), batch) for kind, _ in model.kinds]
    return (
        model.step_overhead_s
        + model.linear_time_s(batch, batch)
        + float(model.attention_time_s(work))
    )


def decode_step(deployed: Deployed, batch: int, context_tokens: ArrayLike) -> StepTime:
    """One decode step for ``batch`` sequences (replica-wide) at context L (vectorised).
    With MTP each sequence feeds q = 2 tokens (its last token and one draft) through the
    main model, in the decode kernels' form, and the MTP module drafts one token."""
    model = step_model(deployed)
    q = deployed.query_tokens_per_step
    ctx = np.asarray(context_tokens, dtype=np.int64)
    tl = model.linear_timeline(
        np.full(np.shape(ctx), float(batch * q)),
        batch if deployed.deployment.mtp else 0,
        sampled_tokens=np.full(np.shape(ctx), float(batch * q)),
    )
    work = [_scaled(_sequence_work(kind, q, ctx), batch) for kind, _ in model.kinds]
    tl.merge(model.attention_timeline(work))
    return tl.result(model.step_overhead_s)


def prefill_chunk(
    deployed: Deployed,
    chunk_tokens: int,
    context_tokens: ArrayLike,
    busy_groups: ArrayLike | None = None,
) -> StepTime:
    """Prefill of one chunk of T tokens ending at context L in each of ``busy_groups``
    attention-DP groups (default: every group); the others run empty batches in step
    (see ``StepModel.linear_timeline``). Vectorised over L and ``busy_groups``."""
    model = step_model(deployed)
    ctx = np.asarray(context_tokens, dtype=np.int64)
    groups = deployed.attention_dp
    busy = np.asarray(groups if busy_groups is None else busy_groups, dtype=np.float64)
    shape = np.broadcast_shapes(np.shape(ctx), np.shape(busy))
    # The chunk samples once, if it is the prompt's last: charge one head row per group.
    tl = model.linear_timeline(
        np.broadcast_to(chunk_tokens * busy, shape), sampled_tokens=busy, busy_groups=busy
    )
    work = [StepModel.chunk_work(kind, chunk_tokens, ctx) for kind, _ in model.kinds]
    # The busiest group's attention is one chunk's, however many groups are busy.
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
