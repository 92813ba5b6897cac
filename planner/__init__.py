"""kvplan: KV-cache capacity planner and serving simulator for large language models."""

from __future__ import annotations

from planner.model.catalog import catalog_names, load_spec
from planner.model.model import Model

__all__ = ["Model", "catalog_names", "load_model"]


def load_model(name: str, kv_dtype: str | None = None) -> Model:
    """A catalog model by name, e.g. ``load_model("deepseek-v4-pro").kv_bytes(1_048_576)``.

    ``kv_dtype`` ('bf16' or 'fp8') re-stores the main attention cache in that format.
    """
    spec = load_spec(name)
    if kv_dtype is not None:
        from planner.model.transform import with_model_kv_dtype

        spec = with_model_kv_dtype(spec, kv_dtype)
    return Model(spec)
