"""The raw-measurement document ``planner.calibrate.measure`` writes, validated on load.

One record per measured shape: the operator and its shape, the kernel that ran, the
median time per call with its 10th/90th percentiles, how it was timed. Every number is
bounded, so a hand-edited or foreign file fails with one line naming the record and
field instead of reaching the fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import ConfigError
from planner.io import read_document
from planner.validation import validate

RAW_FORMAT = "kvplan-calibrate-raw"  # planner.calibrate.measure.RAW_FORMAT (that module
RAW_FORMAT_VERSION = 1  # needs torch; these constants must stay equal: tests check it)

Size = Annotated[int, Field(ge=1, le=2**31)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kernel: str = Field(max_length=200)
    median_s: Seconds
    p10_s: Seconds
    p90_s: Seconds
    samples: int = Field(ge=1, le=100_000)
    timing: str = Field(max_length=100)
    calls_per_replay: int | None = Field(None, ge=1, le=1_000_000)
    input_sets: int | None = Field(None, ge=1, le=10_000)
    l2_resident: bool | None = None


class GemmRecord(_Record):
    op: Literal["gemm"]
    dtype: Literal["bf16", "fp8", "fp8_block"]
    m: Size
    n: Size
    k: Size
    m_run: Size | None = None
    activation_quant: str | None = Field(None, max_length=200)


class GroupedRecord(_Record):
    op: Literal["grouped_gemm"]
    dtype: Literal["bf16", "fp8", "fp8_block"]
    local_experts: Size
    active_experts: Size
    tokens_per_expert: Size
    assignments: Size
    hidden: Size
    inter: Size
    group_align: Size = 1
    routing: bool = False


class AttentionRecord(_Record):
    op: Literal["attention"]
    kind: Literal["gqa_decode", "gqa_prefill", "mla_decode", "mla_prefill"]
    batch: Size
    q_tokens: Size
    context: Size
    heads: Size
    kv_heads: Size
    head_dim: Size
    v_head_dim: Size
    causal: bool
    shared_kv: bool = False
    v_padded_to: Size | None = None
    mask: Literal["causal_bias", "tensor"] | None = None


class ElementwiseRecord(_Record):
    op: Literal["elementwise"]
    name: Literal["copy", "add", "silu", "rms_norm", "layer_norm"]
    tokens: Size
    hidden: Size
    bytes: Annotated[int, Field(ge=1, le=2**40)]


class CollectiveRecord(_Record):
    op: Literal["collective"]
    name: Literal["all_reduce", "all_to_all"]
    gpus: Size
    message_bytes: Annotated[int, Field(ge=1, le=2**40)]
    dtype: str = Field(max_length=20)
    backend: str = Field(max_length=20)


Record = Annotated[
    GemmRecord | GroupedRecord | AttentionRecord | ElementwiseRecord | CollectiveRecord,
    Field(discriminator="op"),
]


class Collectives(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    measured: bool
    reason: str | None = Field(None, max_length=500)
    gpus: int | None = Field(None, ge=0, le=1_000_000)


class RawDocument(BaseModel):
    """What one run of the microbenchmarks wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["kvplan-calibrate-raw"]
    format_version: Literal[1]
    environment: dict[str, Any]
    settings: dict[str, Any]
    collectives: Collectives
    measurements: list[Record] = Field(max_length=100_000)
    skipped: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
    elapsed_s: float = Field(ge=0, le=1e6)
    partial: bool = False

    @property
    def device_name(self) -> str:
        return str(self.environment.get("device_name", "unknown device"))


def raw_from_data(data: Any, where: str) -> RawDocument:
    if not isinstance(data, dict) or data.get("format") != RAW_FORMAT:
        raise ConfigError(
            "not a kvplan calibrate raw-measurement file",
            where=where,
            field="format",
            value=data.get("format") if isinstance(data, dict) else None,
            expected=f"'{RAW_FORMAT}' (written by python -m planner.calibrate.measure)",
        )
    return validate(RawDocument, data, where)


def load_raw(path: str | Path) -> RawDocument:
    """A raw-measurement file (JSON), size- and value-checked."""
    return raw_from_data(read_document(path), str(path))
