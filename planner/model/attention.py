"""Attention kinds: KV bytes, fixed state, decode read bytes, FLOPs and projection weights.

One interface for every kind (``AttentionKind``); all context arguments are vectorised over
numpy arrays of context lengths ``L`` (tokens). FLOPs count a multiply-add as 2.

Formulas:
- GQA: K and V of num_kv_heads x head_dim per token. Scores and weighted values cost
  2 * head_dim FLOPs each per (query head, visible token).
- MLA (DeepSeek-V2 paper, sec. 2.1; DeepSeek-V3 report): the cache holds the kv latent
  (kv_lora_rank) and the decoupled RoPE key (qk_rope_head_dim), one vector per token shared
  by all heads. Decode runs the "absorbed" form: W_UK folds into the query and W_UV into the
  output, so each head scores (kv_lora_rank + rope) dims and sums kv_lora_rank-dim values
  over the latents. Prefill runs the naive form: latents are up-projected to per-head
  keys (nope + rope) and values (v_head_dim).
- DSA (DeepSeek-V3.2-Exp paper): MLA in its MQA (absorbed) form where each query attends
  only the index_topk tokens picked by the lightning indexer; the indexer scores *every*
  visible token with index_n_heads heads of index_head_dim and sums ReLU'd scores with
  per-head weights (2 * index_head_dim + 2 FLOPs per head and token). It keeps its own key
  cache (index_head_dim per token).
- CSA / HCA / SWA (DeepSeek-V4 technical report): each layer caches one shared K=V entry
  of head_dim per compressed group of ``compress_ratio`` tokens, plus a sliding window of
  the last ``sliding_window_tokens`` uncompressed entries. CSA's indexer keeps one key per
  compressed entry and picks index_topk entries; HCA attends to all compressed entries;
  SWA (ratio 0) keeps the window only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.dtypes import storage_format
from planner.errors import KvplanError
from planner.model.counting import visible_sum
from planner.schema import AttentionSpec, CompressedSpec, DSASpec, GQASpec, MLASpec

FloatArray = NDArray[np.float64]

FLOP_PER_MAC = 2


@dataclass(frozen=True)
class Matrix:
    """A weight matrix applied to every token: rows (input) x cols (output), ``count`` of them."""

    group: str  # weight-format group in WeightFormats: "attention", "indexer", ...
    name: str
    rows: int
    cols: int
    count: int = 1
    active: int | None = None  # how many of the ``count`` run per token (MoE); None = all
    fmt: str | None = None  # storage format fixed by the architecture, overriding the group
    # True for matrices every tensor-parallel rank keeps whole (vLLM ReplicatedLinear): the
    # shared latent / single-KV-head projections of MLA and V4, and small selector weights.
    replicated: bool = False

    @property
    def params(self) -> int:
        return self.rows * self.cols * self.count

    @property
    def active_params(self) -> int:
        active = self.count if self.active is None else self.active
        return self.rows * self.cols * active

    @property
    def flops_per_token(self) -> int:
        return FLOP_PER_MAC * self.active_params


def _as_context(context_tokens: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(context_tokens, dtype=np.int64)


class AttentionKind(ABC):
    """Shared interface of all attention kinds."""

    label: str
    spec: AttentionSpec
    has_indexer: bool = False

    @property
    @abstractmethod
    def kv_bytes_per_token(self) -> float:
        """Growth rate of the cache: bytes added per token of context (amortised)."""

    @abstractmethod
    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        """Bytes of cache that grow with context, for one sequence of L tokens."""

    def state_bytes(self) -> float:
        """Fixed per-sequence state that does not grow with L (sliding window, tail)."""
        return 0.0

    @property
    def cache_math_dtype(self) -> str | None:
        """Math dtype of the main cache's storage format, where kernels are timed per cache
        class (GQA: its ``kv_format``); None: one curve for every cache."""
        return None

    @abstractmethod
    def read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        """Cache bytes one decode step reads for one sequence at context L."""

    @abstractmethod
    def attn_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        """Core attention FLOPs (scores + weighted values) for q queries ending at L."""

    def decode_attn_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        """Core attention FLOPs of a decode step feeding q queries (q > 1 with speculative
        drafts) in the form decode kernels run (MLA: absorbed)."""
        return self.attn_flops(query_tokens, context_tokens)

    def indexer_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        """FLOPs of the token/entry selector (zero for kinds without an indexer)."""
        return np.zeros(np.shape(context_tokens), dtype=np.float64)

    @abstractmethod
    def projections(self, hidden_size: int) -> list[Matrix]:
        """Weight matrices of the layer's attention block (per-token linear work)."""

    def cache_entries(self, context_tokens: ArrayLike) -> NDArray[np.int64]:
        """Cache entries (rows of the paged cache) a sequence of L tokens holds."""
        return _as_context(context_tokens)

    def index_read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        """The part of read_bytes() that the indexer reads (its key cache)."""
        return np.zeros(np.shape(context_tokens), dtype=np.float64)

    @property
    def index_math_dtype(self) -> str:
        """Math dtype of the indexer's key scoring (its key storage format's)."""
        index_format = getattr(self.spec, "index_key_format", None)
        return storage_format(index_format).math_dtype if index_format else "bf16"

    def kv_shard_fraction(self, tensor_parallel: int) -> float:
        """Share of a sequence's cache one tensor-parallel rank holds. MLA and V4 cache one
        vector per token shared by all heads, so every rank keeps all of it (1.0)."""
        return 1.0


