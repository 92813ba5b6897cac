"""The model catalog: one YAML file per model in this folder.

A catalog file names its attention and FFN specs once and lists the layers as runs of a
pattern (``repeat`` x ``[[attention, ffn], ...]``), so a 61-layer model stays readable.
Every value carries its source in the file's ``sources`` map, which is checked on load:
each key must name a field that exists, and every field must be covered by a source.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from planner.errors import ConfigError, UnknownNameError, one_of
from planner.limits import MAX_LAYERS, MAX_MTP_MODULES
from planner.schema import (
    AttentionSpec,
    FFNSpec,
    Frozen,
    LayerSpec,
    ModelSpec,
    MTPSpec,
    WeightFormats,
)
from planner.validation import check_sources, read_document, validate

CATALOG_DIR = Path(__file__).parent


class LayerRun(Frozen):
    repeat: int = Field(1, ge=1, le=MAX_LAYERS)
    pattern: list[tuple[str, str]] = Field(
        min_length=1, max_length=MAX_LAYERS, description="[attention, ffn] names"
    )


class MTPRun(Frozen):
    num_modules: int = Field(ge=1, le=MAX_MTP_MODULES)
    layer: tuple[str, str]


class CatalogDocument(Frozen):
    name: str
    display_name: str
    architecture: str
    hidden_size: int
    vocab_size: int
    max_context_tokens: int
    tie_word_embeddings: bool = False
    hc_mult: int = 1
    attention: dict[str, AttentionSpec]
    ffn: dict[str, FFNSpec]
    layers: list[LayerRun] = Field(min_length=1, max_length=MAX_LAYERS)
    mtp: MTPRun | None = None
    weight_formats: WeightFormats = WeightFormats()
    reference_total_params: float | None = None
    reference_active_params: float | None = None
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_resolve(self) -> CatalogDocument:
        layers = sum(run.repeat * len(run.pattern) for run in self.layers)
        if layers > MAX_LAYERS:
            raise ValueError(f"{layers:,} layers; at most {MAX_LAYERS:,}")
        pairs = [p for run in self.layers for p in run.pattern]
        if self.mtp is not None:
            pairs.append(self.mtp.layer)
        for attention, ffn in pairs:
            if attention not in self.attention:
                raise ValueError(
                    f"layer uses unknown attention spec {attention!r}; "
                    f"defined: {', '.join(self.attention)}"
                )
            if ffn not in self.ffn:
                raise ValueError(
                    f"layer uses unknown ffn spec {ffn!r}; defined: {', '.join(self.ffn)}"
                )
        return self

    def layer_specs(self) -> tuple[LayerSpec, ...]:
        return tuple(
            LayerSpec(attention=self.attention[a], ffn=self.ffn[f])
            for run in self.layers
            for _ in range(run.repeat)
            for a, f in run.pattern
        )

    def to_spec(self) -> ModelSpec:
        mtp = None
        if self.mtp is not None:
            a, f = self.mtp.layer
            mtp = MTPSpec(
                num_modules=self.mtp.num_modules,
                layer=LayerSpec(attention=self.attention[a], ffn=self.ffn[f]),
            )
        return ModelSpec(
            name=self.name,
            display_name=self.display_name,
            architecture=self.architecture,
            hidden_size=self.hidden_size,
            vocab_size=self.vocab_size,
            max_context_tokens=self.max_context_tokens,
            tie_word_embeddings=self.tie_word_embeddings,
            hc_mult=self.hc_mult,
            layers=self.layer_specs(),
            mtp=mtp,
            weight_formats=self.weight_formats,
            reference_total_params=self.reference_total_params,
            reference_active_params=self.reference_active_params,
            sources=self.sources,
            notes=tuple(self.notes),
        )


def spec_from_document(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise ConfigError("a catalog file must be a mapping", where=where)
    check_sources(raw, where)
    return validate(CatalogDocument, raw, where).to_spec()


def catalog_names() -> list[str]:
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


@cache
def load_spec(name: str) -> ModelSpec:
    """The ModelSpec of a catalog model, by name (e.g. 'deepseek-v4-pro')."""
    names = catalog_names()
    if name not in names:  # only a listed name is ever turned into a path
        raise UnknownNameError(
            "unknown model",
            field="model",
            value=name,
            expected=one_of(name, names) + " (or a path to a config.json)",
        )
    path = CATALOG_DIR / f"{name}.yaml"
    return spec_from_document(read_document(path), str(path.name))
