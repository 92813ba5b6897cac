"""The KV cache as a serving engine lays it out: one ``CachePage`` per kind of per-layer
cache, on one GPU, from the model's attention kinds and the engine's layout data
(``engines/*.yaml``: block sizes, page padding).

- GQA: K and V of the rank's KV heads, ``gqa_tokens`` per page (a sliding-window layer is
  a window cache).
- MLA / DSA: one latent (+ RoPE) row per token, ``mla_tokens`` per page; DSA's indexer keys
  are a second page of the same block size.
- DeepSeek-V4 (vLLM 0.33 models/deepseek_v4/, SGLang 0.5.23 deepseek_v4_memory_pool.py):
  per CSA/HCA layer a page of compressed entries covering ``compressed_tokens`` of context
  (256 / ratio entries) and, for CSA, a page of indexer keys; per layer a sliding-window
  page of ``window_tokens`` raw entries; per compressed layer a compressor-state page of
  ``*_state_slots`` FP32 (kv, score) rows for the main compressor and, for CSA, the
  indexer's. Every page is padded to the engine's alignment (vLLM: 576 B for fp8_ds_mla).
"""

from __future__ import annotations

import math
from typing import Literal

from planner.dtypes import storage_format
from planner.engines import CachePage, CacheRole
from planner.model.attention import DSA, GQA, MLA, AttentionKind, CompressedAttention
from planner.plan.deployed import Deployed


def _padded(nbytes: float, alignment: int) -> float:
    return float(math.ceil(nbytes / alignment) * alignment)


def _compressed_pages(kind: CompressedAttention, count: int, deployed: Deployed) -> list[CachePage]:
    spec = kind.spec
    blocks = deployed.engine.blocks
    entry_dtype: Literal["fp8", "bf16"] = "bf16" if spec.entry_nope_format == "bf16" else "fp8"
    align = deployed.engine.page_alignment_bytes(entry_dtype)
    window = blocks.window_tokens
    pages = [
        CachePage(
            "window",
            count,
            window,
            _padded(window * kind.entry_bytes, align),
            spec.sliding_window_tokens,
        )
    ]
    if not kind.ratio:
        return pages
    entries = max(blocks.compressed_tokens // kind.ratio, 1)
    covered = entries * kind.ratio
    pages.append(CachePage("context", count, covered, _padded(entries * kind.entry_bytes, align)))
    if kind.index_key_bytes:
        pages.append(
            CachePage("context", count, covered, _padded(entries * kind.index_key_bytes, align))
        )
    state_fmt = storage_format(spec.compressor_state_format, field="compressor_state_format")
    role: CacheRole = "csa_state" if kind.has_indexer else "hca_state"
    slots = blocks.csa_state_slots if kind.has_indexer else blocks.hca_state_slots
    state_window = spec.compressor_overlap * kind.ratio
    dims = [spec.head_dim] + ([spec.index_head_dim] if spec.index_head_dim else [])
    for dim in dims:
        row_bytes = state_fmt.vector_bytes(2 * spec.compressor_overlap * dim)
        pages.append(CachePage(role, count, slots, _padded(slots * row_bytes, align), state_window))
    return pages


def cached_layers(deployed: Deployed) -> list[tuple[AttentionKind, int]]:
    """Attention kinds with their layer counts whose caches the engine holds: the model's
    layers, plus the MTP modules' layers when MTP decoding is on (the draft layer keeps its
    own KV cache: vLLM's DeepSeek MTP draft model and SGLang's NextN layer allocate one)."""
    layers = list(deployed.model.attention_groups)
    mtp = deployed.model.spec.mtp
    if deployed.deployment.mtp and mtp is not None:
        layers.append((deployed.model.attention_kind(mtp.layer.attention), mtp.num_modules))
    return layers


def cache_pages(deployed: Deployed) -> list[CachePage]:
    """Every per-layer cache of the deployed model, as pages of its engine, on one GPU."""
    blocks = deployed.engine.blocks
    pages: list[CachePage] = []
    for kind, count in cached_layers(deployed):
        share = kind.kv_shard_fraction(deployed.tp)
        if isinstance(kind, CompressedAttention):
            pages += _compressed_pages(kind, count, deployed)
        elif isinstance(kind, DSA):
            tokens = blocks.mla_tokens
            pages.append(CachePage("context", count, tokens, tokens * kind.entry_bytes * share))
            pages.append(CachePage("context", count, tokens, tokens * kind.index_key_bytes))
        elif isinstance(kind, MLA):
            tokens = blocks.mla_tokens
            pages.append(CachePage("context", count, tokens, tokens * kind.entry_bytes * share))
        else:
            assert isinstance(kind, GQA)
            tokens = blocks.gqa_tokens
            page = tokens * kind.kv_bytes_per_token * share
            window = kind.spec.sliding_window_tokens
            if window is None:
                pages.append(CachePage("context", count, tokens, page))
            else:
                pages.append(CachePage("window", count, tokens, page, window))
    return pages