# --------------------------------------------------------------------------- GQA
class GQA(AttentionKind):
    label = "GQA"
    spec: GQASpec

    def __init__(self, spec: GQASpec) -> None:
        self.spec = spec
        fmt = storage_format(spec.kv_format, field="kv_format")
        self._token_bytes = 2 * spec.num_kv_heads * fmt.vector_bytes(spec.head_dim)
        if spec.num_kv_heads == spec.num_heads:
            self.label = "MHA"

    @property
    def kv_bytes_per_token(self) -> float:
        return self._token_bytes

    @property
    def cache_math_dtype(self) -> str:
        return storage_format(self.spec.kv_format, field="kv_format").math_dtype

    def cache_entries(self, context_tokens: ArrayLike) -> NDArray[np.int64]:
        context = _as_context(context_tokens)
        window = self.spec.sliding_window_tokens
        return context if window is None else np.minimum(context, window)

    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(self.cache_entries(context_tokens) * self._token_bytes, dtype=np.float64)

    def kv_shard_fraction(self, tensor_parallel: int) -> float:
        # KV heads split across ranks; with more ranks than KV heads each keeps one head.
        kv_heads = self.spec.num_kv_heads
        return math.ceil(kv_heads / tensor_parallel) / kv_heads

    def read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return self.kv_bytes(context_tokens)

    def attn_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        s = self.spec
        pairs = visible_sum(query_tokens, context_tokens, cap=s.sliding_window_tokens)
        return (FLOP_PER_MAC * s.num_heads * 2 * s.head_dim * pairs).astype(np.float64)

    def projections(self, hidden_size: int) -> list[Matrix]:
        s = self.spec
        return [
            Matrix("attention", "q_proj", hidden_size, s.num_heads * s.head_dim),
            Matrix("attention", "k_proj", hidden_size, s.num_kv_heads * s.head_dim),
            Matrix("attention", "v_proj", hidden_size, s.num_kv_heads * s.head_dim),
            Matrix("attention", "o_proj", s.num_heads * s.head_dim, hidden_size),
        ]


