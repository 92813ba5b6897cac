"""kvplan's dense GEMM time against measured kernels it was fitted on.

Expected values are measured operator times: small excerpts of AIConfigurator 0.12.0's
silicon-measured GEMM tables (``tests/plan/data/aic_gemm_*.csv``, written by
``benchmarks/fit/excerpt.py``; each file names its table, engine and version). The fit
saw 80% of each full table, so this checks the stored curve reproduces measurements at the
shapes real layers run, within the error the fit reports (p90 20-30%).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from planner.hardware import load_gpu
from planner.plan.efficiency import efficiency_for
from planner.plan.efficiency.curves import op_seconds

DATA = Path(__file__).parent / "data"
CASES = [
    # file, GPU, engine, GEMM class, math dtype, weight bytes per element (+ scales)
    ("aic_gemm_h200_sxm_vllm_bfloat16.csv", "h200", "vllm", "bf16", "bf16", 2.0, 0),
    ("aic_gemm_h100_sxm_trtllm_fp8_block.csv", "h100-sxm", "trtllm", "fp8_block", "fp8", 1.0, 4),
]


def measured(name: str) -> list[tuple[int, int, int, float]]:
    lines = [ln for ln in (DATA / name).read_text().splitlines() if not ln.startswith("#")]
    return [
        (int(r["m"]), int(r["n"]), int(r["k"]), float(r["latency"]) * 1e-3)
        for r in csv.DictReader(lines)
    ]


@pytest.mark.parametrize(("name", "gpu", "engine", "cls", "math", "bpe", "scale"), CASES)
def test_gemm_time_matches_measured_kernels(
    name: str, gpu: str, engine: str, cls: str, math: str, bpe: float, scale: int
) -> None:
    eff = efficiency_for(load_gpu(gpu), engine)
    ratios = []
    for m, n, k, t in measured(name):
        # Weights (FP8 block: one FP32 scale per 128 x 128) and BF16 activations in and out.
        weights = n * k * bpe + scale * -(-n // 128) * -(-k // 128)
        nbytes = weights + m * (k + n) * 2
        model = op_seconds(eff.gemm_time(cls, math, m, n, k, 2 * m * n * k, nbytes))  # type: ignore[arg-type]
        ratios.append(float(model) / t)
    r = np.array(ratios)
    assert len(r) >= 30
    assert np.median(np.abs(r - 1)) < 0.15, r
    # The worst points (FP8 block GEMMs at 256 tokens) run 1.5x faster than the curve.
    assert np.all(np.abs(r - 1) < 0.55), r
