"""kvplan: KV-cache capacity planner and serving simulator for large language models."""

from __future__ import annotations

from planner.model.catalog import catalog_names
from planner.model.model import Model
from planner.model.resolve import resolve_model

__all__ = ["Model", "catalog_names", "load_model"]


def load_model(name: str, kv_dtype: str | None = None) -> Model:
    """A model by catalog name (or config.json path).

    ``load_model("deepseek-v4-pro").kv_bytes(1_048_576)`` gives the context-growing cache
    bytes of one 1M-token sequence. ``kv_dtype`` ('bf16' or 'fp8') re-stores the main
    attention cache in that format.
    """
    return resolve_model(name, kv_dtype)
