"""Resolve what a user typed as a model: a catalog name or a path to a config.json."""

from __future__ import annotations

from pathlib import Path

from planner.model.catalog import load_spec
from planner.model.hf_import import spec_from_hf_file
from planner.model.model import Model
from planner.model.transform import with_model_kv_dtype
from planner.schema import ModelSpec


def resolve_spec(name_or_path: str) -> ModelSpec:
    """A catalog model name, or a path ending in .json to a Hugging Face config."""
    if name_or_path.endswith(".json") or Path(name_or_path).is_file():
        return spec_from_hf_file(name_or_path)
    return load_spec(name_or_path)


def resolve_model(name_or_path: str, kv_dtype: str | None = None) -> Model:
    spec = resolve_spec(name_or_path)
    if kv_dtype is not None:
        spec = with_model_kv_dtype(spec, kv_dtype)
    return Model(spec)
