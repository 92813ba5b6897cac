"""Curve fitting on synthetic measurements with known parameters: the fit must give the
parameters back and predict unseen points exactly (noise-free data)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.calibrate.fit import HOLD_OUT_SHARE, fit, gemm_bytes, gemm_seconds, held_out_mask
from planner.calibrate.kernels import fit_all, fit_attention, fit_gemms
from planner.calibrate.raw import RawDocument
from planner.hardware import load_gpu
from planner.plan.efficiency.curves import attention_op, efficiency_for, op_seconds
from planner.plan.efficiency.schema import AttentionCurve

H100 = load_gpu("h100-sxm")


def raw_doc(measurements: list[dict[str, object]]) -> RawDocument:
    return RawDocument.model_validate(
        {
            "format": "kvplan-calibrate-raw",
            "format_version": 1,
            "environment": {"device_name": "NVIDIA H100 80GB HBM3", "torch": "test"},
            "settings": {},
            "collectives": {"measured": False, "reason": "1 GPU"},
            "measurements": measurements,
            "elapsed_s": 1.0,
        }
    )


def timing(t: float) -> dict[str, object]:
    return {"median_s": t, "p10_s": t, "p90_s": t, "samples": 3, "timing": "synthetic"}


def test_held_out_mask_is_seeded_and_about_a_fifth() -> None:
    a, b = held_out_mask(1000), held_out_mask(1000)
    assert (a == b).all()
    assert abs(a.mean() - HOLD_OUT_SHARE) < 0.05
    assert held_out_mask(3).any() and not held_out_mask(3).all()


def test_memory_curve_parameters_come_back() -> None:
    # t = 2 us + bytes / (3.35e12 B/s x 0.8): chosen here, so the fit must return 2 and 0.8.
    nbytes = np.geomspace(1e4, 1e9, 30)
    measured = 2e-6 + nbytes / (3.35e12 * 0.8)

    def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        return p[0] * 1e-6 + nbytes[sel] / (3.35e12 * p[1])

    result = fit(model, measured, [5.0, 0.5], [0.0, 0.01], [100.0, 1.0])
    assert result.params == pytest.approx([2.0, 0.8], rel=1e-4)
    assert result.median_rel_err < 1e-6 and result.held_out > 0
    cv = fit(model, measured, [5.0, 0.5], [0.0, 0.01], [100.0, 1.0], folds=5)
    assert cv.folds == 5 and cv.held_out == cv.points == 30
    assert cv.p90_rel_err < 1e-6


def test_gemm_curve_fitted_from_raw_measurements() -> None:
    truth = np.array([4.0, 0.75, 0.85, 40.0, 100.0, 150.0])
    peak, bw = H100.peak_flop_per_s("bf16"), H100.hbm_bandwidth_bytes_per_s
    records = []
    for n, k in ((1536, 8192), (8192, 1024), (4096, 4096), (28672, 4096), (7168, 2048)):
        for m in (1, 4, 16, 64, 256, 1024, 4096, 16384):
            arr = [np.array([float(x)]) for x in (m, n, k)]
            nbytes = gemm_bytes(*arr, "bf16")
            t = float(gemm_seconds(truth, *arr, nbytes, peak, bw)[0])
            records.append(
                {
                    "op": "gemm",
                    "dtype": "bf16",
                    "m": m,
                    "n": n,
                    "k": k,
                    "kernel": "synthetic",
                    **timing(t),
                }
            )
    (curve,), checks = fit_gemms(raw_doc(records), H100)
    assert checks == []
    e = curve.entry
    got = [e["latency_us"], e["compute_efficiency"], e["bandwidth_efficiency"]]
    assert got == pytest.approx(truth[:3].tolist(), rel=1e-2)
    assert curve.result.median_rel_err < 1e-3


def test_gqa_decode_curve_and_fastest_backend_per_shape() -> None:
    # Decode is memory-bound: t = 6 us + 0.1 us x sequences + cache bytes / (bw x 0.9).
    curve = AttentionCurve(
        latency_us=6.0,
        per_sequence_us=0.1,
        compute_efficiency=0.5,
        bandwidth_efficiency=0.9,
        half_query_tokens=0.0,
    )
    peak, bw = H100.peak_flop_per_s("bf16"), H100.hbm_bandwidth_bytes_per_s
    records = []
    for b in (1, 4, 16, 64, 256):
        for ctx in (1024, 4096, 16384):
            # GQA 8 heads over 1 KV head of 128: 2 x 128 x 2 B per token of K and V.
            nbytes = b * ctx * 2 * 128 * 2
            flops = b * 2 * 2 * 8 * 128 * ctx
            t = float(op_seconds(attention_op(curve, peak, bw, flops, flops, nbytes, b)))
            shape = {
                "op": "attention",
                "kind": "gqa_decode",
                "batch": b,
                "q_tokens": 1,
                "context": ctx,
                "heads": 8,
                "kv_heads": 1,
                "head_dim": 128,
                "v_head_dim": 128,
                "causal": False,
            }
            records.append({**shape, "kernel": "fast", **timing(t)})
            records.append({**shape, "kernel": "slow", **timing(3 * t)})  # never chosen
    curves, checks = fit_attention(raw_doc(records), H100)
    (c,) = curves
    assert c.kernels == ("fast",)
    assert c.entry["bandwidth_efficiency"] == pytest.approx(0.9, rel=1e-2)
    assert c.entry["latency_us"] == pytest.approx(6.0, rel=5e-2)
    assert c.result.median_rel_err < 1e-3 and not checks


def test_a_curve_with_too_few_points_is_left_out() -> None:
    records = [
        {
            "op": "elementwise",
            "name": "copy",
            "tokens": 1,
            "hidden": 8,
            "bytes": 32,
            "kernel": "k",
            **timing(1e-6),
        }
    ]
    assert fit_all(raw_doc(records), H100).curves == []


def test_time_scale_multiplies_every_operator_time() -> None:
    base = efficiency_for(H100, "vllm")
    scaled = efficiency_for(H100, "vllm", time_scale=2.0)
    m = np.array([1.0, 64.0, 8192.0])

    def gemm_s(eff: object) -> np.ndarray:
        t = eff.gemm_time("bf16", "bf16", m, 4096, 4096, 2 * m * 4096**2, 2 * 4096**2)  # type: ignore[attr-defined]
        return op_seconds(t)

    # Fixed times x2 and efficiencies / 2: every term of fixed + max(compute, memory) x2.
    assert gemm_s(scaled) == pytest.approx(2.0 * gemm_s(base))
    assert scaled.step_overhead_s == base.step_overhead_s  # host time is not scaled
