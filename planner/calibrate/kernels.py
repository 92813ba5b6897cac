"""Every efficiency curve fitted from one run of ``planner.calibrate.measure``.

For each curve the measured shapes are turned into the work kvplan's planner counts for
them, so a fitted efficiency means what ``planner.plan.perf`` assumes:
- ``gemm.<class>``: FLOPs 2 m n k; bytes = weights (scales included, kvplan's storage
  formats bf16 / fp8 / fp8_w128) + BF16 activations in and out;
- ``grouped_gemm.bf16``: per expert-parallel rank R assignments over A active experts,
  FLOPs per assignment 6 h I (gate_up and down), bytes A x 3 h I x 2 + R (2 h + 3 I) x 2
  (``StepModel._experts``);
- ``attention.<op>``: FLOPs, FLOPs per query and cache bytes from kvplan's own attention
  kinds (``GQA``, ``MLA``) for the measured heads and dims, summed over the batch; where
  several SDPA backends ran a shape the fastest is kept (an engine picks its fastest);
- ``elementwise``: bytes read and written;
- ``collectives``: not fitted here (the raw file says whether they were measured).
Decode has one query per sequence, so its query-tile half point is fixed at 0 (the
compute efficiency absorbs it); prefill runs one sequence per call, so its per-sequence
time is fixed at 0 (the latency absorbs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.calibrate.fit import (
    GEMM_LOWER,
    GEMM_UPPER,
    GEMM_X0,
    Fit,
    FloatArray,
    fit,
    gemm_bytes,
    gemm_entry,
    gemm_seconds,
)
from planner.calibrate.raw import (
    AttentionRecord,
    ElementwiseRecord,
    GemmRecord,
    GroupedRecord,
    RawDocument,
)
from planner.hardware import GPU
from planner.model.attention import GQA, MLA, AttentionKind
from planner.plan.efficiency.curves import attention_op, grouped_gemm_op, memory_op, op_seconds
from planner.plan.efficiency.schema import AttentionCurve, GroupedGemmCurve, MemoryCurve
from planner.schema import GQASpec, MLASpec

BF16_BYTES = 2
ATTENTION_MATH_DTYPE = "bf16"
# kvplan GEMM class -> (storage format whose bytes kvplan counts, math dtype).
GEMM_CLASSES = {"bf16": ("bf16", "bf16"), "fp8": ("fp8", "fp8"), "fp8_block": ("fp8_w128", "fp8")}
# DeepSeek-V3 MLA dims (deepseek-ai/DeepSeek-V3 config.json): the measured MLA shapes.
MLA_DIMS = {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64}
MIN_POINTS = 6  # fewer measurements than this fit no curve (too few to hold any out)
# Below this many points a fifth held out is too few to judge: cross-validate instead.
CROSS_VALIDATE_BELOW = 40
FOLDS = 5
# Elementwise kernels the curve is fitted to: one streaming pass each, as engines' fused
# norm / activation / residual kernels are. PyTorch's eager norms (a reduction per row,
# a slower kernel than engines' fused RMSNorm) are compared with the curve, not fitted.
STREAMING_OPS = ("copy", "add", "silu")


@dataclass(frozen=True)
class CurveFit:
    """One fitted curve: its section and key in the fit file, its entry, its quality."""

    section: str
    key: str | None
    entry: dict[str, object]
    result: Fit
    kernels: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.section if self.key is None else f"{self.section}.{self.key}"


@dataclass(frozen=True)
class Check:
    """Measurements of a curve's operator kept out of its fit, against the fitted curve:
    the ratio measured / curve (median and 10th-90th percentiles) and why they were not
    fitted."""

    curve: str
    what: str
    points: int
    median_ratio: float
    p10_ratio: float
    p90_ratio: float
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "curve": self.curve,
            "what": self.what,
            "points": self.points,
            "median_measured_over_curve": round(self.median_ratio, 3),
            "p10_measured_over_curve": round(self.p10_ratio, 3),
            "p90_measured_over_curve": round(self.p90_ratio, 3),
            "reason": self.reason,
        }


def _check(curve: str, what: str, ratio: FloatArray, reason: str) -> Check:
    return Check(
        curve,
        what,
        len(ratio),
        float(np.median(ratio)),
        float(np.percentile(ratio, 10)),
        float(np.percentile(ratio, 90)),
        reason,
    )


def _folds(n: int) -> int | None:
    return FOLDS if n < CROSS_VALIDATE_BELOW else None


def _table(raw: RawDocument, what: str) -> str:
    return f"kvplan calibrate measurements on {raw.device_name} ({what})"


def _kernels(records: Sequence[Any]) -> tuple[str, ...]:
    return tuple(sorted({r.kernel for r in records}))


# --------------------------------------------------------------------------- GEMM
def fit_gemms(raw: RawDocument, gpu: GPU) -> tuple[list[CurveFit], list[Check]]:
    """A GEMM curve per class. FP8 classes are fitted to the linear layer as engines run
    it, BF16 activations quantized inside the timed call, where the run has those
    measurements; the FP8 GEMM alone is then compared with the curve (``Check``)."""
    out: list[CurveFit] = []
    checks: list[Check] = []
    peak_of = {math: gpu.peak_flop_per_s(math) for _, math in GEMM_CLASSES.values()}
    bw = gpu.hbm_bandwidth_bytes_per_s
    for cls, (fmt, math) in GEMM_CLASSES.items():
        every = [r for r in raw.measurements if isinstance(r, GemmRecord) and r.dtype == cls]
        quantized = [r for r in every if r.activation_quant]
        recs = quantized or every
        if len(recs) < MIN_POINTS or gpu.math_dtype(math) != math:
            continue
        peak = peak_of[math]

        def arrays(rs: list[GemmRecord], fmt: str = fmt) -> tuple[FloatArray, ...]:
            m, n, k = (np.array([getattr(r, f) for r in rs], dtype=np.float64) for f in "mnk")
            return m, n, k, gemm_bytes(m, n, k, fmt)

        m, n, k, nbytes = arrays(recs)
        measured = np.array([r.median_s for r in recs])

        def model(
            p: FloatArray,
            sel: Any,
            m: FloatArray = m,
            n: FloatArray = n,
            k: FloatArray = k,
            nb: FloatArray = nbytes,
            peak: float = peak,
        ) -> FloatArray:
            return gemm_seconds(p, m[sel], n[sel], k[sel], nb[sel], peak, bw)

        result = fit(model, measured, GEMM_X0, GEMM_LOWER, GEMM_UPPER, folds=_folds(len(recs)))
        what = (
            "BF16 activations quantized in the timed call, as engines' W8A8 layers do"
            if quantized
            else "inputs already in the class's format"
        )
        selection = f"op == 'gemm', dtype == '{cls}', {what} ({len(recs)} shapes)"
        entry = gemm_entry(result, _table(raw, ", ".join(_kernels(recs))), selection)
        out.append(CurveFit("gemm", cls, entry, result, _kernels(recs)))
        alone = [r for r in every if not r.activation_quant]
        if quantized and alone:
            am, an, ak, ab = arrays(alone)
            ratio = np.array([r.median_s for r in alone]) / gemm_seconds(
                result.params, am, an, ak, ab, peak, bw
            )
            checks.append(
                _check(
                    f"gemm.{cls}",
                    f"the FP8 GEMM alone, activations already FP8 ({len(alone)} shapes)",
                    ratio,
                    "the curve times the layer with its activation quantization, as engines run it",
                )
            )
    return out, checks


# --------------------------------------------------------------------------- MoE
def grouped_work(r: GroupedRecord) -> tuple[float, float, float, float]:
    """(R, A, FLOPs per assignment, bytes) of one MoE measurement, as kvplan counts them."""
    h, i = r.hidden, r.inter
    flops_per_assignment = 2.0 * (h * 2 * i + i * h)
    weights = r.active_experts * 3.0 * h * i * BF16_BYTES
    activations = r.assignments * (2 * h + 3 * i) * BF16_BYTES
    return r.assignments, r.active_experts, flops_per_assignment, weights + activations


def fit_grouped(raw: RawDocument, gpu: GPU) -> list[CurveFit]:
    recs = [
        r
        for r in raw.measurements
        if isinstance(r, GroupedRecord) and r.dtype == "bf16" and not r.routing
    ]
    if len(recs) < MIN_POINTS:
        return []
    work = np.array([grouped_work(r) for r in recs], dtype=np.float64)
    measured = np.array([r.median_s for r in recs])
    peak, bw = gpu.peak_flop_per_s("bf16"), gpu.hbm_bandwidth_bytes_per_s

    def model(p: FloatArray, sel: Any) -> FloatArray:
        curve = GroupedGemmCurve.model_construct(
            latency_us=float(p[0]),
            compute_efficiency=float(p[1]),
            bandwidth_efficiency=float(p[2]),
            half_tokens_per_expert=float(p[3]),
            fit=None,
        )
        w = work[sel]
        return op_seconds(grouped_gemm_op(curve, peak, bw, w[:, 0], w[:, 1], w[:, 2], w[:, 3]))

    result = fit(
        model,
        measured,
        [10.0, 0.7, 0.7, 16.0],
        [0.0, 0.02, 0.02, 0.0],
        [1e3, 1, 1, 1e5],
        folds=_folds(len(recs)),
    )
    p = result.params
    selection = (
        f"op == 'grouped_gemm', dtype == 'bf16', routing passes excluded ({len(recs)} "
        "points: expert FFN shapes of DeepSeek-V3 EP8, Qwen3-235B EP8, Qwen3-30B EP1)"
    )
    entry = {
        "latency_us": round(float(p[0]), 3),
        "compute_efficiency": round(float(p[1]), 4),
        "bandwidth_efficiency": round(float(p[2]), 4),
        "half_tokens_per_expert": round(float(p[3]), 2),
        "fit": result.quality(_table(raw, ", ".join(_kernels(recs))), selection),
    }
    return [CurveFit("grouped_gemm", "bf16", entry, result, _kernels(recs))]


# --------------------------------------------------------------------------- attention
def attention_kind(r: AttentionRecord) -> AttentionKind:
    """kvplan's attention kind for a measured shape."""
    if r.kind.startswith("gqa"):
        return GQA(GQASpec(num_heads=r.heads, num_kv_heads=r.kv_heads, head_dim=r.head_dim))
    return MLA(MLASpec(num_heads=r.heads, v_head_dim=128, **MLA_DIMS))


