"""Storage formats: how many bytes a tensor of a given shape occupies.

A format stores each element in ``bits`` bits and, for block-scaled formats, one scale of
``scale_bytes`` per block of ``scale_block_rows`` x ``scale_block_cols`` elements. A KV
vector of n elements is a 1 x n tensor. ``math_dtype`` is the dtype the tensor cores run
when this format is used: FP4 and FP8 weights run at FP8/FP4 speed only where the GPU
supports that dtype natively (see ``planner.hardware``).

Sources of the presets:
- fp8_b128 (FP8 E4M3, one FP32 scale per 128 elements): vLLM's FlashMLA FP8 KV layout
  (512 FP8 + 4 FP32 scales) and the DeepSeek-V3.2 indexer key cache (128 FP8 + 1 FP32
  scale; deepseek-ai/DeepSeek-V3.2-Exp inference/model.py k_cache + k_scale_cache).
- fp8_w128 (FP8 E4M3 weights, FP32 scale per 128x128 block): DeepSeek-V3 config.json
  quantization_config weight_block_size [128, 128].
- fp8_w128_ue8m0 (same blocks, 1-byte UE8M0 power-of-two scales): DeepSeek-V4 technical
  report, "FP8 E4M3 with UE8M0 block scales, 128x128 blocks".
- mxfp4 (E2M1 with one E8M0 scale per 32 elements): OCP Microscaling spec v1.0; V4 routed
  experts ("MXFP4 E2M1, 32-element groups, E8M0 scales").
- nvfp4 (E2M1 with one FP8 E4M3 scale per 16 elements): NVIDIA Blackwell NVFP4 format.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import KvplanError

MathDType = Literal["fp32", "bf16", "fp16", "fp8", "fp4", "int8"]


class StorageFormat(BaseModel):
    """Bytes per element plus optional block scales."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    bits: int = Field(gt=0, le=32, description="bits per stored element")
    scale_bytes: int = Field(0, ge=0, description="bytes of one scale factor (0: no scales)")
    scale_block_rows: int = Field(1, ge=1, description="rows covered by one scale")
    scale_block_cols: int = Field(1, ge=1, description="columns covered by one scale")
    math_dtype: MathDType

    def tensor_bytes(self, rows: int, cols: int) -> float:
        """Bytes of a rows x cols tensor, scales included (blocks rounded up per axis)."""
        payload = rows * cols * self.bits / 8
        if self.scale_bytes == 0:
            return payload
        blocks = math.ceil(rows / self.scale_block_rows) * math.ceil(cols / self.scale_block_cols)
        return payload + blocks * self.scale_bytes

    def vector_bytes(self, elements: int) -> float:
        """Bytes of one stored vector (a KV entry of ``elements`` values)."""
        return self.tensor_bytes(1, elements)


FP32_SCALE_BYTES = 4
E8M0_SCALE_BYTES = 1
E4M3_SCALE_BYTES = 1

STORAGE_FORMATS: dict[str, StorageFormat] = {
    f.name: f
    for f in (
        StorageFormat(name="fp32", bits=32, math_dtype="fp32"),
        StorageFormat(name="bf16", bits=16, math_dtype="bf16"),
        StorageFormat(name="fp16", bits=16, math_dtype="fp16"),
        # FP8 with a per-tensor scale: the scale is negligible and not counted.
        StorageFormat(name="fp8", bits=8, math_dtype="fp8"),
        StorageFormat(
            name="fp8_b128",
            bits=8,
            scale_bytes=FP32_SCALE_BYTES,
            scale_block_cols=128,
            math_dtype="fp8",
        ),
        StorageFormat(
            name="fp8_b64_ue8m0",
            bits=8,
            scale_bytes=E8M0_SCALE_BYTES,
            scale_block_cols=64,
            math_dtype="fp8",
        ),
        StorageFormat(
            name="fp8_w128",
            bits=8,
            scale_bytes=FP32_SCALE_BYTES,
            scale_block_rows=128,
            scale_block_cols=128,
            math_dtype="fp8",
        ),
        StorageFormat(
            name="fp8_w128_ue8m0",
            bits=8,
            scale_bytes=E8M0_SCALE_BYTES,
            scale_block_rows=128,
            scale_block_cols=128,
            math_dtype="fp8",
        ),
        StorageFormat(
            name="mxfp4",
            bits=4,
            scale_bytes=E8M0_SCALE_BYTES,
            scale_block_cols=32,
            math_dtype="fp4",
        ),
        StorageFormat(
            name="nvfp4",
            bits=4,
            scale_bytes=E4M3_SCALE_BYTES,
            scale_block_cols=16,
            math_dtype="fp4",
        ),
        StorageFormat(name="int8", bits=8, math_dtype="int8"),
    )
}


def storage_format(name: str | StorageFormat, *, field: str = "dtype") -> StorageFormat:
    """Look up a preset by name (a StorageFormat passes through)."""
    if isinstance(name, StorageFormat):
        return name
    try:
        return STORAGE_FORMATS[name]
    except KeyError:
        raise KvplanError(
            "unknown storage format",
            field=field,
            value=name,
            expected="one of " + ", ".join(sorted(STORAGE_FORMATS)),
        ) from None
