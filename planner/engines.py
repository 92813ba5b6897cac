"""Serving engines: how vLLM, SGLang and TensorRT-LLM lay out the KV cache, how much memory
they give it, how many requests they admit, and their defaults.

One YAML per engine in ``engines/`` (beside ``hardware_profiles/``), every value with its
engine version and source path, checked on load like the GPU profiles. An engine is that
data plus its admission rule: the functions below that turn a model's per-layer cache pages
(built by ``planner.plan.kv_layout`` from the engine's layout data) into the numbers the
engine logs at start-up and the bytes a running sequence holds.

Rules (sources in the YAML files):
- ``vllm`` (vLLM V1): available = gpu_memory_utilization x HBM - weights - profiled
  activation peak - non-torch memory - CUDA-graph memory. Layers whose caches behave alike
  are grouped; all groups draw block ids from one pool and a block costs the widest group's
  pages (``_packed_groups``, after vLLM's ``_get_packed_kv_cache_groups``). Maximum
  concurrency = blocks / sum over groups of one request's blocks at max_model_len, where a
  sliding-window or compressor-state group budgets window - 1 + max_in_flight_tokens tokens
  (+1 block); the logged KV cache size in tokens is int(concurrency x max_model_len).
- ``sglang``: pool = mem_fraction_static x (free memory before loading) - weights - buffers;
  a token-granular pool of max_total_num_tokens. DeepSeek-V4: a full pool of compressed
  entries plus an SWA pool of swa_full_tokens_ratio x its tokens (C4 compressor rings priced
  per SWA page), and C128 rings reserved for every request slot.
- ``trtllm`` (unverified): free_gpu_memory_fraction x (HBM - weights - activations -
  buffers), blocks of tokens_per_block tokens holding every layer.

Attention head padding (``head_padding``): kernels that take only some query-head counts
per rank (FlashMLA's sparse kernels: 64 or 128; Hopper MLA decode: 64-row tiles of heads x
query tokens) make the engine run more heads than a tensor-parallel rank owns;
``planner.plan.perf`` charges the padded heads' FLOPs.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner import limits as lim
from planner.errors import ConfigError
from planner.units import GIB_BYTES, MIB_BYTES
from planner.validation import named_data_file, sourced_document

ENGINE_DIR_ENV = "KVPLAN_ENGINE_DIR"
DEFAULT_ENGINE_DIR = Path(__file__).resolve().parent.parent / "engines"
KV_DTYPES = ("auto", "fp8", "bf16")
ATTENTION_KINDS = ("gqa", "mla", "dsa", "csa", "hca", "swa")


SGLANG_MIN_CHUNK_TOKENS = 2048  # SGLang sizes its reserve for at least a 2048-token chunk


def sglang_chunk_tokens(max_batched_tokens: int, attention_dp: int) -> int:
    """The prefill chunk SGLang sizes mem_fraction_static for: with DP attention its
    server_args divide chunked_prefill_size by the DP size (sgl-project/sglang
    python/sglang/srt/server_args.py), at least 2048 tokens."""
    return max(max_batched_tokens // max(attention_dp, 1), SGLANG_MIN_CHUNK_TOKENS)


class _Frozen(BaseModel):
    # Finite numbers only, each within a physical or practical bound (planner.limits).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


GiB = Annotated[float, Field(ge=0, le=lim.MAX_HBM_GIB)]
MiB = Annotated[float, Field(ge=0, le=lim.MAX_HBM_GIB * 1024)]
BlockCount = Annotated[int, Field(gt=0, le=lim.MAX_BLOCK_TOKENS)]
SeqCount = Annotated[int, Field(gt=0, le=lim.MAX_NUM_SEQS)]
MAX_IN_FLIGHT_BATCHES = 64
MAX_LIVE_TENSORS = 1_000.0
MAX_PAGE_ALIGNMENT_BYTES = 2**20


class DefaultsTier(_Frozen):
    """Engine defaults for GPUs of at least ``min_hbm_gib`` (first matching tier wins)."""

    min_hbm_gib: GiB
    max_num_batched_tokens: int = Field(gt=0, le=lim.MAX_BATCHED_TOKENS)
    max_num_seqs: SeqCount = Field(description="per data-parallel engine")
    cuda_graph_max_batch: SeqCount | None = None
    excluded_gpus: tuple[str, ...] = ()


class EngineDefaults(_Frozen):
    tiers: tuple[DefaultsTier, ...] = Field(min_length=1, max_length=64)
    compressed_max_num_seqs_per_replica: SeqCount | None = Field(
        None,
        description="DeepSeek-V4 (compressed attention) override of max_num_seqs for the "
        "whole server, split over its data-parallel engines",
    )
    decodes_in_prefill_steps: bool = Field(
        True,
        description="running decodes take their token in the same step as a prefill chunk "
        "(chunked prefill mixed with decode); false: prefill batches run alone and decodes "
        "wait through them",
    )
    micro_batches_need_every_dp_group: bool = Field(
        False,
        description="micro-batch overlap (DBO/TBO) runs in a step only when every "
        "attention-DP group runs enough tokens: a step where some groups run an idle "
        "dummy batch is not overlapped",
    )


class BlockSizes(_Frozen):
    """Tokens (or state slots) per paged block, by cache."""

    gqa_tokens: BlockCount
    mla_tokens: BlockCount = Field(description="MLA and DSA caches")
    compressed_tokens: BlockCount = Field(description="V4 compressed entries: tokens of context")
    window_tokens: BlockCount = Field(description="V4 sliding-window cache")
    csa_state_slots: BlockCount = Field(description="V4 CSA compressor state (ring rows)")
    hca_state_slots: BlockCount = Field(description="V4 HCA compressor state (ring rows)")


class AdmissionSpec(_Frozen):
    rule: Literal["vllm", "sglang", "trtllm"]
    memory_fraction: float | None = Field(
        None, gt=0, le=1, description="default memory fraction; None: the engine computes it"
    )
    in_flight_batches: int = Field(
        1, ge=0, le=MAX_IN_FLIGHT_BATCHES, description="vLLM max_concurrent_batches"
    )
    cuda_context_gib: GiB = 0.0
    non_torch_gib: GiB = Field(0.0, description="non-torch memory of one GPU's engine process")
    nccl_communicator_gib: GiB = Field(
        0.0, description="device buffers of one NCCL communicator the engine opens"
    )
    cuda_graph_gib: GiB = 0.0
    forward_activation: Literal["widest", "layers"] = Field(
        "widest",
        description="'widest': activation_live_tensors x the widest per-token activation; "
        "'layers': the live tensors of the heaviest layer block, fused-MoE workspace "
        "included (vLLM's profile run)",
    )
    activation_live_tensors: float = Field(0.0, ge=0, le=MAX_LIVE_TENSORS)
    fused_moe_chunk_tokens: int = Field(
        lim.MAX_BATCHED_TOKENS,
        gt=0,
        le=lim.MAX_BATCHED_TOKENS,
        description="tokens per fused-MoE call; its workspace is sized for this many",
    )
    sampler_bytes_per_vocab_entry: float = Field(0.0, ge=0, le=MAX_PAGE_ALIGNMENT_BYTES)
    swa_full_tokens_ratio: float | None = Field(None, gt=0, le=1)
    reserve_base_mib: MiB = 0.0
    reserve_mib_per_chunk_token: MiB = 0.0
    reserve_mib_per_tp_rank: MiB = 0.0
    reserve_mib_per_graph_batch: MiB = 0.0
    reserve_mib_per_graph_batch_dp: MiB = 0.0
    reserve_mib_per_graph_batch_dp_large: MiB = 0.0
    graph_batch_large_above: int = Field(0, ge=0, le=lim.MAX_NUM_SEQS)
    reserve_floor_mib: MiB = 0.0
    reserve_floor_above_gib: GiB = 0.0


MAX_KERNEL_HEADS = 1024  # bounds a kernel's head counts and row tile


class HeadPadding(_Frozen):
    """Query heads an attention kernel runs on one rank where it cannot run the rank's own
    count: the engine pads the query (and output) tensors up to a head count the kernel
    supports (``head_counts``: the first that holds the rank's heads; beyond the largest,
    whole multiples of it), or the kernel tiles heads x query tokens in blocks of
    ``tile_rows`` rows and a partial block costs a whole one (decode only). Applies to
    the listed attention kinds, phases and GPUs (profile names); anything else runs its
    own heads."""

    kinds: tuple[Literal["mla", "dsa", "csa", "hca", "swa"], ...] = Field(
        min_length=1, max_length=5
    )
    phases: tuple[Literal["prefill", "decode"], ...] = Field(min_length=1, max_length=2)
    gpus: tuple[str, ...] = Field(min_length=1, max_length=64)
    head_counts: tuple[Annotated[int, Field(gt=0, le=MAX_KERNEL_HEADS)], ...] = Field(
        (), max_length=16
    )
    tile_rows: int | None = Field(None, gt=0, le=MAX_KERNEL_HEADS)

    @model_validator(mode="after")
    def _one_rule(self) -> HeadPadding:
        if bool(self.head_counts) == (self.tile_rows is not None):
            raise ValueError("give either head_counts or tile_rows")
        if list(self.head_counts) != sorted(set(self.head_counts)):
            raise ValueError("head_counts must be strictly increasing")
        if self.tile_rows is not None and "prefill" in self.phases:
            raise ValueError("tile_rows applies to decode kernels only")
        return self

    def applies(self, kind: str, phase: str, gpu_name: str) -> bool:
        return kind in self.kinds and phase in self.phases and gpu_name in self.gpus

    def kernel_heads(self, heads: float, query_tokens: int) -> float:
        """Heads the kernel computes for ``heads`` real heads per rank, each query token
        of a sequence counted apart (a tile rule packs heads x query tokens)."""
        if self.tile_rows is not None:
            rows = heads * max(query_tokens, 1)
            return math.ceil(rows / self.tile_rows) * self.tile_rows / max(query_tokens, 1)
        for count in self.head_counts:
            if heads <= count:
                return float(count)
        largest = self.head_counts[-1]
        return float(math.ceil(heads / largest) * largest)


class EngineProfile(_Frozen):
    name: str
    display_name: str
    version: str
    repository: str
    kv_formats: dict[
        Literal["auto", "fp8", "bf16"],
        dict[Literal["gqa", "mla", "dsa", "csa", "hca", "swa"], dict[str, Any]],
    ]
    blocks: BlockSizes
    page_alignment_bytes: dict[
        Literal["fp8", "bf16"], Annotated[int, Field(ge=1, le=MAX_PAGE_ALIGNMENT_BYTES)]
    ] = Field(default_factory=dict)
    admission: AdmissionSpec
    defaults: EngineDefaults
    head_padding: dict[str, HeadPadding] = Field(
        default_factory=dict,
        max_length=64,
        description="named rules, each sourced as head_padding.<name>",
    )
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _rules_disjoint(self) -> EngineProfile:
        seen: dict[tuple[str, str, str], str] = {}
        for name, rule in self.head_padding.items():
            for key in itertools.product(rule.kinds, rule.phases, rule.gpus):
                if key in seen:
                    raise ValueError(
                        f"head_padding rules {seen[key]} and {name} both cover "
                        f"{key[0]} {key[1]} on {key[2]}"
                    )
                seen[key] = name
        return self


# --------------------------------------------------------------------------- activations
@dataclass(frozen=True, slots=True)
class ForwardShape:
    """Per-token activation bytes of a model's forward pass on one GPU (built by
    ``planner.plan.memory.forward_shape``).

    ``widest_bytes``: the widest single activation; ``layer_bytes``: the live tensors of
    the heaviest attention or dense-FFN block (residual stream, normed input and the
    block's projection outputs); ``moe_layer_bytes``: those of the heaviest MoE block
    outside the fused-MoE call; ``moe_workspace_bytes``: the fused-MoE workspace per token
    of one call.
    """

    widest_bytes: float
    layer_bytes: float
    moe_layer_bytes: float = 0.0
    moe_workspace_bytes: float = 0.0


# --------------------------------------------------------------------------- cache pages
CacheRole = Literal["context", "window", "csa_state", "hca_state"]


@dataclass(frozen=True, slots=True)
class CachePage:
    """One kind of per-layer paged cache, as an engine lays it out on one GPU.

    ``block_tokens`` is the context (or, for compressor state, ring rows) one page covers;
    ``page_bytes`` is one layer's page on one GPU with the engine's padding; ``window_tokens``
    is the sliding window (compressor state: overlap x ratio) of a non-growing cache.
    """

    role: CacheRole
    layers: int
    block_tokens: int
    page_bytes: float
    window_tokens: int = 0


@dataclass(frozen=True, slots=True)
class _Group:
    pages: tuple[CachePage, ...]  # the bucket's page kinds (one per page size)
    count: int  # groups this bucket splits into
    block_tokens: int
    window_tokens: int
    role: CacheRole


def _approximate_gcd(values: list[int], lower_bound: int) -> int:
    """The divisor d >= lower_bound with least total round-up padding (ties: larger d)."""
    best_d, best_pad = lower_bound, None
    for d in range(max(1, lower_bound), max(values) + 1):
        pad = sum((d - x % d) % d for x in values)
        if best_pad is None or pad <= best_pad:
            best_d, best_pad = d, pad
    return best_d


def _packed_groups(pages: list[CachePage]) -> tuple[list[_Group], float]:
    """vLLM's grouping of layers into cache groups, and the bytes of one pool block.

    Pages alike in role, block size and window form a bucket; a bucket whose page sizes
    each cover the same number of layers is a repeating pattern and splits into groups of
    ``repeats`` layers per page size (the repeat count picked to minimise padding); other
    buckets stay whole. One block of the shared pool holds the widest group's pages.
    """
    layers_by_page: Counter[tuple[CacheRole, int, int, float]] = Counter()
    for page in pages:
        layers_by_page[(page.role, page.block_tokens, page.window_tokens, page.page_bytes)] += (
            page.layers
        )
    buckets: dict[tuple[str, int, int], list[CachePage]] = {}
    for (role, block, window, page_bytes), layers in layers_by_page.items():
        buckets.setdefault((role, block, window), []).append(
            CachePage(role, layers, block, page_bytes, window)
        )
    layer_counts = {key: Counter(p.layers for p in group) for key, group in buckets.items()}
    balanced = {key: len(counts) == 1 for key, counts in layer_counts.items()}
    most = {key: max(p.layers for p in group) for key, group in buckets.items()}
    floor = max(
        (most[k] for k, group in buckets.items() if balanced[k] and len(group) > 1), default=0
    )
    repeats = _approximate_gcd([most[k] for k in buckets if balanced[k]], floor) if floor else None
    groups = []
    block_bytes = 0.0
    for key, group in buckets.items():
        count = math.ceil(most[key] / repeats) if balanced[key] and repeats else 1
        widest = sum(math.ceil(p.layers / count) * p.page_bytes for p in group)
        block_bytes = max(block_bytes, widest)
        groups.append(_Group(tuple(group), count, key[1], key[2], group[0].role))
    return groups, block_bytes


def _cdiv(a: NDArray[np.int64], b: int) -> NDArray[np.int64]:
    return -(-a // b)


@dataclass(frozen=True)
class Admission:
    """What an engine admits on one GPU (one attention-DP engine) for a model.

    ``request_units(L)``: pool units one request is budgeted at max_model_len L (what the
    engine's logged concurrency divides by); ``held_units(L)``: units a sequence of L tokens
    actually holds while decoding; ``pool_units``: units in the pool; ``unit_bytes``: bytes
    of one unit (a block for vLLM / TensorRT-LLM, a token for SGLang).
    """

    rule: str
    pool_units: float
    unit_bytes: float
    groups: tuple[_Group, ...]
    in_flight_tokens: int
    max_requests: int | None = None
    swa_pool_tokens: float | None = None
    swa_tokens_per_request: int = 0
    logged_tokens_are_pool: bool = False

    def _units(self, context_tokens: ArrayLike, budget: bool) -> NDArray[np.float64]:
        context = np.maximum(np.asarray(context_tokens, dtype=np.int64), 1)
        if self.rule == "sglang":
            return np.asarray(_cdiv(context, self.groups[0].block_tokens), dtype=np.float64) * (
                self.groups[0].block_tokens
            )
        total = np.zeros(np.shape(context), dtype=np.float64)
        for g in self.groups:
            if self.rule == "trtllm":
                # Unpacked: every page kind costs its own pages, counted in bytes.
                g_blocks = _cdiv(context, g.block_tokens)
                if g.role != "context":
                    g_blocks = np.minimum(
                        g_blocks, _cdiv(np.asarray(g.window_tokens), g.block_tokens) + 1
                    )
                total = total + g_blocks * sum(p.layers * p.page_bytes for p in g.pages)
                continue
            if g.role == "context":
                blocks = _cdiv(context, g.block_tokens)
            else:
                span = g.window_tokens - 1 + (self.in_flight_tokens if budget else 1)
                blocks = _cdiv(np.minimum(span, context), g.block_tokens) + 1
                blocks = np.minimum(blocks, _cdiv(context, g.block_tokens) + 1)
            total = total + g.count * blocks
        return total

    def request_units(self, context_tokens: ArrayLike) -> NDArray[np.float64]:
        return self._units(context_tokens, budget=True)

    def held_units(self, context_tokens: ArrayLike) -> NDArray[np.float64]:
        return self._units(context_tokens, budget=False)

    def max_concurrency(self, context_tokens: ArrayLike) -> NDArray[np.float64]:
        """The engine's logged maximum concurrency for requests of L tokens (per engine)."""
        per_request = self.request_units(context_tokens)
        concurrency = self.pool_units / per_request
        if self.swa_pool_tokens is not None and self.swa_tokens_per_request:
            concurrency = np.minimum(
                concurrency, self.swa_pool_tokens / self.swa_tokens_per_request
            )
        return np.asarray(concurrency, dtype=np.float64)

    def kv_pool_tokens(self, context_tokens: ArrayLike) -> NDArray[np.int64]:
        """The engine's logged KV cache size in tokens (per engine)."""
        if self.logged_tokens_are_pool:
            full = np.full(np.shape(context_tokens), self.pool_units)
            return np.asarray(np.floor(full), dtype=np.int64)
        context = np.asarray(context_tokens, dtype=np.int64)
        return np.asarray(np.floor(self.max_concurrency(context) * context), dtype=np.int64)


def _vllm_admission(
    pages: list[CachePage], available_bytes: float, in_flight_tokens: int
) -> Admission:
    groups, block_bytes = _packed_groups(pages)
    blocks = math.floor(max(available_bytes, 0.0) / block_bytes)
    return Admission("vllm", blocks, block_bytes, tuple(groups), in_flight_tokens)


def _unpacked_admission(pages: list[CachePage], available_bytes: float) -> Admission:
    """TensorRT-LLM (unverified): each page kind in its own pool, sized in bytes."""
    groups = tuple(_Group((p,), 1, p.block_tokens, p.window_tokens, p.role) for p in pages)
    return Admission("trtllm", max(available_bytes, 0.0), 1.0, groups, 0)


def _sglang_admission(
    pages: list[CachePage],
    available_bytes: float,
    swa_ratio: float | None,
    max_requests: int,
) -> Admission:
    """Token pool (SGLang): bytes per full-pool token; V4 adds the SWA pool and rings."""
    context = [p for p in pages if p.role == "context"]
    page_tokens = max((p.block_tokens for p in context), default=1)
    per_full_token = sum(p.layers * p.page_bytes / p.block_tokens for p in context)
    per_swa_token = sum(
        p.layers * p.page_bytes / (p.block_tokens if p.role == "window" else page_tokens)
        for p in pages
        if p.role in ("window", "csa_state")
    )
    fixed = 0.0
    for p in pages:
        if p.role == "hca_state":
            row_bytes = p.page_bytes / p.block_tokens
            slots = max_requests + 1
            rows = math.ceil((slots * p.block_tokens + p.block_tokens + 1) / 128) * 128
            fixed += rows * row_bytes * p.layers
    has_swa = per_swa_token > 0
    ratio = swa_ratio if (has_swa and swa_ratio is not None) else 0.0
    per_token = per_full_token + ratio * per_swa_token
    full = math.floor(max(available_bytes - fixed, 0.0) / per_token) // page_tokens * page_tokens
    window = max((p.window_tokens for p in pages if p.role == "window"), default=0)
    swa_tokens = None
    swa_per_request = 0
    if has_swa:
        swa_tokens = math.floor(full * ratio) // page_tokens * page_tokens
        swa_per_request = (math.ceil((window - 1) / page_tokens) + 1) * page_tokens
    group = _Group(tuple(context), 1, page_tokens, 0, "context")
    return Admission(
        "sglang",
        full,
        per_token,
        (group,),
        0,
        max_requests=max_requests,
        swa_pool_tokens=swa_tokens,
        swa_tokens_per_request=swa_per_request,
        logged_tokens_are_pool=True,
    )


# --------------------------------------------------------------------------- engine
class Engine:
    """A validated engine profile with its defaults and admission rule."""

    def __init__(self, profile: EngineProfile) -> None:
        self.profile = profile
        self.name = profile.name
        self.admission_spec = profile.admission
        self.blocks = profile.blocks

    def tier(self, gpu_name: str, hbm_gib: float) -> DefaultsTier:
        for tier in self.profile.defaults.tiers:
            if hbm_gib >= tier.min_hbm_gib and gpu_name not in tier.excluded_gpus:
                return tier
        return self.profile.defaults.tiers[-1]

    def kv_format_updates(self, kv_dtype: str | None) -> dict[str, dict[str, Any]]:
        """Storage-format updates per attention kind: the engine's defaults, then the
        ``--kv-dtype`` choice on top."""
        merged: dict[str, dict[str, Any]] = {}
        for key in ("auto", kv_dtype or "auto"):
            for kind, update in self.profile.kv_formats.get(key, {}).items():  # type: ignore[call-overload]
                merged[kind] = {**merged.get(kind, {}), **update}
        return merged

    def head_padding(self, kind: str, phase: str, gpu_name: str) -> HeadPadding | None:
        """The rule (rules are disjoint) for this attention kind (its label in lower case),
        phase and GPU profile; None: the kernel runs the rank's own heads."""
        for rule in self.profile.head_padding.values():
            if rule.applies(kind, phase, gpu_name):
                return rule
        return None

    def page_alignment_bytes(self, entry_dtype: Literal["fp8", "bf16"]) -> int:
        return self.profile.page_alignment_bytes.get(entry_dtype, 1)

    def default_memory_fraction(
        self,
        gpu_name: str,
        hbm_gib: float,
        tensor_parallel: int,
        attention_dp: int,
        max_running_requests: int,
    ) -> float:
        """The engine's memory fraction when the user sets none (SGLang computes its
        mem_fraction_static from the chunk size, TP size and CUDA-graph batch, the latter
        capped at the server's max_running_requests)."""
        a = self.admission_spec
        if a.memory_fraction is not None:
            return a.memory_fraction
        tier = self.tier(gpu_name, hbm_gib)
        gpu_mib = hbm_gib * GIB_BYTES / MIB_BYTES
        chunk = sglang_chunk_tokens(tier.max_num_batched_tokens, attention_dp)
        graph_batch = min(tier.cuda_graph_max_batch or 0, max_running_requests)
        reserved = (
            a.reserve_base_mib
            + a.reserve_mib_per_chunk_token * chunk
            + a.reserve_mib_per_tp_rank * tensor_parallel * attention_dp
            + a.reserve_mib_per_graph_batch * graph_batch
        )
        if attention_dp > 1:  # DP attention pads more (SGLang reserve_for_graph_mb)
            per_dp = a.reserve_mib_per_graph_batch_dp
            if graph_batch > a.graph_batch_large_above:
                per_dp += a.reserve_mib_per_graph_batch_dp_large
            reserved += per_dp * graph_batch * attention_dp
        if hbm_gib > a.reserve_floor_above_gib:
            reserved = max(reserved, a.reserve_floor_mib)
        return round((gpu_mib - reserved) / gpu_mib, 3)

    def activation_bytes(
        self,
        shape: ForwardShape,
        vocab_size: int,
        max_batched_tokens: int,
        max_num_seqs: int,
        attention_dp: int = 1,
    ) -> float:
        """Peak activation memory the engine's profiling run measures. vLLM / TensorRT-LLM:
        a forward pass of the token budget, then a sampler warm-up over max_num_seqs
        sequences x the vocabulary; they run one after the other, so the peak is the
        larger. The forward pass is either activation_live_tensors x the widest activation
        or (``layers``) the heaviest layer block's live tensors for every token, an MoE
        block's with the fused-MoE workspace for one call of at most
        fused_moe_chunk_tokens. SGLang: the
        activation share of its mem_fraction_static reserve (reserve_mib_per_chunk_token x
        the chunk its fraction was sized for: the token budget per attention-DP rank, at
        least 2048)."""
        a = self.admission_spec
        if a.rule == "sglang":
            chunk = sglang_chunk_tokens(max_batched_tokens, attention_dp)
            return a.reserve_mib_per_chunk_token * chunk * MIB_BYTES
        if a.forward_activation == "layers":
            moe_tokens = min(max_batched_tokens, a.fused_moe_chunk_tokens)
            moe_block = (
                max_batched_tokens * shape.moe_layer_bytes + moe_tokens * shape.moe_workspace_bytes
            )
            forward = max(max_batched_tokens * shape.layer_bytes, moe_block)
        else:
            forward = max_batched_tokens * shape.widest_bytes * a.activation_live_tensors
        sampler = max_num_seqs * vocab_size * a.sampler_bytes_per_vocab_entry
        return float(max(forward, sampler))

    def non_torch_gib_for(self, communicators: int) -> float:
        """Memory the engine allocates outside PyTorch on one GPU: the process's own
        (non_torch_gib) plus the buffers of each NCCL communicator it opens."""
        a = self.admission_spec
        return a.non_torch_gib + communicators * a.nccl_communicator_gib

    def available_kv_bytes(
        self,
        total_bytes: float,
        weights_bytes: float,
        activation_bytes: float,
        memory_fraction: float,
        runtime_reserve_bytes: float | None,
    ) -> tuple[float, float]:
        """(KV pool bytes per GPU, bytes held back besides weights and activations)."""
        a = self.admission_spec
        buffers = (
            runtime_reserve_bytes
            if runtime_reserve_bytes is not None
            else (self.non_torch_gib_for(0) + a.cuda_graph_gib) * GIB_BYTES
        )
        context = a.cuda_context_gib * GIB_BYTES
        if a.rule == "vllm":
            kv = memory_fraction * total_bytes - weights_bytes - activation_bytes - buffers
        elif a.rule == "sglang":
            # Activations and CUDA graphs live in the (1 - fraction) slack, not in the pool.
            kv = memory_fraction * (total_bytes - context) - weights_bytes - buffers
        else:
            free = total_bytes - context - weights_bytes - activation_bytes - buffers
            kv = memory_fraction * free
        held_back = total_bytes - kv - weights_bytes - activation_bytes
        return kv, held_back

    def admission(
        self,
        pages: list[CachePage],
        available_bytes: float,
        max_batched_tokens: int,
        max_num_seqs: int,
    ) -> Admission:
        a = self.admission_spec
        if a.rule == "sglang":
            return _sglang_admission(pages, available_bytes, a.swa_full_tokens_ratio, max_num_seqs)
        if a.rule == "trtllm":
            return _unpacked_admission(pages, available_bytes)
        in_flight = a.in_flight_batches * max_batched_tokens
        return _vllm_admission(pages, available_bytes, in_flight)


# --------------------------------------------------------------------------- loading
def engine_dir() -> Path:
    return Path(os.environ.get(ENGINE_DIR_ENV, DEFAULT_ENGINE_DIR))


def engine_names(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or engine_dir()).glob("*.yaml"))


def profile_from_file(path: Path) -> EngineProfile:
    profile = sourced_document(path, EngineProfile, "an engine profile")
    if profile.name != path.stem:
        raise ConfigError(
            "engine name differs from its file name",
            where=path.name,
            field="name",
            value=profile.name,
        )
    return profile


@cache
def _load(directory: str, name: str) -> Engine:
    return Engine(
        profile_from_file(named_data_file(Path(directory), name, "engine", "serving engine"))
    )


def load_engine(name: str) -> Engine:
    """An engine by name (file stem in engines/, e.g. 'vllm')."""
    return _load(str(engine_dir()), name)