def attention_work(r: AttentionRecord) -> tuple[float, float, float, float]:
    """(FLOPs, FLOPs per query, cache bytes, sequences) of one measurement, summed over
    its batch, from kvplan's attention kind (decode kernels: the decode form)."""
    kind = attention_kind(r)
    if r.kind.endswith("decode"):
        per_seq = float(kind.decode_attn_flops(r.q_tokens, r.context))
    else:
        per_seq = float(kind.attn_flops(r.q_tokens, r.context))
    nbytes = float(kind.read_bytes(r.context))
    return r.batch * per_seq, r.batch * per_seq / r.q_tokens, r.batch * nbytes, float(r.batch)


def fastest_per_shape(records: Sequence[AttentionRecord]) -> list[AttentionRecord]:
    """One record per shape: the fastest backend that ran it."""
    best: dict[tuple[Any, ...], AttentionRecord] = {}
    for r in records:
        key = (r.kind, r.batch, r.q_tokens, r.context, r.heads, r.kv_heads, r.head_dim)
        if key not in best or r.median_s < best[key].median_s:
            best[key] = r
    return list(best.values())


def _attention_seconds(curve: AttentionCurve, gpu: GPU, work: FloatArray) -> FloatArray:
    t = attention_op(
        curve,
        gpu.peak_flop_per_s(ATTENTION_MATH_DTYPE),
        gpu.hbm_bandwidth_bytes_per_s,
        work[:, 0],
        work[:, 1],
        work[:, 2],
        work[:, 3],
    )
    return op_seconds(t)


