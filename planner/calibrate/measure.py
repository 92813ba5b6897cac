"""Microbenchmarks of every operator class kvplan's efficiency model has, on the local GPU.

    python -m planner.calibrate.measure --out raw.json [--quick] [--time-budget-s S]

Needs PyTorch with CUDA and nothing else of kvplan (``kvplan calibrate`` runs the same
code and then fits the curves). Operators, in the order they are measured:

- ``gemm``: dense GEMMs ``F.linear(x[M,K], W[N,K])`` over a grid of tokens M and layer
  shapes (N, K) of real models; BF16 (cuBLAS), FP8 with per-tensor scales
  (``torch._scaled_mm``) and FP8 with DeepSeek's block scales (1x128 activations,
  128x128 weights) where this PyTorch has a kernel for them;
- ``elementwise``: memory-bound kernels (copy, add, SiLU, LayerNorm) over sizes from a
  few KB to ~1 GB; the largest copy is the device copy bandwidth;
- ``attention``: PyTorch's scaled_dot_product_attention under each backend that accepts
  the shape (cuDNN, FlashAttention, memory-efficient; FlashInfer / FlashMLA are recorded
  in the environment when installed but not yet timed): GQA decode (one query per
  sequence over contiguous K/V), GQA prefill (causal, whole prompt or a chunk at a longer
  context), MLA prefill in the naive form (192-dim queries/keys, 128-dim values) and MLA
  decode in the absorbed form (576-dim latent+RoPE keys shared by all heads);
- ``grouped_gemm``: one MoE expert FFN on one expert-parallel rank (gate_up grouped GEMM,
  SiLU x mul, down grouped GEMM) over tokens per expert, with ``torch._grouped_mm`` where
  this PyTorch has it, else a loop of per-expert GEMMs (``kernel`` says which);
- ``collective``: NCCL all-reduce and all-to-all when several GPUs are visible
  (``planner.calibrate.collectives``).
Each measurement records its shape, kernel, timing method and spread; what could not be
measured is listed under ``skipped`` with the reason. Timing method: ``timing``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from planner.calibrate import environment
from planner.calibrate.timing import input_set_count, synchronize, time_calls

RAW_FORMAT = "kvplan-calibrate-raw"
RAW_FORMAT_VERSION = 1
SEED = 20261201

# --------------------------------------------------------------------------- grids
# (N, K) of weight matrices real models run (per GPU after tensor parallelism): Llama-3.1
# 70B/8B qkv, o, gate_up, down at TP8/TP1; DeepSeek-V3 fused q_a + kv_a, q_b, shared down.
GEMM_SHAPES: tuple[tuple[int, int], ...] = (
    (1536, 8192),
    (8192, 1024),
    (7168, 8192),
    (8192, 3584),
    (2112, 7168),
    (7168, 2048),
    (4096, 4096),
    (28672, 4096),
    (4096, 14336),
    (3072, 1536),
    (4096, 512),
    (24576, 1536),
)
GEMM_TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
QUICK_GEMM_SHAPES = GEMM_SHAPES[:5]
QUICK_GEMM_TOKENS = (1, 8, 64, 256, 1024, 4096, 16384)
GEMM_DTYPES = ("bf16", "fp8", "fp8_block")
FP8_BLOCK = 128  # DeepSeek-V3 block scales: 1x128 activations, 128x128 weights

# MoE layers on one expert-parallel rank: (local experts, hidden, expert intermediate).
# DeepSeek-V3 on EP8 (256 / 8), Qwen3-235B-A22B on EP8 (128 / 8), Qwen3-30B-A3B on EP1.
MOE_SHAPES: tuple[tuple[int, int, int], ...] = (
    (32, 7168, 2048),
    (16, 4096, 1536),
    (128, 2048, 768),
)
MOE_TOKENS_PER_EXPERT = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_MOE_TOKENS_PER_EXPERT = (1, 4, 16, 64, 256, 1024)
# Fewer active experts than the rank holds (a few tokens routed to a few experts).
MOE_PARTIAL = ((1, 1), (1, 16), (4, 1), (4, 16), (8, 8), (16, 64))

# GQA (query heads, KV heads, head dim): Llama-3.1-70B on TP8, Llama-3.1-8B, 70B on TP1.
GQA_HEADS: tuple[tuple[int, int, int], ...] = ((8, 1, 128), (32, 8, 128), (64, 8, 128))
DECODE_BATCH = (1, 4, 16, 64, 256)
DECODE_CONTEXT = (1024, 4096, 16384, 65536)
QUICK_DECODE_BATCH = (1, 16, 128)
QUICK_DECODE_CONTEXT = (2048, 16384)
PREFILL_TOKENS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
QUICK_PREFILL_TOKENS = (1024, 8192)
# Chunked prefill: (chunk tokens, context at the chunk's end).
PREFILL_CHUNKS = ((512, 4096), (2048, 8192), (4096, 16384), (2048, 32768), (8192, 32768))
# Several prompts in one call: (prompts, tokens each).
PREFILL_BATCHED = ((4, 1024), (4, 4096), (16, 512))
# MLA (DeepSeek-V3): heads per GPU at TP1 and TP8; naive prefill dims; absorbed decode dims.
MLA_HEADS = (128, 16)
MLA_QK_DIM, MLA_V_DIM = 192, 128
MLA_LATENT_DIM, MLA_ROPE_DIM = 512, 64
MLA_DECODE_BATCH = (1, 16, 64, 256)
MLA_DECODE_CONTEXT = (1024, 4096, 16384)

ELEMENTWISE_OPS = ("copy", "add", "silu", "rms_norm", "layer_norm")
ELEMENTWISE_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
QUICK_ELEMENTWISE_TOKENS = (1, 64, 1024, 16384, 65536)
ELEMENTWISE_HIDDEN = 7168

# Share of the time budget per family (unused time carries over to the next family).
FAMILY_SHARES = {
    "gemm.bf16": 0.18,
    "elementwise": 0.05,
    "attention.gqa_decode": 0.09,
    "attention.gqa_prefill": 0.09,
    "grouped_gemm.bf16": 0.14,
    "gemm.fp8": 0.12,
    "attention.mla_prefill": 0.06,
    "attention.mla_decode": 0.06,
    "gemm.fp8_block": 0.11,
    "collective": 0.10,
}
DEFAULT_TIME_BUDGET_S = 540.0
QUICK_TIME_BUDGET_S = 150.0
TARGET_REPLAY_S = 2e-3
REPEATS = 7
QUICK_REPEATS = 5
# Inputs of one measurement stay under this share of device memory (input sets included).
MEMORY_SHARE = 0.25
MAX_INPUT_BYTES = 12 * 2**30
KV_CAP_BYTES = 8 * 2**30  # largest K+V of one decode measurement


PROBE_ERRORS: dict[str, str] = {}  # why each probed kernel variant was refused (raw file)


@dataclass
class Point:
    """One measurement to take: its record and a builder of one call per input set."""

    family: str
    record: dict[str, Any]
    set_bytes: float
    build: Callable[[int], Sequence[Callable[[], Any]]]
    min_sets: int = 2


@dataclass
class Settings:
    quick: bool
    time_budget_s: float
    repeats: int
    target_replay_s: float = TARGET_REPLAY_S
    families: tuple[str, ...] = tuple(FAMILY_SHARES)


@dataclass
class Results:
    measurements: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _random(shape: Sequence[int], dtype: Any, gen: torch.Generator, scale: float = 1.0) -> Any:
    """Random normal data (never zeros), made in FP32 then converted."""
    x = torch.randn(*shape, generator=gen, device=_device(), dtype=torch.float32) * scale
    return x.to(dtype)


def _generator() -> torch.Generator:
    gen = torch.Generator(device=_device())
    gen.manual_seed(SEED)
    return gen


# --------------------------------------------------------------------------- GEMM
def _fp8_dtype() -> Any:
    return getattr(torch, "float8_e4m3fn", None)


def _gemm_call(
    dtype: str, m: int, n: int, k: int, gen: torch.Generator, quant: bool = False
) -> Callable[[], Any]:
    """One input set of a GEMM and the call that runs it (weights [N, K] as nn.Linear).
    With ``quant`` an FP8 call takes BF16 activations and quantizes them first, as an
    engine's W8A8 linear layer does (``planner.calibrate.quant``)."""
    if dtype == "bf16":
        x = _random((m, k), torch.bfloat16, gen)
        w = _random((n, k), torch.bfloat16, gen, 0.02)
        return lambda: F.linear(x, w)
    fp8 = _fp8_dtype()
    if fp8 is None:
        raise RuntimeError("this PyTorch has no float8_e4m3fn")
    m = fp8_rows(dtype, m)
    wq = _random((n, k), fp8, gen, 0.5)
    dev = _device()
    if quant:
        from planner.calibrate.quant import group_quant, static_quant

        xb = _random((m, k), torch.bfloat16, gen)
    else:
        xq = _random((m, k), fp8, gen, 0.5)
    if dtype == "fp8":
        one = torch.ones((), device=dev, dtype=torch.float32)
        if quant:
            return lambda: torch._scaled_mm(
                static_quant(xb, 1.0), wq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16
            )
        return lambda: torch._scaled_mm(
            xq, wq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16
        )
    variant = fp8_block_variant()
    if variant is None:
        raise RuntimeError("no FP8 block-scaled GEMM kernel in this PyTorch on this device")
    scale_a, scale_b, _ = variant.scales(m, n, k, dev)
    if quant:

        def quantized() -> Any:
            q, s = group_quant(xb)
            return variant.mm(q, wq, s if variant.m_major else s.contiguous(), scale_b)

        return quantized
    return variant(xq, wq, scale_a, scale_b)