# --------------------------------------------------------------------------- MLA
class MLA(AttentionKind):
    label = "MLA"
    spec: MLASpec

    def __init__(self, spec: MLASpec) -> None:
        self.spec = spec
        latent = storage_format(spec.latent_format, field="latent_format")
        rope = storage_format(spec.rope_format, field="rope_format")
        self._entry_bytes = latent.vector_bytes(spec.kv_lora_rank) + rope.vector_bytes(
            spec.qk_rope_head_dim
        )

    @property
    def entry_bytes(self) -> float:
        """Bytes of one cached latent + RoPE key."""
        return self._entry_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        return self._entry_bytes

    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(_as_context(context_tokens) * self._entry_bytes, dtype=np.float64)

    def read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return self.kv_bytes(context_tokens)

    @property
    def absorbed_flops_per_pair(self) -> int:
        """Per (head, visible token): score over latent+rope, then sum of latent values."""
        s = self.spec
        return FLOP_PER_MAC * ((s.kv_lora_rank + s.qk_rope_head_dim) + s.kv_lora_rank)

    def attn_flops(
        self, query_tokens: int, context_tokens: ArrayLike, absorbed: bool | None = None
    ) -> FloatArray:
        """Absorbed form when decoding (q == 1, or absorbed=True); naive form in prefill."""
        s = self.spec
        context = _as_context(context_tokens)
        pairs = visible_sum(query_tokens, context).astype(np.float64)
        if absorbed if absorbed is not None else query_tokens == 1:
            return s.num_heads * self.absorbed_flops_per_pair * pairs
        per_pair = FLOP_PER_MAC * (s.qk_nope_head_dim + s.qk_rope_head_dim + s.v_head_dim)
        # The cached context (L - q tokens) must be up-projected to per-head K and V again;
        # the q new tokens' up-projection is counted in projections() (wkv_b).
        cached = np.maximum(context - query_tokens, 0).astype(np.float64)
        upproject = (
            FLOP_PER_MAC * s.kv_lora_rank * s.num_heads * (s.qk_nope_head_dim + s.v_head_dim)
        )
        return s.num_heads * per_pair * pairs + upproject * cached

    def decode_attn_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        # FlashMLA decodes in the absorbed form whatever the query count (MTP drafts too).
        return self.attn_flops(query_tokens, context_tokens, absorbed=True)

    def projections(self, hidden_size: int) -> list[Matrix]:
        s = self.spec
        q_dim = s.num_heads * (s.qk_nope_head_dim + s.qk_rope_head_dim)
        if s.q_lora_rank is None:
            query = [Matrix("attention", "wq", hidden_size, q_dim)]
        else:
            query = [
                Matrix("attention", "wq_a", hidden_size, s.q_lora_rank, replicated=True),
                Matrix("attention", "wq_b", s.q_lora_rank, q_dim),
            ]
        return [
            *query,
            Matrix(
                "attention",
                "wkv_a",
                hidden_size,
                s.kv_lora_rank + s.qk_rope_head_dim,
                replicated=True,
            ),
            # In absorbed decode wkv_b is applied as W_UK to the query and W_UV to the output:
            # the same multiply-adds as up-projecting the token once.
            Matrix(
                "attention",
                "wkv_b",
                s.kv_lora_rank,
                s.num_heads * (s.qk_nope_head_dim + s.v_head_dim),
            ),
            Matrix("attention", "wo", s.num_heads * s.v_head_dim, hidden_size),
        ]


class DSA(MLA):
    label = "DSA"
    has_indexer = True

    def __init__(self, spec: DSASpec) -> None:
        super().__init__(spec)
        self.dsa = spec
        index_fmt = storage_format(spec.index_key_format, field="index_key_format")
        self._index_key_bytes = index_fmt.vector_bytes(spec.index_head_dim)

    @property
    def index_key_bytes(self) -> float:
        return self._index_key_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        return self._entry_bytes + self._index_key_bytes

    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(_as_context(context_tokens) * self.kv_bytes_per_token, dtype=np.float64)

    def index_read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(_as_context(context_tokens) * self._index_key_bytes, dtype=np.float64)

    def read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        context = _as_context(context_tokens)
        selected = np.minimum(context, self.dsa.index_topk)
        return context * self._index_key_bytes + selected * self._entry_bytes

    def attn_flops(
        self, query_tokens: int, context_tokens: ArrayLike, absorbed: bool | None = None
    ) -> FloatArray:
        # DSA runs MLA in its MQA (absorbed) form for prefill and decode alike.
        pairs = visible_sum(query_tokens, context_tokens, cap=self.dsa.index_topk)
        return self.dsa.num_heads * self.absorbed_flops_per_pair * pairs.astype(np.float64)

    def indexer_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        s = self.dsa
        pairs = visible_sum(query_tokens, context_tokens).astype(np.float64)
        return s.index_n_heads * (FLOP_PER_MAC * s.index_head_dim + FLOP_PER_MAC) * pairs

    def projections(self, hidden_size: int) -> list[Matrix]:
        s = self.dsa
        query_source = s.q_lora_rank if s.q_lora_rank is not None else hidden_size
        return [
            *super().projections(hidden_size),
            # The whole indexer is replicated on every TP rank (vLLM and SGLang build it
            # with ReplicatedLinear: every rank scores all indexer heads).
            Matrix(
                "indexer",
                "indexer.wq_b",
                query_source,
                s.index_n_heads * s.index_head_dim,
                replicated=True,
            ),
            Matrix("indexer", "indexer.wk", hidden_size, s.index_head_dim, replicated=True),
            # weights_proj is kept in BF16 by the reference code (V3.2-Exp inference/model.py).
            Matrix(
                "indexer",
                "indexer.weights_proj",
                hidden_size,
                s.index_n_heads,
                fmt="bf16",
                replicated=True,
            ),
        ]