def _attention_curve(p: FloatArray, decode: bool) -> AttentionCurve:
    """Attention parameters in fit order (latency, per-sequence time, compute and
    bandwidth efficiency, query half point) as a curve."""
    return AttentionCurve.model_construct(
        latency_us=float(p[0]),
        per_sequence_us=float(p[1]) if decode else 0.0,
        compute_efficiency=float(p[2]),
        bandwidth_efficiency=float(p[3]),
        half_query_tokens=0.0 if decode else float(p[4]),
        fit=None,
    )


def fit_attention(raw: RawDocument, gpu: GPU) -> tuple[list[CurveFit], list[Check]]:
    """Decode and prefill curves per attention kind. Prefill is fitted to whole prompts
    (no cached prefix): PyTorch's fast causal kernel (cuDNN) runs those; a chunk attending
    to a cached prefix needs a lower-right causal mask, which PyTorch runs only in slower
    kernels (FlashAttention-2, or cuDNN with a mask tensor), unlike engines' FlashAttention-3
    / FlashInfer. Those chunks are compared with the curve (``Check``), not fitted."""
    out: list[CurveFit] = []
    checks: list[Check] = []
    ops = sorted({r.kind for r in raw.measurements if isinstance(r, AttentionRecord)})
    for op in ops:
        measured_recs = [
            r for r in raw.measurements if isinstance(r, AttentionRecord) and r.kind == op
        ]
        shapes = fastest_per_shape(measured_recs)
        recs = [r for r in shapes if r.q_tokens == 1 or r.q_tokens == r.context]
        chunks = [r for r in shapes if r not in recs]
        if len(recs) < MIN_POINTS:
            continue
        work = np.array([attention_work(r) for r in recs], dtype=np.float64)
        measured = np.array([r.median_s for r in recs])
        decode = op.endswith("decode")

        def model(
            p: FloatArray, sel: Any, work: FloatArray = work, decode: bool = decode
        ) -> FloatArray:
            return _attention_seconds(_attention_curve(p, decode), gpu, work[sel])

        result = fit(
            model,
            measured,
            [5.0, 0.1, 0.5, 0.7, 32.0],
            [0.0, 0.0, 0.01, 0.02, 0.0],
            [1e3, 100.0, 1.0, 1.0, 1e5],
            folds=_folds(len(recs)),
        )
        curve = _attention_curve(result.params, decode)
        kernels = _kernels(recs)
        selection = (
            f"op == 'attention', kind == '{op}'"
            + ("" if decode else ", whole prompts (no cached prefix)")
            + f", fastest of the SDPA backends that ran each shape ({len(recs)} shapes)"
        )
        entry = {
            "latency_us": round(curve.latency_us, 3),
            "per_sequence_us": round(curve.per_sequence_us, 4),
            "compute_efficiency": round(curve.compute_efficiency, 4),
            "bandwidth_efficiency": round(curve.bandwidth_efficiency, 4),
            "half_query_tokens": round(curve.half_query_tokens, 2),
            "fit": result.quality(_table(raw, ", ".join(kernels)), selection),
        }
        out.append(CurveFit("attention", op, entry, result, kernels))
        if chunks:
            chunk_work = np.array([attention_work(r) for r in chunks], dtype=np.float64)
            ratio = np.array([r.median_s for r in chunks]) / _attention_seconds(
                curve, gpu, chunk_work
            )
            checks.append(
                _check(
                    f"attention.{op}",
                    "chunks attending to a cached prefix (" + ", ".join(_kernels(chunks)) + ")",
                    ratio,
                    "PyTorch runs a lower-right causal mask only in slower kernels than its "
                    "whole-prompt causal kernel; engines (FlashAttention-3, FlashInfer) do not",
                )
            )
    return out, checks


