"""Whole-model spec transformations (e.g. storing the KV cache in another dtype)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planner.errors import KvplanError
from planner.model.attention import with_kv_dtype
from planner.schema import AttentionSpec, LayerSpec, ModelSpec


def _map_attention(spec: ModelSpec, fn: Callable[[AttentionSpec], AttentionSpec]) -> ModelSpec:
    """The model with ``fn`` applied to every layer's attention spec (and the MTP layer's);
    the same spec object when nothing changes."""

    def convert(layer: LayerSpec) -> LayerSpec:
        attention = fn(layer.attention)
        if attention is layer.attention:
            return layer
        return layer.model_copy(update={"attention": attention})

    cache: dict[LayerSpec, LayerSpec] = {}
    layers = tuple(cache.setdefault(layer, convert(layer)) for layer in spec.layers)
    mtp = spec.mtp
    if mtp is not None:
        mtp = mtp.model_copy(update={"layer": convert(mtp.layer)})
    if layers == spec.layers and mtp == spec.mtp:
        return spec
    return spec.model_copy(update={"layers": layers, "mtp": mtp})


def with_model_kv_dtype(spec: ModelSpec, kv_dtype: str) -> ModelSpec:
    """Every layer's main attention cache (and the MTP layer's) stored as ``kv_dtype``."""
    return _map_attention(spec, lambda attention: with_kv_dtype(attention, kv_dtype))


def with_weight_formats(spec: ModelSpec, overrides: dict[str, str]) -> ModelSpec:
    """The same model with some weight groups stored in other formats."""
    if not overrides:
        return spec
    formats = spec.weight_formats.model_copy(update=overrides)
    return spec.model_copy(update={"weight_formats": formats})


def _with_formats(attention: AttentionSpec, updates: dict[str, dict[str, Any]]) -> AttentionSpec:
    update = updates.get(attention.kind)
    if not update:
        return attention
    unknown = set(update) - set(type(attention).model_fields)
    if unknown:
        raise KvplanError(
            f"unknown field(s) {sorted(unknown)} for a '{attention.kind}' attention layer",
            field="kv_formats",
            value=attention.kind,
        )
    return type(attention).model_validate({**attention.model_dump(), **update})


def with_attention_formats(spec: ModelSpec, updates: dict[str, dict[str, Any]]) -> ModelSpec:
    """Every layer's attention spec (and the MTP layer's) with the storage-format fields of
    ``updates[kind]`` applied (validated), e.g. a serving engine's cache formats."""
    if not updates:
        return spec
    return _map_attention(spec, lambda attention: _with_formats(attention, updates))
