"""Fused-MoE curves per expert tensor-parallel size (grouped_gemm_by_shape moe_tp_size):
the curve of the split is used, the shape's all-sizes curve for splits without one, and a
time correction scales both."""

from __future__ import annotations

import numpy as np
import pytest

from planner.hardware import load_gpu
from planner.plan.efficiency import efficiency_for
from planner.plan.efficiency.curves import op_seconds
from planner.plan.efficiency.load import fits_dir, fits_from_file

B200 = load_gpu("b200")
# DeepSeek-V3's routed experts: hidden 7168, width 2048, 256 experts, top-8, block FP8.
V3 = (7168, 2048, 256, 8)


def _shaped(moe_tp: int | None) -> object:
    fits = fits_from_file(fits_dir() / "b200" / "trtllm.yaml")
    for c in fits.grouped_gemm_by_shape:
        key = (c.hidden_size, c.inter_size, c.num_experts, c.experts_per_token)
        if c.gemm_class == "fp8_block" and key == V3 and c.moe_tp_size == moe_tp:
            return c
    raise AssertionError(f"no fp8_block V3 curve for moe_tp {moe_tp}")


def _by_hand(c: object, r: float, a: float, f: float, nbytes: float, pair: float) -> float:
    """The GroupedGemmCurve formula (planner/plan/efficiency/schema.py docstring)."""
    peak = B200.peak_flop_per_s("fp8")
    bw = B200.hbm_bandwidth_bytes_per_s
    compute = f * (r + c.half_tokens_per_expert * a) / (peak * c.compute_efficiency)  # type: ignore[attr-defined]
    memory = nbytes / (bw * c.bandwidth_efficiency)  # type: ignore[attr-defined]
    routing = pair / (bw * c.pair_bandwidth_efficiency)  # type: ignore[attr-defined]
    return c.latency_us * 1e-6 + max(compute, memory) + routing  # type: ignore[attr-defined]


# 128 assignments over 32 active experts of 44 MB each (a decode step at EP 8).
R, A, F = 128.0, 32.0, 6.0 * 7168 * 2048
NBYTES, PAIR = 32 * 44.04e6, 128 * 7168 * 2.0


@pytest.mark.parametrize("moe_tp", [1, 8])
def test_the_split_picks_its_own_curve(moe_tp: int) -> None:
    eff = efficiency_for(B200, "trtllm")
    t = eff.grouped_gemm_time("fp8_block", "fp8", R, A, F, NBYTES, PAIR, V3, moe_tp)
    expected = _by_hand(_shaped(moe_tp), R, A, F, NBYTES, PAIR)
    assert float(op_seconds(t)) == pytest.approx(expected, rel=1e-9)


def test_a_split_without_a_curve_uses_the_shape_curve_over_every_split() -> None:
    eff = efficiency_for(B200, "trtllm")
    # TensorRT-LLM's table has moe_tp 1-16 for this shape: 64 has no curve of its own.
    t = eff.grouped_gemm_time("fp8_block", "fp8", R, A, F, NBYTES, PAIR, V3, 64)
    expected = _by_hand(_shaped(None), R, A, F, NBYTES, PAIR)
    assert float(op_seconds(t)) == pytest.approx(expected, rel=1e-9)


def test_time_scale_scales_the_shaped_curves_too() -> None:
    base = efficiency_for(B200, "trtllm")
    scaled = efficiency_for(B200, "trtllm", time_scale=2.0)
    for moe_tp in (1, 64):
        args = ("fp8_block", "fp8", np.array([R]), A, F, NBYTES, PAIR, V3, moe_tp)
        t0 = op_seconds(base.grouped_gemm_time(*args))  # type: ignore[arg-type]
        t1 = op_seconds(scaled.grouped_gemm_time(*args))  # type: ignore[arg-type]
        assert t1 == pytest.approx(2.0 * t0)