# --------------------------------------------------------------------------- elementwise
def fit_elementwise(raw: RawDocument, gpu: GPU) -> tuple[list[CurveFit], list[Check]]:
    every = [r for r in raw.measurements if isinstance(r, ElementwiseRecord)]
    recs = [r for r in every if r.name in STREAMING_OPS]
    if len(recs) < MIN_POINTS:
        return [], []
    bw = gpu.hbm_bandwidth_bytes_per_s

    def seconds(p: FloatArray, nbytes: FloatArray) -> FloatArray:
        curve = MemoryCurve.model_construct(
            latency_us=float(p[0]), bandwidth_efficiency=float(p[1]), fit=None
        )
        return op_seconds(memory_op(curve, bw, nbytes))

    nbytes = np.array([r.bytes for r in recs], dtype=np.float64)
    measured = np.array([r.median_s for r in recs])

    def model(p: FloatArray, sel: Any) -> FloatArray:
        return seconds(p, nbytes[sel])

    result = fit(model, measured, [3.0, 0.8], [0.0, 0.02], [1e3, 1.0], folds=_folds(len(recs)))
    names = sorted({r.name for r in recs})
    selection = f"op == 'elementwise', name in {names} ({len(recs)} sizes)"
    entry = {
        "latency_us": round(float(result.params[0]), 3),
        "bandwidth_efficiency": round(float(result.params[1]), 4),
        "fit": result.quality(_table(raw, "PyTorch eager kernels"), selection),
    }
    checks = []
    for name in sorted({r.name for r in every} - set(STREAMING_OPS)):
        others = [r for r in every if r.name == name]
        ratio = np.array([r.median_s for r in others]) / seconds(
            result.params, np.array([r.bytes for r in others], dtype=np.float64)
        )
        checks.append(
            _check(
                "elementwise",
                f"PyTorch {name} ({len(others)} sizes)",
                ratio,
                "a per-row reduction kernel of PyTorch's own; engines run fused norm kernels "
                "that stream like the fitted kernels",
            )
        )
    return [CurveFit("elementwise", None, entry, result, _kernels(recs))], checks


