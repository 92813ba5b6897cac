"""Whole-model spec transformations (e.g. storing the KV cache in another dtype)."""

from __future__ import annotations

from planner.model.attention import with_kv_dtype
from planner.schema import LayerSpec, ModelSpec


def with_model_kv_dtype(spec: ModelSpec, kv_dtype: str) -> ModelSpec:
    """Every layer's main attention cache (and the MTP layer's) stored as ``kv_dtype``."""

    def convert(layer: LayerSpec) -> LayerSpec:
        return layer.model_copy(update={"attention": with_kv_dtype(layer.attention, kv_dtype)})

    cache: dict[LayerSpec, LayerSpec] = {}
    layers = tuple(cache.setdefault(layer, convert(layer)) for layer in spec.layers)
    mtp = spec.mtp
    if mtp is not None:
        mtp = mtp.model_copy(update={"layer": convert(mtp.layer)})
    return spec.model_copy(update={"layers": layers, "mtp": mtp})


def with_weight_formats(spec: ModelSpec, overrides: dict[str, str]) -> ModelSpec:
    """The same model with some weight groups stored in other formats."""
    if not overrides:
        return spec
    formats = spec.weight_formats.model_copy(update=overrides)
    return spec.model_copy(update={"weight_formats": formats})
