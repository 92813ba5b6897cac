"""kvplan's MoE and attention operator times against measured kernels.

Expected values are measured operator times: excerpts of AIConfigurator 0.12.0's
silicon-measured tables (``tests/plan/data/aic_*.csv``, written by
``benchmarks/fit/excerpt.py``; each names its table, engine and version). The times come
through the planner's own step model (one layer's share of a decode step's operator), so
this checks shapes, sharding, routing and the fitted curves together; tolerances follow
the fits' held-out errors (``hardware_profiles/fits``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.perf import decode_step, step_model
from planner.schema import Deployment

DATA = Path(__file__).parent / "data"
V3_MOE_LAYERS = 58
V3_LAYERS = 61


def rows(name: str) -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / name).read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def assert_near_measured(
    ratios: list[float], points: int, median_err: float = 0.2, worst: float = 0.5
) -> None:
    """kvplan / measured: median |ratio - 1| below ``median_err``, every point within
    ``worst``."""
    ratio = np.array(ratios)
    assert len(ratio) == points
    assert np.median(np.abs(ratio - 1)) < median_err, ratio
    assert np.all(np.abs(ratio - 1) < worst), ratio


def v3_on_h200(engine: str) -> Deployed:
    # 8 GPUs, TP 8, experts over all 8 (every rank holds every token, as the collector's
    # fused-MoE calls do), uniform routing (the table's "balanced" rows).
    deployment = Deployment(
        engine=engine,  # type: ignore[arg-type]
        gpus_per_replica=8,
        moe_routing_alpha=None,
        max_batched_tokens=16_384,
    )
    return Deployed.build(load_model("deepseek-v3"), load_gpu("h200"), deployment)


def test_fused_moe_matches_measured_sglang_kernels() -> None:
    # A known miss, kept visible: SGLang's fused MoE with experts split over 8 ranks that
    # all hold every token costs nearly the same from 8 to 64 ranks at 16K tokens (every
    # token-expert pair is handled on every rank); kvplan's per-pair term (one curve for
    # all of this shape's layouts, held-out p90 32%) catches part of it, so it runs up to
    # 2.2x fast at 4K-16K tokens here, within 25% below 1K.
    model = step_model(v3_on_h200("sglang"))
    ratios = []
    for r in rows("aic_moe_h200_sxm_sglang_deepseek_v3.csv"):
        tokens = float(r["num_tokens"])
        timeline = model.linear_timeline(tokens, sampled_tokens=0.0)
        per_layer = float(timeline.by_op["routed_experts"]) / V3_MOE_LAYERS
        ratios.append(per_layer / (float(r["latency"]) * 1e-3))
    assert_near_measured(ratios, 7, median_err=0.35, worst=0.6)
    assert all(abs(x - 1) < 0.25 for x in ratios[1:4]), ratios  # 8-256 tokens


def test_mla_decode_kernel_matches_measured_trtllm_kernels() -> None:
    deployed = v3_on_h200("trtllm")
    ratios = []
    for r in rows("aic_mla_decode_h200_sxm_trtllm.csv"):
        batch, context = int(r["batch_size"]), int(r["step"]) + 1
        step = decode_step(deployed, batch, context)
        per_layer = float(step.by_operator_s["attention:MLA"]) / V3_LAYERS
        ratios.append(per_layer / (float(r["latency"]) * 1e-3))
    assert_near_measured(ratios, 12)