@dataclass(frozen=True)
class HeldOut:
    """Every curve's error on the measurements its fit did not see, pooled: how well the
    profile reproduces its own held-out measurements (issue 12's acceptance: within 10%
    median)."""

    points: int
    median_rel_err: float
    p90_rel_err: float
    curves_within: int  # curves whose own held-out median is within WITHIN
    curves: int


# Issue 12's acceptance bound on a calibrated profile's held-out median error.
WITHIN = 0.10


@dataclass(frozen=True)
class KernelCalibration:
    curves: list[CurveFit]
    checks: list[Check]

    def held_out(self) -> HeldOut | None:
        """The pooled held-out error (None: no curve was fitted)."""
        errors = np.array([e for c in self.curves for e in c.result.held_out_rel_err])
        if not len(errors):
            return None
        return HeldOut(
            len(errors),
            float(np.median(errors)),
            float(np.percentile(errors, 90)),
            sum(1 for c in self.curves if c.result.median_rel_err <= WITHIN),
            len(self.curves),
        )


def fit_all(raw: RawDocument, gpu: GPU) -> KernelCalibration:
    """Every curve the measurements support (a curve with too few points is left out),
    and the measurements kept out of the fits, compared with them."""
    gemms, gemm_checks = fit_gemms(raw, gpu)
    attention, attention_checks = fit_attention(raw, gpu)
    elementwise, elementwise_checks = fit_elementwise(raw, gpu)
    curves = [*gemms, *fit_grouped(raw, gpu), *attention, *elementwise]
    return KernelCalibration(curves, [*gemm_checks, *attention_checks, *elementwise_checks])


def copy_bandwidth_bytes_per_s(raw: RawDocument) -> float | None:
    """The device copy bandwidth: bytes read + written of the largest copy over its time."""
    copies = [r for r in raw.measurements if isinstance(r, ElementwiseRecord) and r.name == "copy"]
    if not copies:
        return None
    largest = max(copies, key=lambda r: r.bytes)
    return largest.bytes / largest.median_s
