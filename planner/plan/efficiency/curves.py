"""Operator times from efficiency curves (fitted where measured, analytic otherwise).

``Efficiency`` resolves, for one GPU and one engine, the curve of every operator class
(``planner.plan.efficiency.schema`` documents each form) and turns operator shapes into
times. Every method is vectorised over numpy arrays and returns the operator's compute
time, memory time and fixed time separately, so the caller can take
``fixed + max(compute, memory)`` and record which side bound it.

Where a curve is missing, the analytic default is the GPU profile's constant model:
fixed time = ``kernel_overhead_us``, efficiencies = ``flops_fraction`` /
``bandwidth_fraction`` / ``interconnect_fraction``, no shape dependence (every half point
0). ``origin`` says, per curve, where its numbers came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.errors import ConfigError, UnknownNameError
from planner.hardware import GB, GPU, gpu_names
from planner.plan.efficiency.load import engine_defaults, load_fits
from planner.plan.efficiency.schema import (
    ATTENTION_OPS,
    COLLECTIVE_OPS,
    GEMM_CLASSES,
    AttentionCurve,
    AttentionOp,
    CollectiveCurve,
    CollectiveOp,
    GemmClass,
    GemmCurve,
    GroupedGemmCurve,
    KernelFits,
    KvCacheClass,
    MemoryCurve,
)
from planner.schema import Deployment, GpuCalibration
from planner.validation import validate

FloatArray = NDArray[np.float64]
US = 1e-6

# A V4 layer that keeps only its sliding window runs the HCA kernel family.
ATTENTION_FALLBACK: dict[str, str] = {"swa": "hca", "mha": "gqa"}


@dataclass(frozen=True)
class OpTime:
    """One operator's time split: fixed + max(compute, memory)."""

    fixed_s: FloatArray | float
    compute_s: FloatArray | float
    memory_s: FloatArray | float