# --------------------------------------------------------------------------- V4
class CompressedAttention(AttentionKind):
    """DeepSeek-V4 CSA / HCA / sliding-window-only layer.

    Storage (vLLM deepseek_v4_attention.py and SGLang deepseek_v4_memory_pool.py): one
    entry = (head_dim - rope) nope dims + rope dims (+ padding). The sliding window keeps
    the last W raw entries; the compressor keeps, per sequence, ``overlap * ratio`` slots
    of un-folded projections and gate scores (2 x overlap x head_dim values each).
    """

    spec: CompressedSpec

    def __init__(self, spec: CompressedSpec) -> None:
        self.spec = spec
        self.label = spec.kind.upper()
        nope = storage_format(spec.entry_nope_format, field="entry_nope_format")
        rope = storage_format(spec.entry_rope_format, field="entry_rope_format")
        nope_dims = spec.head_dim - spec.qk_rope_head_dim
        self._entry_bytes = (
            nope.vector_bytes(nope_dims)
            + rope.vector_bytes(spec.qk_rope_head_dim)
            + spec.entry_pad_bytes
        )
        self._index_key_bytes = 0.0
        self.has_indexer = spec.index_topk is not None
        if spec.index_key_format is not None and spec.index_head_dim is not None:
            index_fmt = storage_format(spec.index_key_format, field="index_key_format")
            self._index_key_bytes = index_fmt.vector_bytes(spec.index_head_dim)

    @property
    def ratio(self) -> int:
        return self.spec.compress_ratio

    @property
    def entry_bytes(self) -> float:
        return self._entry_bytes

    @property
    def index_key_bytes(self) -> float:
        return self._index_key_bytes

    @property
    def compressed_entry_bytes(self) -> float:
        """Bytes stored per compressed entry: the K=V entry plus the indexer key (CSA)."""
        return self._entry_bytes + self._index_key_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        return 0.0 if self.ratio == 0 else self.compressed_entry_bytes / self.ratio

    def cache_entries(self, context_tokens: ArrayLike) -> NDArray[np.int64]:
        context = _as_context(context_tokens)
        return np.zeros_like(context) if self.ratio == 0 else context // self.ratio

    def kv_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(
            self.cache_entries(context_tokens) * self.compressed_entry_bytes, dtype=np.float64
        )

    def _compressor_state_bytes(self, head_dim: int) -> float:
        s = self.spec
        fmt = storage_format(s.compressor_state_format, field="compressor_state_format")
        slots = s.compressor_overlap * self.ratio
        values_per_slot = 2 * s.compressor_overlap * head_dim  # projection + gate score
        return slots * fmt.vector_bytes(values_per_slot)

    def state_bytes(self) -> float:
        s = self.spec
        window = s.sliding_window_tokens * self._entry_bytes
        if self.ratio == 0:
            return window
        tail = self._compressor_state_bytes(s.head_dim)
        if s.index_head_dim is not None:
            tail += self._compressor_state_bytes(s.index_head_dim)
        return window + tail

    def index_read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        return np.asarray(
            self.cache_entries(context_tokens) * self._index_key_bytes, dtype=np.float64
        )

    def read_bytes(self, context_tokens: ArrayLike) -> FloatArray:
        s = self.spec
        context = _as_context(context_tokens)
        window = np.minimum(context, s.sliding_window_tokens) * self._entry_bytes
        entries = self.cache_entries(context)
        if s.index_topk is None:
            return window + entries * self._entry_bytes
        selected = np.minimum(entries, s.index_topk)
        return window + entries * self._index_key_bytes + selected * self._entry_bytes

    def attn_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        s = self.spec
        pairs = visible_sum(query_tokens, context_tokens, cap=s.sliding_window_tokens)
        if self.ratio:
            pairs = pairs + visible_sum(query_tokens, context_tokens, self.ratio, s.index_topk)
        # K = V: every attended entry costs a head_dim score and a head_dim value sum.
        per_pair = FLOP_PER_MAC * 2 * s.head_dim
        return (s.num_heads * per_pair * pairs).astype(np.float64)

    def indexer_flops(self, query_tokens: int, context_tokens: ArrayLike) -> FloatArray:
        s = self.spec
        if s.index_topk is None or s.index_n_heads is None or s.index_head_dim is None:
            return super().indexer_flops(query_tokens, context_tokens)
        pairs = visible_sum(query_tokens, context_tokens, self.ratio).astype(np.float64)
        return s.index_n_heads * (FLOP_PER_MAC * s.index_head_dim + FLOP_PER_MAC) * pairs

    def projections(self, hidden_size: int) -> list[Matrix]:
        s = self.spec
        h = hidden_size
        mats = [
            Matrix("attention", "wq_a", h, s.q_lora_rank, replicated=True),
            Matrix("attention", "wq_b", s.q_lora_rank, s.num_heads * s.head_dim),
            Matrix("attention", "wkv", h, s.head_dim, replicated=True),
            # Grouped low-rank output: o_groups blocks of (H*hd/G) x o_lora_rank ...
            Matrix(
                "attention",
                "wo_a",
                s.num_heads * s.head_dim // s.o_groups,
                s.o_lora_rank,
                count=s.o_groups,
            ),
            # ... then (G * o_lora_rank) x hidden.
            Matrix("attention", "wo_b", s.o_groups * s.o_lora_rank, h),
        ]
        if self.ratio:
            width = s.compressor_overlap * s.head_dim
            mats += [
                Matrix("compressor", "compressor.wkv", h, width, replicated=True),
                Matrix("compressor", "compressor.wgate", h, width, replicated=True),
            ]
        if s.index_topk is not None and s.index_n_heads and s.index_head_dim:
            width = s.compressor_overlap * s.index_head_dim
            mats += [
                # Replicated on every TP rank, as in vLLM / SGLang (see DSA above).
                Matrix(
                    "indexer",
                    "indexer.wq_b",
                    s.q_lora_rank,
                    s.index_n_heads * s.index_head_dim,
                    replicated=True,
                ),
                Matrix(
                    "indexer",
                    "indexer.weights_proj",
                    h,
                    s.index_n_heads,
                    fmt="bf16",
                    replicated=True,
                ),
                Matrix("compressor", "indexer.compressor.wkv", h, width, replicated=True),
                Matrix("compressor", "indexer.compressor.wgate", h, width, replicated=True),
            ]
        return mats