@dataclass(frozen=True)
class BlockVariant:
    """A way this PyTorch runs DeepSeek-style block-scaled FP8 GEMMs (1x128 activation
    blocks, 128x128 weight blocks).

    ``public``: ``F.scaled_mm`` with ScalingType.BlockWise1x128 / BlockWise128x128, whose
    checks (torch/_meta_registrations.py, ``_check_scaled_mm_sizes_v2``) want scale_a
    [M, K/128] with strides [1, M] and scale_b [round_up(K/128, 4), N/128] with strides
    [1, that]; else ``torch._scaled_mm``, whose checks want scale_a [M, K/128] and
    scale_b [K/128, N/128] (``_check_scaled_mm_sizes``), in the layout ``m_major``."""

    label: str
    public: bool
    m_major: bool

    def scales(self, m: int, n: int, k: int, dev: Any) -> tuple[Any, Any, Any]:
        """(scale_a, scale_b, the weight scales as a [K/128, N/128] view for checking)."""
        kb, nb = -(-k // FP8_BLOCK), -(-n // FP8_BLOCK)
        if self.m_major:
            scale_a = torch.rand(kb, m, device=dev).add_(0.5).t()
        else:
            scale_a = torch.rand(m, kb, device=dev).add_(0.5)
        if self.public:
            rows = -(-kb // 4) * 4
            scale_b = torch.rand(nb, rows, device=dev).add_(0.5).t()
            return scale_a, scale_b, scale_b[:kb]
        scale_b = torch.rand(kb, nb, device=dev).add_(0.5)
        if self.m_major:
            scale_b = scale_b.t().contiguous().t()
        return scale_a, scale_b, scale_b

    def mm(self, xq: Any, wq: Any, scale_a: Any, scale_b: Any) -> Any:
        if self.public:
            scaling = F.ScalingType
            return F.scaled_mm(
                xq,
                wq.t(),
                scale_a,
                scaling.BlockWise1x128,
                scale_b,
                scaling.BlockWise128x128,
                output_dtype=torch.bfloat16,
            )
        return torch._scaled_mm(
            xq, wq.t(), scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16
        )

    def __call__(self, xq: Any, wq: Any, scale_a: Any, scale_b: Any) -> Callable[[], Any]:
        return lambda: self.mm(xq, wq, scale_a, scale_b)


_BLOCK: list[BlockVariant | None] = []


def fp8_block_variant() -> BlockVariant | None:
    """Probe once, on a small case checked against a dequantised reference, which call
    runs block-scaled FP8 here; None when none does (``PROBE_ERRORS`` says why)."""
    if _BLOCK:
        return _BLOCK[0]
    found = None
    fp8 = _fp8_dtype()
    if fp8 is not None:
        dev = _device()
        m, n, k = 64, 256, 512
        x = (torch.randn(m, k, device=dev) * 0.5).to(fp8)
        w = (torch.randn(n, k, device=dev) * 0.5).to(fp8)
        candidates = [
            BlockVariant(f"{name}, {layout} activation scales", public, m_major)
            for public, name in ((True, "torch F.scaled_mm"), (False, "torch._scaled_mm"))
            for m_major, layout in ((True, "M-major"), (False, "row-major"))
            if not public or hasattr(F, "ScalingType")
        ]
        for candidate in candidates:
            try:
                sa, sb, sb_kn = candidate.scales(m, n, k, dev)
                out = candidate(x, w, sa, sb)().float()
                synchronize()
                xs = x.float() * sa.repeat_interleave(FP8_BLOCK, dim=1)[:, :k]
                w_scale = sb_kn.t().repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)
                ref = xs @ (w.float() * w_scale[:n, :k]).t()
                err = float((out - ref).norm() / ref.norm())
                if err < 0.02:
                    found = candidate
                    break
                PROBE_ERRORS[f"fp8_block {candidate.label}"] = f"relative error {err:.3g}"
            except Exception as exc:
                PROBE_ERRORS[f"fp8_block {candidate.label}"] = _first_line(exc)
    _BLOCK.append(found)
    return found


_FP8_ALIGN: dict[str, int] = {}


def fp8_rows(dtype: str, m: int) -> int:
    """Rows an FP8 GEMM of m tokens runs with: m where the kernel takes any row count,
    else m padded to 16 (probed once per dtype with a single row)."""
    if dtype not in _FP8_ALIGN:
        _FP8_ALIGN[dtype] = 1  # the probe below runs fp8_rows again: let it pass through
        try:
            _gemm_call(dtype, 1, 256, 256, _generator())()
            synchronize()
        except Exception:
            _FP8_ALIGN[dtype] = 16
    align = _FP8_ALIGN[dtype]
    return -(-m // align) * align


def quant_works(block: bool) -> str | None:
    """Probe once whether the activation-quantization kernel runs and matches its PyTorch
    reference here; the reason it does not, else None."""
    key = "quant block" if block else "quant static"
    if key in _QUANT:
        return _QUANT[key]
    from planner.calibrate import quant

    problem = None
    try:
        x = torch.randn(64, 512, device=_device()).to(torch.bfloat16)
        if block:
            q, s = quant.group_quant(x)
            back = q.float() * s.repeat_interleave(quant.GROUP, dim=1)
        else:
            back = quant.static_quant(x, 1.0).float()
        synchronize()
        err = float((back - x.float()).norm() / x.float().norm())
        if err > 0.1:
            problem = f"activation quantization relative error {err:.3g}"
    except Exception as exc:
        problem = _first_line(exc)
    _QUANT[key] = problem
    if problem:
        PROBE_ERRORS[key] = problem
    return problem


_QUANT: dict[str, str | None] = {}


def gemm_points(dtype: str, quick: bool) -> list[Point]:
    """GEMMs of one class over the grid; FP8 classes twice: the GEMM alone (FP8 inputs)
    and the linear layer as engines run it (BF16 activations quantized first)."""
    shapes = QUICK_GEMM_SHAPES if quick else GEMM_SHAPES
    tokens = QUICK_GEMM_TOKENS if quick else GEMM_TOKENS
    kernel = {
        "bf16": "torch F.linear (cuBLAS)",
        "fp8": "torch._scaled_mm, per-tensor scales (cuBLASLt)",
        "fp8_block": "FP8 1x128 / 128x128 block scales: "
        + (v.label if (v := fp8_block_variant()) else "no kernel found"),
    }[dtype]
    variants = [False]
    if dtype != "bf16" and quant_works(dtype == "fp8_block") is None:
        variants.append(True)
    points = []
    for quant, (n, k), m in itertools.product(variants, shapes, tokens):
        record: dict[str, Any] = {"op": "gemm", "dtype": dtype, "m": m, "n": n, "k": k}
        record["kernel"] = kernel
        if quant:
            from planner.calibrate.quant import quant_label

            record["activation_quant"] = quant_label(dtype == "fp8_block")
            record["kernel"] = f"{record['activation_quant']} + {kernel}"
        if dtype != "bf16" and fp8_rows(dtype, m) != m:
            record["m_run"] = fp8_rows(dtype, m)
        width = 2 if dtype == "bf16" or quant else 1
        set_bytes = m * k * width + n * k * (2 if dtype == "bf16" else 1) + m * n * 2

        def build(
            sets: int, m: int = m, n: int = n, k: int = k, quant: bool = quant
        ) -> list[Callable[[], Any]]:
            gen = _generator()
            return [_gemm_call(dtype, m, n, k, gen, quant) for _ in range(sets)]

        points.append(Point(f"gemm.{dtype}", record, set_bytes, build))
    return points


# --------------------------------------------------------------------------- MoE
@dataclass(frozen=True)
class GroupedVariant:
    """How this PyTorch's grouped GEMM must be called (found by ``grouped_variant``)."""

    fn: Callable[..., Any] | None
    kernel: str
    extra_rows: int = 0  # rows beyond the last group the kernel needs in its input
    group_align: int = 1  # tokens per group must be a multiple of this (padded otherwise)


def _grouped_fn() -> tuple[Callable[..., Any] | None, str]:
    fn = getattr(F, "grouped_mm", None)
    if fn is not None:
        return fn, "torch F.grouped_mm"
    fn = getattr(torch, "_grouped_mm", None)
    if fn is not None:
        return fn, "torch._grouped_mm"
    return None, "loop of per-expert F.linear"


_VARIANT: list[GroupedVariant] = []


def grouped_variant() -> GroupedVariant:
    """PyTorch's grouped GEMM if it has one (public ``F.grouped_mm`` or the private op),
    probed once on a small case: as is, with spare input rows, with groups padded to 16
    tokens; else a loop of per-expert GEMMs."""
    if _VARIANT:
        return _VARIANT[0]
    fn, label = _grouped_fn()
    found = GroupedVariant(None, "loop of per-expert F.linear")
    if fn is not None:
        dev = _device()
        w = torch.randn(2, 32, 64, device=dev, dtype=torch.bfloat16).transpose(-2, -1)
        for extra, align in ((0, 1), (16, 1), (0, 16), (16, 16)):
            sizes = [max(1, align), 3 * align]
            rows = sum(sizes) + extra
            x = torch.randn(rows, 64, device=dev, dtype=torch.bfloat16)
            ends = torch.tensor([sizes[0], sum(sizes)], device=dev, dtype=torch.int32)
            try:
                out = fn(x, w, offs=ends, out_dtype=torch.bfloat16)
                synchronize()
                ref = torch.cat([x[: sizes[0]] @ w[0], x[sizes[0] : sum(sizes)] @ w[1]])
                if torch.allclose(out[: sum(sizes)].float(), ref.float(), rtol=0.05, atol=0.05):
                    found = GroupedVariant(fn, label, extra, align)
                    break
                PROBE_ERRORS[f"grouped extra={extra} align={align}"] = "wrong result"
            except Exception as exc:
                PROBE_ERRORS[f"grouped extra={extra} align={align}"] = _first_line(exc)
    _VARIANT.append(found)
    return found


def _moe_call(
    experts: int,
    active: int,
    per_expert: int,
    hidden: int,
    inter: int,
    gen: torch.Generator,
    routing: bool = False,
) -> Callable[[], Any]:
    """One input set of a MoE expert FFN on one rank: tokens sorted by expert (``active``
    experts with ``per_expert`` tokens each), gate_up [E, 2I, H] and down [E, H, I]. With
    ``routing`` the call also moves every token-expert pair's vector in (a gather by a
    random permutation) and out (a weighted index_add): an engine's permute and combine."""
    variant = grouped_variant()
    grouped = variant.fn
    # Group sizes: the active experts spread over the rank's experts, the rest empty; a
    # kernel that needs aligned groups gets them padded (as engines pad to their tiles).
    rows_per_expert = -(-per_expert // variant.group_align) * variant.group_align
    counts = [0] * experts
    stride = experts // active
    for i in range(active):
        counts[i * stride] = rows_per_expert
    tokens = active * rows_per_expert
    x = _random((tokens + variant.extra_rows, hidden), torch.bfloat16, gen)
    w13 = _random((experts, 2 * inter, hidden), torch.bfloat16, gen, 0.02)
    w2 = _random((experts, hidden, inter), torch.bfloat16, gen, 0.02)
    ends = torch.tensor(
        [sum(counts[: i + 1]) for i in range(experts)], device=_device(), dtype=torch.int32
    )

    def silu_mul(h: Any) -> Any:
        return F.silu(h[:, :inter]) * h[:, inter:]

    core = _moe_core(grouped, variant, x, w13, w2, ends, counts, tokens, silu_mul)
    if not routing:
        return core
    perm = torch.randperm(tokens, device=_device(), generator=gen)
    gate = _random((tokens, 1), torch.bfloat16, gen)
    source = _random((tokens + variant.extra_rows, hidden), torch.bfloat16, gen)

    def routed() -> Any:
        x[:tokens] = source.index_select(0, perm)
        y = core()[:tokens] * gate
        return torch.zeros_like(y).index_add_(0, perm, y)

    return routed


def _moe_core(
    grouped: Callable[..., Any] | None,
    variant: GroupedVariant,
    x: Any,
    w13: Any,
    w2: Any,
    ends: Any,
    counts: list[int],
    tokens: int,
    silu_mul: Callable[[Any], Any],
) -> Callable[[], Any]:
    if grouped is not None:
        w13_t, w2_t = w13.transpose(-2, -1), w2.transpose(-2, -1)

        def run() -> Any:
            h = grouped(x, w13_t, offs=ends, out_dtype=torch.bfloat16)
            a = silu_mul(h)
            if variant.extra_rows:
                a = F.pad(a[:tokens], (0, 0, 0, variant.extra_rows))
            return grouped(a, w2_t, offs=ends, out_dtype=torch.bfloat16)

        return run
    spans = []
    start = 0
    for e, c in enumerate(counts):
        if c:
            spans.append((e, start, start + c))
        start += c

    def loop() -> Any:
        outs = [F.linear(silu_mul(F.linear(x[a:b], w13[e])), w2[e]) for e, a, b in spans]
        return torch.cat(outs)

    return loop


def moe_points(quick: bool) -> list[Point]:
    variant = grouped_variant()
    kernel = variant.kernel
    per_expert_grid = QUICK_MOE_TOKENS_PER_EXPERT if quick else MOE_TOKENS_PER_EXPERT
    cases: list[tuple[int, int, int, int, int]] = []
    for experts, hidden, inter in MOE_SHAPES[:2] if quick else MOE_SHAPES:
        cases += [(experts, hidden, inter, experts, t) for t in per_expert_grid]
    experts, hidden, inter = MOE_SHAPES[0]
    cases += [(experts, hidden, inter, a, t) for a, t in MOE_PARTIAL]
    points = []
    for (experts, hidden, inter, active, per_expert), routing in [
        (case, routing) for case in cases for routing in (False, True)
    ]:
        record: dict[str, Any] = {
            "op": "grouped_gemm",
            "dtype": "bf16",
            "local_experts": experts,
            "active_experts": active,
            "tokens_per_expert": per_expert,
            "assignments": active * per_expert,
            "hidden": hidden,
            "inter": inter,
            "kernel": kernel
            + " x2 + SiLU x mul"
            + (" + permute (index_select) and combine (index_add)" if routing else ""),
            "group_align": variant.group_align,
            "routing": routing,
        }
        weights = experts * 3 * inter * hidden * 2
        acts = active * per_expert * (2 * hidden + 4 * inter) * 2
        set_bytes = weights + acts

        def build(
            sets: int,
            e: int = experts,
            a: int = active,
            t: int = per_expert,
            h: int = hidden,
            i: int = inter,
        ) -> list[Callable[[], Any]]:
            gen = _generator()
            return [_moe_call(e, a, t, h, i, gen) for _ in range(sets)]

        points.append(Point("grouped_gemm.bf16", record, set_bytes, build))
    return points


# --------------------------------------------------------------------------- attention
def sdpa_backends() -> list[tuple[str, Any]]:
    """SDPA backends to try, by name (cuDNN first: the fastest on Hopper where it runs)."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:
        return [("default", None)]
    names: tuple[str, ...] = ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION")
    if not torch.cuda.is_available():
        names = ("MATH",)
    return [(n.lower(), getattr(SDPBackend, n)) for n in names if hasattr(SDPBackend, n)]


def _sdpa(backend: Any, q: Any, k: Any, v: Any, **kwargs: Any) -> Any:
    if backend is None:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q, k, v, **kwargs)


def _attention_call(backend: Any, shape: dict[str, Any], gen: torch.Generator) -> Callable[[], Any]:
    """One input set of an attention kernel: B sequences, q query tokens each, at context
    L; heads Hq over Hkv KV heads; qk dim D, value dim Dv (v is a view of k when
    ``shared_kv``: MLA's absorbed form reads one latent per token)."""
    b, q_len, ctx = shape["batch"], shape["q_tokens"], shape["context"]
    hq, hkv, d, dv = shape["heads"], shape["kv_heads"], shape["head_dim"], shape["v_head_dim"]
    q = _random((b, hq, q_len, d), torch.bfloat16, gen)
    k = _random((b, hkv, ctx, d), torch.bfloat16, gen)
    dv_run = shape.get("v_padded_to") or dv
    if shape.get("shared_kv"):
        v = k[..., :dv]
    else:
        v = _random((b, hkv, ctx, dv_run), torch.bfloat16, gen)
    kwargs: dict[str, Any] = {}
    if hq != hkv:
        kwargs["enable_gqa"] = True
    if shape.get("causal"):
        if q_len == ctx:
            kwargs["is_causal"] = True
        elif shape.get("mask") == "tensor":
            # Query i (of the chunk's last q_len tokens) sees keys 0 .. ctx - q_len + i.
            rows = torch.arange(q_len, device=_device())[:, None] + (ctx - q_len)
            kwargs["attn_mask"] = torch.arange(ctx, device=_device())[None, :] <= rows
        else:
            from torch.nn.attention.bias import causal_lower_right

            kwargs["attn_mask"] = causal_lower_right(q_len, ctx)
    return lambda: _sdpa(backend, q, k, v, **kwargs)


def _attention_shapes(quick: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    batches = QUICK_DECODE_BATCH if quick else DECODE_BATCH
    contexts = QUICK_DECODE_CONTEXT if quick else DECODE_CONTEXT
    for hq, hkv, d in GQA_HEADS[:2] if quick else GQA_HEADS:
        for b in batches:
            for ctx in contexts:
                if b * ctx * hkv * d * 2 * 2 > KV_CAP_BYTES:
                    continue
                yield (
                    "gqa_decode",
                    {
                        "batch": b,
                        "q_tokens": 1,
                        "context": ctx,
                        "heads": hq,
                        "kv_heads": hkv,
                        "head_dim": d,
                        "v_head_dim": d,
                        "causal": False,
                    },
                )
        prompts = [(1, t, t) for t in (QUICK_PREFILL_TOKENS if quick else PREFILL_TOKENS)]
        if not quick:
            prompts += [(1, t, ctx) for t, ctx in PREFILL_CHUNKS]
            prompts += [(b, t, t) for b, t in PREFILL_BATCHED]
        for b, t, ctx in prompts:
            yield (
                "gqa_prefill",
                {
                    "batch": b,
                    "q_tokens": t,
                    "context": ctx,
                    "heads": hq,
                    "kv_heads": hkv,
                    "head_dim": d,
                    "v_head_dim": d,
                    "causal": True,
                },
            )
    for heads in MLA_HEADS:
        for t in QUICK_PREFILL_TOKENS if quick else PREFILL_TOKENS:
            yield (
                "mla_prefill",
                {
                    "batch": 1,
                    "q_tokens": t,
                    "context": t,
                    "heads": heads,
                    "kv_heads": heads,
                    "head_dim": MLA_QK_DIM,
                    "v_head_dim": MLA_V_DIM,
                    "causal": True,
                },
            )
        for b in QUICK_DECODE_BATCH if quick else MLA_DECODE_BATCH:
            for ctx in QUICK_DECODE_CONTEXT if quick else MLA_DECODE_CONTEXT:
                yield (
                    "mla_decode",
                    {
                        "batch": b,
                        "q_tokens": 1,
                        "context": ctx,
                        "heads": heads,
                        "kv_heads": 1,
                        "head_dim": MLA_LATENT_DIM + MLA_ROPE_DIM,
                        "v_head_dim": MLA_LATENT_DIM,
                        "causal": False,
                        "shared_kv": True,
                    },
                )


def attention_points(quick: bool) -> list[Point]:
    points = []
    for op, shape in _attention_shapes(quick):
        b, hq, hkv = shape["batch"], shape["heads"], shape["kv_heads"]
        kv_bytes = b * hkv * shape["context"] * (shape["head_dim"] + shape["v_head_dim"]) * 2
        if shape.get("shared_kv"):
            kv_bytes = b * hkv * shape["context"] * shape["head_dim"] * 2
        q_bytes = b * hq * shape["q_tokens"] * (shape["head_dim"] + shape["v_head_dim"]) * 2
        for name, backend in sdpa_backends():
            variants: list[tuple[str, dict[str, Any]]] = [("", shape)]
            if name == "flash_attention" and shape["v_head_dim"] != shape["head_dim"]:
                # FlashAttention-2 wants one head dim: pad V to it, as vLLM does for MLA.
                padded = shape["head_dim"]
                variants = [(f" (V padded to {padded})", {**shape, "v_padded_to": padded})]
            if shape.get("causal") and shape["q_tokens"] != shape["context"]:
                variants = [
                    (" (lower-right causal bias)", {**shape, "mask": "causal_bias"}),
                    (" (boolean mask)", {**shape, "mask": "tensor"}),
                ]
            for suffix, variant in variants:
                record = {
                    "op": "attention",
                    "kind": op,
                    **variant,
                    "kernel": f"torch sdpa:{name}{suffix}",
                }

                def build(
                    sets: int, backend: Any = backend, shape: dict[str, Any] = variant
                ) -> list[Callable[[], Any]]:
                    gen = _generator()
                    return [_attention_call(backend, shape, gen) for _ in range(sets)]

                points.append(Point(f"attention.{op}", record, kv_bytes + q_bytes, build))
    return points


# --------------------------------------------------------------------------- elementwise
def _elementwise_call(op: str, tokens: int, hidden: int, gen: torch.Generator) -> Callable[[], Any]:
    x = _random((tokens, hidden), torch.bfloat16, gen)
    if op == "copy":
        out = torch.empty_like(x)
        return lambda: out.copy_(x)
    if op == "add":
        y = _random((tokens, hidden), torch.bfloat16, gen)
        out = torch.empty_like(x)
        return lambda: torch.add(x, y, out=out)
    if op == "silu":
        return lambda: F.silu(x)
    w = _random((hidden,), torch.bfloat16, gen)
    if op == "rms_norm":
        rms_norm = getattr(F, "rms_norm", None)
        if rms_norm is None:
            raise RuntimeError("this PyTorch has no F.rms_norm")
        return lambda: rms_norm(x, (hidden,), w)
    return lambda: F.layer_norm(x, (hidden,), w)


# Values of the tensor read and written per element (copy, SiLU, norm: read + write; add:
# two reads + a write).
ELEMENTWISE_PASSES = {"copy": 2, "add": 3, "silu": 2, "rms_norm": 2, "layer_norm": 2}


def elementwise_points(quick: bool) -> list[Point]:
    points = []
    for op in ELEMENTWISE_OPS:
        for tokens in QUICK_ELEMENTWISE_TOKENS if quick else ELEMENTWISE_TOKENS:
            h = ELEMENTWISE_HIDDEN
            nbytes = ELEMENTWISE_PASSES[op] * tokens * h * 2
            record = {
                "op": "elementwise",
                "name": op,
                "tokens": tokens,
                "hidden": h,
                "bytes": nbytes,
                "kernel": f"torch {op} (eager kernel)",
            }

            def build(sets: int, op: str = op, t: int = tokens) -> list[Callable[[], Any]]:
                gen = _generator()
                return [_elementwise_call(op, t, ELEMENTWISE_HIDDEN, gen) for _ in range(sets)]

            points.append(Point("elementwise", record, nbytes, build))
    return points


# --------------------------------------------------------------------------- running
def plan_points(settings: Settings) -> list[Point]:
    rng = random.Random(SEED)
    by_family: dict[str, list[Point]] = {f: [] for f in FAMILY_SHARES}
    for dtype in GEMM_DTYPES:
        by_family[f"gemm.{dtype}"] = gemm_points(dtype, settings.quick)
    by_family["elementwise"] = elementwise_points(settings.quick)
    for p in attention_points(settings.quick):
        by_family[p.family].append(p)
    by_family["grouped_gemm.bf16"] = moe_points(settings.quick)
    out = []
    for family in FAMILY_SHARES:
        if family not in settings.families:
            continue
        points = by_family.get(family, [])
        # Shuffled (seeded) so a family cut short by the time budget still spans its grid.
        rng.shuffle(points)
        out += points
    return out


def _memory_cap_bytes() -> float:
    if not torch.cuda.is_available():
        return 2**30
    total = torch.cuda.get_device_properties(0).total_memory
    return float(min(MEMORY_SHARE * total, MAX_INPUT_BYTES))


def _l2_bytes() -> int:
    if not torch.cuda.is_available():
        return 32 * 2**20
    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


class _Progress:
    """A rich progress bar when rich is installed, else a line every tenth."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.bar: Any = None
        self.task: Any = None
        self.enabled = enabled
        if not enabled:
            return
        try:
            from rich.progress import Progress, TimeElapsedColumn

            self.bar = Progress(
                *Progress.get_default_columns(), TimeElapsedColumn(), transient=False
            )
            self.bar.start()
            self.task = self.bar.add_task("measuring", total=self.total)
        except ImportError:
            self.bar = None

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=label[:40])
        elif self.done * 10 // self.total != (self.done - 1) * 10 // self.total:
            print(f"  {self.done}/{self.total} ({label})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_points(
    points: Sequence[Point],
    settings: Settings,
    progress: bool = True,
    checkpoint: Callable[[Results], None] | None = None,
) -> Results:
    """Measure every point within the family time shares (see FAMILY_SHARES);
    ``checkpoint`` gets the results so far after each family."""
    results = Results()
    cap = _memory_cap_bytes()
    l2 = _l2_bytes()
    bar = _Progress(len(points), progress)
    carried = 0.0
    family: str | None = None
    deadline = 0.0
    failures: dict[str, int] = {}
    try:
        for point in points:
            if point.family != family:
                now = time.monotonic()
                if family is not None:
                    carried = max(deadline - now, 0.0)
                    if checkpoint is not None:
                        checkpoint(results)
                family = point.family
                share = FAMILY_SHARES.get(family, 0.05) * settings.time_budget_s
                deadline = now + share + carried
            rec = point.record
            label = f"{rec['op']} {rec.get('kind') or rec.get('dtype') or ''}"
            if time.monotonic() > deadline:
                results.skipped.append({**point.record, "reason": "time budget"})
            elif failures.get(f"{point.family} {point.record['kernel']}", 0) >= 3:
                results.skipped.append(
                    {**point.record, "reason": "kernel failed three times on this device"}
                )
            else:
                _measure_one(point, settings, cap, l2, results, failures)
            bar.advance(label)
    finally:
        bar.close()
    return results


def _measure_one(
    point: Point,
    settings: Settings,
    cap: float,
    l2: int,
    results: Results,
    failures: dict[str, int],
) -> None:
    key = f"{point.family} {point.record['kernel']}"
    sets = input_set_count(point.set_bytes, l2, cap)
    if point.set_bytes * max(sets, point.min_sets) > cap * 2:
        results.skipped.append({**point.record, "reason": "inputs larger than the memory cap"})
        return
    calls: Sequence[Callable[[], Any]] = ()
    try:
        calls = point.build(sets)
        timing = time_calls(
            calls,
            target_s=settings.target_replay_s,
            repeats=settings.repeats,
            l2_resident=point.set_bytes * len(calls) < 2 * l2,
        )
        results.measurements.append({**point.record, **timing.as_dict()})
        failures[key] = 0
    except Exception as err:  # one shape or kernel failing must not stop the run
        failures[key] = failures.get(key, 0) + 1
        results.skipped.append({**point.record, "reason": _first_line(err)})
    finally:
        del calls
        synchronize()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def measure(
    settings: Settings,
    progress: bool = True,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every microbenchmark and return the raw document (see the module docstring);
    ``checkpoint`` receives a partial document after each operator family."""
    started = time.monotonic()
    env = environment.describe()
    points = plan_points(settings)

    def partial(results: Results) -> None:
        if checkpoint is not None:
            doc = _document(env, settings, {"measured": False, "reason": "not reached"}, results)
            doc["partial"] = True
            doc["elapsed_s"] = round(time.monotonic() - started, 1)
            checkpoint(doc)

    results = run_points(points, settings, progress, partial)
    collectives: dict[str, Any]
    if "collective" in settings.families:
        from planner.calibrate.collectives import measure_collectives

        collectives = measure_collectives(
            settings.quick, FAMILY_SHARES["collective"] * settings.time_budget_s
        )
    else:
        collectives = {"measured": False, "reason": "not requested"}
    results.measurements += collectives.pop("measurements", [])
    if torch.cuda.is_available():
        env["nvidia_smi_after"] = environment.nvidia_smi(0)
    doc = _document(env, settings, collectives, results)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    return doc


def _document(
    env: dict[str, Any], settings: Settings, collectives: dict[str, Any], results: Results
) -> dict[str, Any]:
    variant = grouped_variant()
    return {
        "format": RAW_FORMAT,
        "format_version": RAW_FORMAT_VERSION,
        "environment": env,
        "settings": {
            "quick": settings.quick,
            "time_budget_s": settings.time_budget_s,
            "repeats": settings.repeats,
            "target_replay_s": settings.target_replay_s,
            "seed": SEED,
            "grouped_gemm_kernel": variant.kernel,
            "grouped_gemm_native": variant.fn is not None,
            "probe_errors": dict(PROBE_ERRORS),
        },
        "collectives": collectives,
        "measurements": list(results.measurements),
        "skipped": list(results.skipped),
    }


def summary(raw: dict[str, Any]) -> list[str]:
    """A few headline figures of a raw document (best rates seen per operator family)."""
    lines = []
    best: dict[str, float] = {}
    for r in raw["measurements"]:
        t = r["median_s"]
        if r["op"] == "gemm":
            key, rate = f"gemm {r['dtype']} TFLOP/s", 2 * r["m"] * r["n"] * r["k"] / t / 1e12
        elif r["op"] == "elementwise":
            key, rate = f"{r['name']} GB/s (read + written)", r["bytes"] / t / 1e9
        elif r["op"] == "attention":
            key, rate = f"attention {r['kind']} points ({r['kernel']})", 1.0
            best[key] = best.get(key, 0.0) + 1
            continue
        else:
            key, rate = f"{r['op']} {r.get('name', r.get('dtype'))} measurements", 1.0
            best[key] = best.get(key, 0.0) + 1
            continue
        best[key] = max(best.get(key, 0.0), rate)
    for key, value in sorted(best.items()):
        lines.append(f"  {key}: {value:,.1f}" if "/s" in key else f"  {key}: {value:.0f}")
    return lines


def settings_from(quick: bool, time_budget_s: float | None) -> Settings:
    budget = time_budget_s or (QUICK_TIME_BUDGET_S if quick else DEFAULT_TIME_BUDGET_S)
    return Settings(quick=quick, time_budget_s=budget, repeats=QUICK_REPEATS if quick else REPEATS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", required=True, help="raw measurements file (JSON) to write")
    parser.add_argument("--quick", action="store_true", help="a smaller grid (a few minutes)")
    parser.add_argument("--time-budget-s", type=float, default=None)
    parser.add_argument(
        "--families", default=None, help="comma-separated subset of " + ",".join(FAMILY_SHARES)
    )
    args = parser.parse_args(argv)
    settings = settings_from(args.quick, args.time_budget_s)
    if args.families:
        settings.families = tuple(f for f in args.families.split(",") if f)
    out = Path(args.out)

    def write(doc: dict[str, Any]) -> None:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        os.replace(tmp, out)

    raw = measure(settings, checkpoint=write)
    write(raw)
    for line in summary(raw):
        print(line, file=sys.stderr)
    print(
        f"{len(raw['measurements'])} measurements, {len(raw['skipped'])} skipped, "
        f"{raw['elapsed_s']} s -> {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