def _arr(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------- curve forms
# Pure functions of a curve and the GPU's peaks: the fitting scripts evaluate the same
# forms (benchmarks/fit), so a fitted parameter means the same thing here and there.
def gemm_op(
    c: GemmCurve,
    peak_flop_per_s: float,
    bandwidth_bytes_per_s: float,
    m: ArrayLike,
    n: ArrayLike,
    k: ArrayLike,
    flops: ArrayLike,
    nbytes: ArrayLike,
) -> OpTime:
    fill: FloatArray | float = 1.0
    if c.half_m:
        m_a = _arr(m)
        fill = m_a / np.maximum(m_a + c.half_m, 1e-30)
    if c.half_n:
        fill = fill * (_arr(n) / (_arr(n) + c.half_n))
    if c.half_k:
        fill = fill * (_arr(k) / (_arr(k) + c.half_k))
    compute = _arr(flops) / (peak_flop_per_s * c.compute_efficiency * np.maximum(fill, 1e-12))
    memory = _arr(nbytes) / (bandwidth_bytes_per_s * c.bandwidth_efficiency)
    return OpTime(c.latency_us * US, compute, memory)


def grouped_gemm_op(
    c: GroupedGemmCurve,
    peak_flop_per_s: float,
    bandwidth_bytes_per_s: float,
    assignments: ArrayLike,
    active_experts: ArrayLike,
    flops_per_assignment: ArrayLike,
    nbytes: ArrayLike,
    pair_bytes: ArrayLike = 0.0,
) -> OpTime:
    """``pair_bytes``: the token vectors of the pairs the rank is handed (P x hidden x 2)."""
    work = _arr(assignments) + c.half_tokens_per_expert * _arr(active_experts)
    compute = _arr(flops_per_assignment) * work / (peak_flop_per_s * c.compute_efficiency)
    memory = _arr(nbytes) / (bandwidth_bytes_per_s * c.bandwidth_efficiency)
    pair_efficiency = c.pair_bandwidth_efficiency or c.bandwidth_efficiency
    routing = _arr(pair_bytes) / (bandwidth_bytes_per_s * pair_efficiency)
    return OpTime(c.latency_us * US + routing, compute, memory)


def attention_op(
    c: AttentionCurve,
    peak_flop_per_s: float,
    bandwidth_bytes_per_s: float,
    flops: ArrayLike,
    flops_per_query: ArrayLike,
    nbytes: ArrayLike,
    sequences: ArrayLike,
) -> OpTime:
    compute = (_arr(flops) + c.half_query_tokens * _arr(flops_per_query)) / (
        peak_flop_per_s * c.compute_efficiency
    )
    memory = _arr(nbytes) / (bandwidth_bytes_per_s * c.bandwidth_efficiency)
    fixed = c.latency_us * US + c.per_sequence_us * US * _arr(sequences)
    return OpTime(fixed, compute, memory)


def memory_op(c: MemoryCurve, bandwidth_bytes_per_s: float, nbytes: ArrayLike) -> OpTime:
    memory = _arr(nbytes) / (bandwidth_bytes_per_s * c.bandwidth_efficiency)
    return OpTime(c.latency_us * US, 0.0, memory)


def collective_s(c: CollectiveCurve, link_bytes_per_s: float, bytes_sent: ArrayLike) -> FloatArray:
    return np.asarray(
        c.latency_us * US + _arr(bytes_sent) / (link_bytes_per_s * c.bandwidth_efficiency),
        dtype=np.float64,
    )


def op_seconds(t: OpTime) -> FloatArray:
    """fixed + max(compute, memory)."""
    return np.asarray(
        _arr(t.fixed_s) + np.maximum(_arr(t.compute_s), _arr(t.memory_s)), dtype=np.float64
    )


class Efficiency:
    """Resolved curves for one GPU under one engine."""

    def __init__(
        self,
        gpu: GPU,
        engine: str,
        calibration: KernelFits | None = None,
        calibration_label: str | None = None,
        time_scale: float = 1.0,
    ) -> None:
        """``calibration``: curves fitted to the user's own GPU (kvplan calibrate), used
        before the engine's fit files; ``time_scale``: a per-deployment correction that
        multiplies every kernel and collective time (not the host step overhead)."""
        self.gpu = gpu
        self.engine = engine
        self.time_scale = time_scale
        eff = gpu.profile.efficiency
        own = load_fits(gpu.name, engine)
        if eff.kernel_fits_from and eff.kernel_fits_from not in gpu_names():
            raise UnknownNameError(
                "unknown GPU profile to borrow kernel fits from",
                field="efficiency.kernel_fits_from",
                value=eff.kernel_fits_from,
                expected="one of " + ", ".join(gpu_names()),
            )
        borrowed_from = None
        fits: KernelFits | None = own
        if own is None and eff.kernel_fits_from:
            fits = load_fits(eff.kernel_fits_from, engine)
            borrowed_from = eff.kernel_fits_from if fits is not None else None
        self.fits = fits
        self.borrowed_from = borrowed_from
        if fits is None:
            label = "analytic"
        else:
            prov = fits.provenance
            label = (
                f"fitted {fits.gpu}/{fits.engine} ({prov.package} {prov.package_version}, "
                f"{fits.engine} {prov.engine_version})"
            )
            if borrowed_from:
                label = f"borrowed from {label}"
        calibrated_keys: set[str] = set()
        self.calibration_label: str | None = None
        if calibration is not None and calibration.gpu == gpu.name:
            fits, calibrated_keys = _overlay(fits, calibration)
            self.calibration_label = calibration_label or f"calibrated {calibration.gpu}"
        self.source_label = (
            label
            if self.calibration_label is None
            else f"{self.calibration_label}; other curves {label}"
        )
        analytic = f"analytic ({gpu.name} profile efficiency block)"
        self.origin: dict[str, str] = {}

        def pick(key: str, fitted: object | None, default: object) -> object:
            if key in calibrated_keys and self.calibration_label is not None:
                self.origin[key] = self.calibration_label
            else:
                self.origin[key] = label if fitted is not None else analytic
            return fitted if fitted is not None else default

        latency = eff.kernel_overhead_us
        self.gemm: dict[str, GemmCurve] = {}
        self.grouped: dict[str, GroupedGemmCurve] = {}
        for cls in GEMM_CLASSES:
            g = fits.gemm.get(cls) if fits else None
            self.gemm[cls] = pick(  # type: ignore[assignment]
                f"gemm.{cls}",
                g,
                GemmCurve(
                    latency_us=latency,
                    compute_efficiency=eff.flops_fraction,
                    bandwidth_efficiency=eff.bandwidth_fraction,
                    half_m=0,
                    half_n=0,
                    half_k=0,
                ),
            )
            gg = fits.grouped_gemm.get(cls) if fits else None
            self.grouped[cls] = pick(  # type: ignore[assignment]
                f"grouped_gemm.{cls}",
                gg,
                GroupedGemmCurve(
                    latency_us=latency,
                    compute_efficiency=eff.flops_fraction,
                    bandwidth_efficiency=eff.bandwidth_fraction,
                    half_tokens_per_expert=0,
                    pair_bandwidth_efficiency=eff.bandwidth_fraction,
                ),
            )
        self.attention: dict[str, AttentionCurve] = {}
        for op in ATTENTION_OPS:
            a = fits.attention.get(op) if fits else None
            self.attention[op] = pick(  # type: ignore[assignment]
                f"attention.{op}",
                a,
                AttentionCurve(
                    latency_us=latency,
                    compute_efficiency=eff.flops_fraction,
                    bandwidth_efficiency=eff.bandwidth_fraction,
                    half_query_tokens=0,
                ),
            )
        # Curves fitted to one cache class, used before the op's curve for that cache.
        self.attention_by_kv: dict[tuple[str, str], AttentionCurve] = {}
        for cache, per_op in fits.attention_by_kv_cache.items() if fits else ():
            for op, curve in per_op.items():
                self.attention_by_kv[(op, cache)] = pick(  # type: ignore[assignment]
                    f"attention.{op}[{cache} cache]", curve, curve
                )
        self.elementwise: MemoryCurve = pick(  # type: ignore[assignment]
            "elementwise",
            fits.elementwise if fits else None,
            MemoryCurve(latency_us=latency, bandwidth_efficiency=eff.bandwidth_fraction),
        )
        self.collectives: dict[str, CollectiveCurve] = {}
        for cop in COLLECTIVE_OPS:
            c = fits.collectives.get(cop) if fits else None
            self.collectives[cop] = pick(  # type: ignore[assignment]
                f"collectives.{cop}",
                c,
                CollectiveCurve(
                    latency_us=eff.collective_latency_us,
                    bandwidth_efficiency=eff.interconnect_fraction,
                ),
            )
        defaults = engine_defaults()
        self.moe_dispatch = defaults.moe_dispatch.get(engine, "all_to_all")  # type: ignore[call-overload]
        # Keyed (class, hidden, width, experts, top-k, moe_tp); moe_tp 0: every size.
        self.grouped_by_shape: dict[tuple[str, int, int, int, int, int], GroupedGemmCurve] = {}
        for shaped in fits.grouped_gemm_by_shape if fits else []:
            key = (
                shaped.gemm_class,
                shaped.hidden_size,
                shaped.inter_size,
                shaped.num_experts,
                shaped.experts_per_token,
                shaped.moe_tp_size or 0,
            )
            self.grouped_by_shape[key] = shaped
        step = fits.step_overhead_us if fits else None
        self.origin["step_overhead"] = label if step is not None else analytic
        # Analytic default: engines overlap scheduling and sampling with the GPU (vLLM's
        # async scheduling, SGLang's overlap scheduler), so no host time is added.
        self.step_overhead_s = (step or 0.0) * US
        if time_scale != 1.0:
            self._scale(time_scale)

    def _scale(self, factor: float) -> None:
        """Every curve's fixed times x factor and efficiencies / factor: each kernel and
        collective then takes ``factor`` times as long (a fitted correction may push an
        efficiency past 1; the curves are copied without re-validation for that)."""

        def scaled(curve: Any) -> Any:
            update = {}
            for name, value in curve:
                if name.endswith("_us"):
                    update[name] = value * factor
                elif name.endswith("efficiency"):
                    update[name] = value / factor
            return curve.model_copy(update=update)

        self.gemm = {k: scaled(v) for k, v in self.gemm.items()}
        self.grouped = {k: scaled(v) for k, v in self.grouped.items()}
        self.grouped_by_shape = {k: scaled(v) for k, v in self.grouped_by_shape.items()}
        self.attention = {k: scaled(v) for k, v in self.attention.items()}
        self.attention_by_kv = {k: scaled(v) for k, v in self.attention_by_kv.items()}
        self.elementwise = scaled(self.elementwise)
        self.collectives = {k: scaled(v) for k, v in self.collectives.items()}

    # ------------------------------------------------------------------ operators
    def gemm_time(
        self,
        cls: GemmClass,
        math_dtype: str,
        m: ArrayLike,
        n: float,
        k: float,
        flops: ArrayLike,
        nbytes: ArrayLike,
    ) -> OpTime:
        """A dense GEMM of m tokens through a k x n weight (``flops`` and ``nbytes`` as
        counted by the caller, e.g. summed over identical matrices)."""
        return gemm_op(
            self.gemm[cls],
            self.gpu.peak_flop_per_s(math_dtype),
            self.gpu.hbm_bandwidth_bytes_per_s,
            m,
            n,
            k,
            flops,
            nbytes,
        )

    def grouped_gemm_time(
        self,
        cls: GemmClass,
        math_dtype: str,
        assignments: ArrayLike,
        active_experts: ArrayLike,
        flops_per_assignment: float,
        nbytes: ArrayLike,
        pair_bytes: ArrayLike,
        shape: tuple[int, int, int, int] | None = None,
        moe_tp: int = 0,
    ) -> OpTime:
        """Fused MoE experts on the busiest rank (R assignments over A active experts,
        handed pairs whose token vectors total ``pair_bytes``); ``shape`` (hidden, expert
        width, experts, experts per token) picks a curve fitted to that shape if any, and
        ``moe_tp`` (the expert tensor-parallel size) one fitted to that split of it."""
        curve = self.grouped[cls]
        if shape is not None:
            curve = self.grouped_by_shape.get(
                (cls, *shape, moe_tp), self.grouped_by_shape.get((cls, *shape, 0), curve)
            )
        return grouped_gemm_op(
            curve,
            self.gpu.peak_flop_per_s(math_dtype),
            self.gpu.hbm_bandwidth_bytes_per_s,
            assignments,
            active_experts,
            flops_per_assignment,
            nbytes,
            pair_bytes,
        )

    def attention_curve(self, op: str, cache: str | None = None) -> AttentionCurve:
        """The op's curve; ``cache`` (the main cache's math dtype) picks a curve fitted to
        that cache class alone where there is one."""
        kind, _, phase = op.partition("_")
        key = f"{ATTENTION_FALLBACK.get(kind, kind)}_{phase}"
        if cache is not None:
            found = self.attention_by_kv.get((key, cache))
            if found is not None:
                return found
        return self.attention[key]

    def attention_time(
        self,
        op: AttentionOp | str,
        math_dtype: str,
        flops: ArrayLike,
        flops_per_query: ArrayLike,
        nbytes: ArrayLike,
        sequences: ArrayLike,
        cache: str | None = None,
    ) -> OpTime:
        """An attention kernel over a step's sequences (sums over them); ``cache`` as in
        ``attention_curve``."""
        return attention_op(
            self.attention_curve(op, cache),
            self.gpu.peak_flop_per_s(math_dtype),
            self.gpu.hbm_bandwidth_bytes_per_s,
            flops,
            flops_per_query,
            nbytes,
            sequences,
        )

    def memory_time(self, nbytes: ArrayLike) -> OpTime:
        """A memory-bound elementwise kernel moving ``nbytes`` (read + written)."""
        return memory_op(self.elementwise, self.gpu.hbm_bandwidth_bytes_per_s, nbytes)

    def collective_time(self, op: CollectiveOp, bytes_sent: ArrayLike) -> FloatArray:
        """A collective where each GPU sends ``bytes_sent`` over the op's link."""
        profile = self.gpu.profile.interconnect
        if op.endswith("scale_out"):
            link = (profile.scale_out_gb_per_s or profile.bandwidth_gb_per_s / 2) * GB
        else:
            link = self.gpu.link_bytes_per_s_one_way
        return collective_s(self.collectives[op], link, bytes_sent)

    @property
    def scale_up_domain_gpus(self) -> int | None:
        return self.gpu.profile.interconnect.scale_up_domain_gpus


_CACHE_ATTR = "_kvplan_efficiency"


@lru_cache(maxsize=16)
def calibration_fits(kernel_fits_json: str, where: str) -> KernelFits:
    """A calibration's curves (``GpuCalibration.kernel_fits_json``), validated once."""
    try:
        data = json.loads(kernel_fits_json)
    except ValueError:
        raise ConfigError("calibrated curves are not valid JSON", where=where) from None
    return validate(KernelFits, data, where)


def efficiency_for(
    gpu: GPU,
    engine: str,
    calibration: GpuCalibration | None = None,
    time_scale: float = 1.0,
) -> Efficiency:
    """The resolved curves for a GPU object and engine (with the user's calibrated curves
    and step-time correction, if any), built once and kept on the GPU object (so a
    different profile under the same name never sees stale curves)."""
    per_key: dict[tuple[str, str | None, float], Efficiency] = gpu.__dict__.setdefault(
        _CACHE_ATTR, {}
    )
    key = (engine, calibration.kernel_fits_json if calibration else None, time_scale)
    found = per_key.get(key)
    if found is None:
        fits = (
            calibration_fits(calibration.kernel_fits_json, calibration.label)
            if calibration
            else None
        )
        label = calibration.label if calibration else None
        found = Efficiency(gpu, engine, fits, label, time_scale)
        per_key[key] = found
    return found


def deployment_efficiency(gpu: GPU, deployment: Deployment) -> Efficiency:
    """The curves a deployment's step times use: its engine's, the user's calibrated curves
    first where it carries them, times its step-time correction."""
    return efficiency_for(
        gpu, deployment.engine, deployment.gpu_calibration, deployment.step_time_scale
    )


def _overlay(base: KernelFits | None, top: KernelFits) -> tuple[KernelFits, set[str]]:
    """``base`` with every curve ``top`` has put over it, and the keys ``top`` set."""
    keys = {f"{section}.{k}" for section in _CURVE_MAPS for k in getattr(top, section)}
    keys |= {
        f"attention.{op}[{cache} cache]"
        for cache, per_op in top.attention_by_kv_cache.items()
        for op in per_op
    }
    if top.elementwise is not None:
        keys.add("elementwise")
    if top.step_overhead_us is not None:
        keys.add("step_overhead")
    if base is None:
        return top, keys
    update: dict[str, Any] = {
        section: {**getattr(base, section), **getattr(top, section)} for section in _CURVE_MAPS
    }
    # A curve the user calibrated for an op replaces the base's per-cache curves of that
    # op too (they were fitted to other data); the top's own per-cache curves go over.
    by_kv: dict[KvCacheClass, dict[AttentionOp, AttentionCurve]] = {}
    for cache, per_op in base.attention_by_kv_cache.items():
        kept = {op: c for op, c in per_op.items() if op not in top.attention}
        if kept:
            by_kv[cache] = kept
    for cache, per_op in top.attention_by_kv_cache.items():
        by_kv[cache] = {**by_kv.get(cache, {}), **per_op}
    update["attention_by_kv_cache"] = by_kv
    if top.elementwise is not None:
        update["elementwise"] = top.elementwise
    if top.step_overhead_us is not None:
        update["step_overhead_us"] = top.step_overhead_us
    return base.model_copy(update=update), keys


_CURVE_MAPS = ("gemm", "grouped_gemm", "attention", "collectives")