def make_attention(spec: AttentionSpec) -> AttentionKind:
    """The behaviour class for a validated attention spec."""
    if isinstance(spec, DSASpec):
        return DSA(spec)
    if isinstance(spec, MLASpec):
        return MLA(spec)
    if isinstance(spec, GQASpec):
        return GQA(spec)
    return CompressedAttention(spec)


# Storage of the main cache entries under a --kv-dtype override. Indexer keys keep the
# format of the reference stack (they are a selector, not the attended cache).
KV_DTYPE_OVERRIDES: dict[str, dict[str, dict[str, object]]] = {
    "bf16": {
        "gqa": {"kv_format": "bf16"},
        "mla": {"latent_format": "bf16", "rope_format": "bf16"},
        "dsa": {"latent_format": "bf16", "rope_format": "bf16"},
        "v4": {"entry_nope_format": "bf16", "entry_rope_format": "bf16", "entry_pad_bytes": 0},
    },
    "fp8": {
        "gqa": {"kv_format": "fp8"},
        # FlashMLA FP8 layout: 512 FP8 + 4 FP32 scales + 64 BF16 RoPE = 656 bytes.
        "mla": {"latent_format": "fp8_b128", "rope_format": "bf16"},
        "dsa": {"latent_format": "fp8_b128", "rope_format": "bf16"},
        # vLLM fp8_ds_mla for V4: 448 FP8 + 64 BF16 RoPE + 7 UE8M0 scales + 1 pad = 584 bytes.
        "v4": {
            "entry_nope_format": "fp8_b64_ue8m0",
            "entry_rope_format": "bf16",
            "entry_pad_bytes": 1,
        },
    },
}


def with_kv_dtype(spec: AttentionSpec, kv_dtype: str) -> AttentionSpec:
    """The same attention spec with its main cache stored as ``kv_dtype`` (bf16 or fp8)."""
    try:
        table = KV_DTYPE_OVERRIDES[kv_dtype]
    except KeyError:
        raise KvplanError(
            "unknown KV dtype",
            field="kv_dtype",
            value=kv_dtype,
            expected="one of " + ", ".join(KV_DTYPE_OVERRIDES),
        ) from None
    key = spec.kind if spec.kind in ("gqa", "mla", "dsa") else "v4"
    return spec.model_copy(update=table[key])
