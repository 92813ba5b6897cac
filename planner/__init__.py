"""kvplan: KV-cache capacity planner and serving simulator for large language models.

The names below load on first use, so importing a light module of the package (for
example ``python -m planner.calibrate.measure`` on a GPU machine that has PyTorch but not
kvplan's other dependencies) does not pull in the model catalog and pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.model.catalog import catalog_names
    from planner.model.model import Model

__all__ = ["Model", "catalog_names", "load_model"]


def load_model(name: str, kv_dtype: str | None = None) -> Model:
    """A model by catalog name (or config.json path).

    ``load_model("deepseek-v4-pro").kv_bytes(1_048_576)`` gives the context-growing cache
    bytes of one 1M-token sequence. ``kv_dtype`` ('bf16' or 'fp8') re-stores the main
    attention cache in that format.
    """
    from planner.model.resolve import resolve_model

    return resolve_model(name, kv_dtype)


def __getattr__(name: str) -> Any:
    if name == "Model":
        from planner.model.model import Model

        return Model
    if name == "catalog_names":
        from planner.model.catalog import catalog_names

        return catalog_names
    raise AttributeError(f"module 'planner' has no attribute {name!r}")
