"""A model as the analytic layer sees it: per-layer KV bytes, weights and FLOPs.

``Model`` wraps a validated ``ModelSpec``. Identical layers are grouped so that a sweep
over thousands of context lengths costs one numpy expression per distinct layer kind;
``per_layer_*`` methods give the same numbers layer by layer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.dtypes import storage_format
from planner.model.attention import (
    FLOP_PER_MAC,
    AttentionKind,
    Matrix,
    make_attention,
)
from planner.model.ffn import ffn_matrices
from planner.schema import AttentionSpec, LayerSpec, ModelSpec
from planner.units import check_token_counts

FloatArray = NDArray[np.float64]

# Multi-token prediction: each module projects [embedding; hidden] (2h) back to h
# (DeepSeek-V3 report, sec. 2.2, "M_k" projection).
MTP_PROJECTION_INPUTS = 2


# Weight groups whose per-token work is reported under another component name.
LINEAR_COMPONENT = {"attention": "projections", "other": "hyper_connections"}


def _scalar_or_array(value: FloatArray, like: ArrayLike) -> float | FloatArray:
    return float(value) if np.ndim(like) == 0 else value


@dataclass(frozen=True)
class WeightLine:
    component: str
    params: int
    bytes: float
    active_params: int


class Model:
    """Analytic view of one model spec."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._kinds: dict[AttentionSpec, AttentionKind] = {}
        for layer in spec.layers:
            if layer.attention not in self._kinds:
                self._kinds[layer.attention] = make_attention(layer.attention)
        # Distinct attention kinds with the number of layers using each.
        self._attention_groups: list[tuple[AttentionKind, int]] = [
            (self._kinds[a], n)
            for a, n in Counter(layer.attention for layer in spec.layers).items()
        ]

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_layers(self) -> int:
        return len(self.spec.layers)

    @property
    def max_context_tokens(self) -> int:
        return self.spec.max_context_tokens

    def attention(self, layer_index: int) -> AttentionKind:
        return self._kinds[self.spec.layers[layer_index].attention]

    @property
    def layer_counts_by_kind(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for kind, n in self._attention_groups:
            counts[kind.label] += n
        return dict(counts)

    @property
    def attention_groups(self) -> list[tuple[AttentionKind, int]]:
        """Distinct attention kinds with the number of layers using each."""
        return self._attention_groups

    # ------------------------------------------------------------------ KV cache
    def _sum_groups(self, fn_name: str, *args: object) -> FloatArray:
        total: FloatArray | float = 0.0
        for kind, n in self._attention_groups:
            total = total + n * getattr(kind, fn_name)(*args)
        return np.asarray(total, dtype=np.float64)

    def kv_bytes(self, context_tokens: ArrayLike) -> float | FloatArray:
        """Context-growing cache bytes of one sequence of L tokens, all layers."""
        check_token_counts(context_tokens)
        return _scalar_or_array(self._sum_groups("kv_bytes", context_tokens), context_tokens)

    def state_bytes(self) -> float:
        """Fixed per-sequence state (sliding windows, compression tails), all layers."""
        return float(sum(n * kind.state_bytes() for kind, n in self._attention_groups))

    def cache_bytes(self, context_tokens: ArrayLike) -> float | FloatArray:
        """Everything one sequence holds: kv_bytes(L) + state_bytes()."""
        check_token_counts(context_tokens)
        total = self._sum_groups("kv_bytes", context_tokens) + self.state_bytes()
        return _scalar_or_array(total, context_tokens)

    def read_bytes(self, context_tokens: ArrayLike) -> float | FloatArray:
        """Cache bytes one decode step reads for one sequence at context L."""
        check_token_counts(context_tokens)
        return _scalar_or_array(self._sum_groups("read_bytes", context_tokens), context_tokens)

    @property
    def kv_bytes_per_token(self) -> float:
        """Amortised cache growth per token of context, all layers."""
        return float(sum(n * kind.kv_bytes_per_token for kind, n in self._attention_groups))

    def per_layer_kv_bytes(self, context_tokens: ArrayLike) -> list[FloatArray]:
        check_token_counts(context_tokens)
        return [self.attention(i).kv_bytes(context_tokens) for i in range(self.num_layers)]

    # ------------------------------------------------------------------ weights
    def _layer_matrices(self, layer: LayerSpec) -> list[Matrix]:
        h = self.spec.hidden_size
        return [*self._kinds_for(layer.attention).projections(h), *ffn_matrices(layer.ffn, h)]

    def _kinds_for(self, attention: AttentionSpec) -> AttentionKind:
        if attention not in self._kinds:
            self._kinds[attention] = make_attention(attention)
        return self._kinds[attention]

    def _hyper_connection_matrices(self) -> list[Matrix]:
        """mHC mixing weights (V4): per sublayer, the hc_mult*h stream maps to
        hc_mult (pre) + hc_mult (post) + hc_mult^2 (residual) coefficients."""
        m = self.spec.hc_mult
        if m == 1:
            return []
        h = self.spec.hidden_size
        coefficients = m + m + m * m
        # Stored in FP32 by the reference code (V4 inference/model.py, hc_attn_fn/hc_ffn_fn).
        return [Matrix("other", "hc_fn", m * h, coefficients, fmt="fp32")]

    @cached_property
    def _main_matrices(self) -> list[Matrix]:
        mats: list[Matrix] = []
        hc = self._hyper_connection_matrices()
        for layer in self.spec.layers:
            mats += self._layer_matrices(layer)
            mats += hc * 2  # one mixer for the attention and one for the FFN sublayer
        return mats

    @cached_property
    def _mtp_matrices(self) -> list[Matrix]:
        mtp = self.spec.mtp
        if mtp is None:
            return []
        h = self.spec.hidden_size
        one = [
            Matrix("attention", "mtp.eh_proj", MTP_PROJECTION_INPUTS * h, h),
            *self._layer_matrices(mtp.layer),
            *(self._hyper_connection_matrices() * 2),
        ]
        return one * mtp.num_modules

    def matrix_format(self, mat: Matrix) -> str:
        """Storage format name of a weight matrix (its own, or its group's)."""
        return str(mat.fmt or getattr(self.spec.weight_formats, mat.group))

    def matrix_bytes(self, mat: Matrix) -> float:
        """Stored bytes of a weight matrix (all ``count`` copies), scales included."""
        fmt = storage_format(self.matrix_format(mat), field=f"weight_formats.{mat.group}")
        return mat.count * fmt.tensor_bytes(mat.rows, mat.cols)

    def math_dtype(self, mat: Matrix) -> str:
        """Math dtype of a matrix's storage format (before GPU fallback)."""
        return storage_format(self.matrix_format(mat)).math_dtype

    @cached_property
    def distinct_layers(self) -> list[tuple[LayerSpec, int]]:
        """Distinct layers with how many times each occurs."""
        return list(Counter(self.spec.layers).items())

    def layer_matrices(self, layer: LayerSpec) -> list[Matrix]:
        """Every weight matrix of one decoder layer (attention, FFN, mHC mixers)."""
        return self._layer_matrices(layer) + self._hyper_connection_matrices() * 2

    def attention_kind(self, attention: AttentionSpec) -> AttentionKind:
        return self._kinds_for(attention)

    @cached_property
    def embedding_matrix(self) -> Matrix:
        return Matrix("embedding", "embed_tokens", self.spec.vocab_size, self.spec.hidden_size)

    @cached_property
    def head_matrix(self) -> Matrix:
        return Matrix("head", "lm_head", self.spec.hidden_size, self.spec.vocab_size)

    def weight_entries(self, include_mtp: bool = True) -> list[tuple[str, Matrix]]:
        """(component, matrix) for every stored weight; a tied head is not stored twice."""
        entries = [("embedding", self.embedding_matrix)]
        if not self.spec.tie_word_embeddings:
            entries.append(("head", self.head_matrix))
        entries += [(mat.group, mat) for mat in self._main_matrices]
        if include_mtp:
            entries += [("mtp", mat) for mat in self._mtp_matrices]
        return entries

    @cached_property
    def weight_breakdown(self) -> dict[str, WeightLine]:
        """Parameters and stored bytes per component (MTP counted once, separately)."""
        lines: dict[str, list[float]] = {}
        for component, mat in self.weight_entries():
            acc = lines.setdefault(component, [0, 0.0, 0])
            acc[0] += mat.params
            acc[1] += self.matrix_bytes(mat)
            acc[2] += 0 if component == "embedding" else mat.active_params  # a lookup
        if self.spec.tie_word_embeddings:
            lines["head"] = [0, 0.0, self.head_matrix.params]
        return {k: WeightLine(k, int(p), float(b), int(a)) for k, (p, b, a) in lines.items()}

    @property
    def weight_bytes(self) -> float:
        """All stored weights, MTP modules included."""
        return sum(line.bytes for line in self.weight_breakdown.values())

    @property
    def total_params(self) -> int:
        """Parameters of the main model (MTP modules excluded, as in published counts)."""
        return sum(w.params for k, w in self.weight_breakdown.items() if k != "mtp")

    @property
    def active_params(self) -> int:
        """Parameters used per token by the main model, embedding and head included. Tied
        embeddings are one matrix used twice: counted once, as in total_params (the head's
        active line is that matrix)."""
        lines = self.weight_breakdown
        active = sum(w.active_params for k, w in lines.items() if k != "mtp")
        if self.spec.tie_word_embeddings:
            return active
        return active + lines["embedding"].params

    # ------------------------------------------------------------------ FLOPs
    @cached_property
    def _linear_flops_per_token(self) -> dict[str, float]:
        """Context-independent work per token: every matrix a token passes through."""
        parts: dict[str, float] = {}
        for mat in self._main_matrices:
            component = LINEAR_COMPONENT.get(mat.group, mat.group)
            parts[component] = parts.get(component, 0.0) + mat.flops_per_token
        parts["head"] = float(FLOP_PER_MAC * self.spec.hidden_size * self.spec.vocab_size)
        return parts

    def flops_breakdown(
        self, context_tokens: ArrayLike, query_tokens: int = 1
    ) -> dict[str, float | FloatArray]:
        """FLOPs per query token, by component, for q queries ending at context L.

        Components: ``attention:<KIND>`` (scores and weighted values), ``indexer``
        (selector scoring and its projections), ``projections`` (attention projections),
        ``compressor`` (V4 KV/indexer compressors), ``dense_ffn``, ``routed_experts``,
        ``shared_experts``, ``router``, ``hyper_connections`` (V4 mHC) and ``head``.
        MTP modules are not included (they only run for speculative decoding).
        """
        check_token_counts(context_tokens)
        check_token_counts(query_tokens, field="query_tokens", minimum=1)
        q = query_tokens
        shape = np.shape(context_tokens)
        parts: dict[str, FloatArray] = {}

        def add(component: str, value: FloatArray | float) -> None:
            parts[component] = parts.get(component, np.zeros(shape)) + value

        for kind, n in self._attention_groups:
            add(f"attention:{kind.label}", n * kind.attn_flops(q, context_tokens) / q)
            if kind.has_indexer:
                add("indexer", n * kind.indexer_flops(q, context_tokens) / q)
        for component, value in self._linear_flops_per_token.items():
            add(component, value)
        return {k: _scalar_or_array(v, context_tokens) for k, v in parts.items()}

    def flops_per_token(
        self, context_tokens: ArrayLike, query_tokens: int = 1
    ) -> float | FloatArray:
        """Total FLOPs per query token (see flops_breakdown)."""
        parts = self.flops_breakdown(context_tokens, query_tokens).values()
        total = np.sum([np.asarray(p, dtype=np.float64) for p in parts], axis=0)
        return _scalar_or_array(total, context_tokens)

    def decode_flops_per_token(self, context_tokens: ArrayLike) -> float | FloatArray:
        """FLOPs to generate one token at context L (q = 1)."""
        return self.flops_per_token(context_tokens, 1)
