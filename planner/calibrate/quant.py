"""FP8 activation quantization as engines run it before an FP8 GEMM (PyTorch and Triton;
imported only when measuring).

A W8A8 linear layer in an engine takes BF16 activations and quantizes them first, one
kernel: per tensor with a static scale (vLLM's ``scaled_fp8_quant``) or per token group
of 128 with dynamic scales (vLLM's ``per_token_group_quant_fp8`` for DeepSeek-style block
FP8, SGLang's ``sglang_per_token_group_quant_fp8``). Timing the GEMM alone leaves that
kernel out. The Triton kernels here do the same work in one pass each (read BF16, write
FP8 and, for groups, one FP32 scale per group); without a GPU (tests) the same math runs
in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

FP8_MAX = 448.0  # largest finite float8_e4m3fn
GROUP = 128

try:  # Triton ships with PyTorch's CUDA wheels; absent on CPU-only installs
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def _group_quant_kernel(x_ptr, q_ptr, s_ptr, m, k, ROWS: tl.constexpr, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        # One program quantizes one 128-column group of ROWS rows: a [ROWS, 128] tile.
        r = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        group = tl.program_id(1)
        live = r < m
        offs = r[:, None].to(tl.int64) * k + group * BLOCK + tl.arange(0, BLOCK)[None, :]
        x = tl.load(x_ptr + offs, mask=live[:, None], other=0.0).to(tl.float32)
        amax = tl.maximum(tl.max(tl.abs(x), axis=1), 1e-10)
        scale = amax / 448.0
        q = tl.minimum(tl.maximum(x / scale[:, None], -448.0), 448.0)
        tl.store(q_ptr + offs, q.to(q_ptr.dtype.element_ty), mask=live[:, None])
        tl.store(s_ptr + group * m + r, scale, mask=live)  # M-major scales (cuBLASLt's)

    @triton.jit  # type: ignore[untyped-decorator]
    def _static_quant_kernel(x_ptr, q_ptr, inv_scale, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask).to(tl.float32) * inv_scale
        x = tl.minimum(tl.maximum(x, -448.0), 448.0)
        tl.store(q_ptr + offs, x.to(q_ptr.dtype.element_ty), mask=mask)

    HAVE_TRITON = True
except ImportError:  # pragma: no cover - depends on the install
    HAVE_TRITON = False

STATIC_BLOCK = 4096
# Rows per program of the group kernel. One group (128 values) per program, as vLLM's
# Triton fallback runs it, was bound by launching m x K/128 programs: 0.64 TB/s on both
# H100 and H200 (2026-11-25), a fifth of HBM; engines' CUDA kernels quantize several groups
# per thread block. A 32-row tile launches 32x fewer programs and streams at 2.7 TB/s on
# H100 and 3.7 TB/s on H200 (BF16 read + FP8 written, 16384 x 7168 and 16384 x 14336,
# triton.testing.do_bench median, 2026-11-25), 0.92x the static kernel on each.
GROUP_ROWS = 32


def _on_gpu(x: Any) -> bool:
    return bool(HAVE_TRITON and x.is_cuda)


def group_quant(x: Any) -> tuple[Any, Any]:
    """(FP8 x, scales [M, K/128] as an M-major view) for a BF16 [M, K] tensor."""
    m, k = x.shape
    groups = k // GROUP
    q = torch.empty((m, k), device=x.device, dtype=torch.float8_e4m3fn)
    scales = torch.empty((groups, m), device=x.device, dtype=torch.float32)
    if _on_gpu(x):
        grid = (-(-m // GROUP_ROWS), groups)
        _group_quant_kernel[grid](x, q, scales, m, k, ROWS=GROUP_ROWS, BLOCK=GROUP)
    else:
        g = x.float().reshape(m, groups, GROUP)
        s = g.abs().amax(dim=-1).clamp_min(1e-10) / FP8_MAX
        q.copy_((g / s[..., None]).reshape(m, k).to(torch.float8_e4m3fn))
        scales.copy_(s.t())
    return q, scales.t()


def static_quant(x: Any, inv_scale: float) -> Any:
    """FP8 x = clamp(x x inv_scale) for a BF16 tensor (a static per-tensor scale)."""
    q = torch.empty(x.shape, device=x.device, dtype=torch.float8_e4m3fn)
    n = x.numel()
    if _on_gpu(x):
        _static_quant_kernel[(-(-n // STATIC_BLOCK),)](x, q, inv_scale, n, BLOCK=STATIC_BLOCK)
    else:
        q.copy_((x.float() * inv_scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn))
    return q


def quant_label(block: bool) -> str:
    kind = "per token group of 128, dynamic" if block else "per tensor, static scale"
    return f"{'Triton' if HAVE_TRITON else 'PyTorch'} activation quantization ({kind})"


QuantCall = Callable[[], Any]
