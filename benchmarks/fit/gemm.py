"""Dense GEMM curves (``GemmCurve``) from AIConfigurator's ``gemm_perf`` tables."""

# ruff: noqa: B023  (each model closure is consumed by fit() within its loop iteration)

from __future__ import annotations

from dataclasses import replace

import numpy as np
from fitting import fit
from tables import find_table

from planner.calibrate.fit import gemm_bytes, gemm_entry, gemm_seconds
from planner.hardware import GPU

# AIConfigurator gemm_dtype -> (kvplan GEMM class, kvplan storage format, math dtype).
DTYPES = {
    "bfloat16": ("bf16", "bf16", "bf16"),
    "fp8": ("fp8", "fp8", "fp8"),
    "fp8_block": ("fp8_block", "fp8_w128", "fp8"),
    "nvfp4": ("fp4", "nvfp4", "fp4"),
}
# Shapes of real weight matrices: tiny n or k (32, 64, 128) only occur for routers and
# selector heads and run other kernels; they are left out of the fit.
MIN_DIM = 256
SELECTION = (
    "gemm_dtype == '{dtype}', n >= 256 and k >= 256; where the table has several kernels "
    "for one shape, the fastest"
)
# vLLM's block-FP8 GEMM rows carry a per-call floor (about 60-85 us on H100/H200, 150 us
# on B200, whatever the shape) that vLLM's own attention-module tables (the same GEMMs
# inside a module forward, measured by the same collector) do not show: a host-side cost
# a CUDA-graph replay does not pay. For these, the curve is fitted to the rows whose
# roofline time (FLOPs at the GPU's dense peak, or bytes at its HBM bandwidth, whichever is
# longer) is at least FLOOR_MARGIN x the table's fastest row: there the GPU's own work
# outlasts the floor whatever the kernel's efficiency, so the row times the kernel. (An
# earlier selection kept rows whose *measured* time cleared the margin: on B200 these are
# almost all large-M rows plus floor-noise rows, and the curve fitted to them was 2.2x
# slower than the table on its own GPU-bound rows of M <= 512, the decode shapes.) The
# fixed time is that of the engine's per-tensor FP8 GEMMs (the same kernel family without
# the block-quant call).
HOST_FLOOR = {("vllm", "fp8_block")}
FLOOR_MARGIN = 2.0
FLOOR_SELECTION = (
    "; rows whose roofline time at the GPU's peaks is >= {floor_us:.0f} us only "
    "({margin:.0f} x the fastest row: below it a per-call host floor that vLLM's module "
    "tables contradict), fixed time from the fp8 curve"
)


def fit_gemm(system: str, engine: str, gpu: GPU) -> tuple[dict[str, dict], list[tuple], str]:
    table = find_table(system, "gemm", engine, "gemm_perf.parquet")
    if table is None:
        return {}, [], ""
    out: dict[str, dict] = {}
    rows = []
    frame = table.frame
    for dtype, (cls, fmt, math) in DTYPES.items():
        d = frame[(frame.gemm_dtype == dtype) & (frame.n >= MIN_DIM) & (frame.k >= MIN_DIM)]
        if d.empty or not gpu.profile.compute.get(math) or gpu.math_dtype(math) != math:  # type: ignore[call-overload]
            continue
        d = d.groupby(["m", "n", "k"], as_index=False).latency.min()
        m, n, k = (d[c].to_numpy(dtype=float) for c in ("m", "n", "k"))
        measured = d.latency.to_numpy() * 1e-3
        peak = gpu.peak_flop_per_s(math)
        bw = gpu.hbm_bandwidth_bytes_per_s
        nbytes = gemm_bytes(m, n, k, fmt)
        selection = SELECTION.format(dtype=dtype)
        if (engine, dtype) in HOST_FLOOR and "fp8" in out:
            floor_s = FLOOR_MARGIN * float(measured.min())
            roofline_s = np.maximum(2 * m * n * k / peak, nbytes / bw)
            keep = roofline_s >= floor_s
            m, n, k, nbytes, measured = m[keep], n[keep], k[keep], nbytes[keep], measured[keep]
            latency = float(out["fp8"]["latency_us"])
            result = fit(
                lambda p, sel: gemm_seconds(
                    np.r_[latency, p],
                    m[sel],
                    n[sel],
                    k[sel],
                    nbytes[sel],
                    peak,
                    bw,
                ),
                measured,
                [0.8, 0.8, 64.0, 64.0, 64.0],
                [0.02, 0.02, 0.0, 0.0, 0.0],
                [1.0, 1.0, 1e5, 1e5, 1e5],
            )
            result = replace(result, params=np.r_[latency, result.params])
            selection += FLOOR_SELECTION.format(floor_us=floor_s * 1e6, margin=FLOOR_MARGIN)
        else:
            result = fit(
                lambda p, sel: gemm_seconds(p, m[sel], n[sel], k[sel], nbytes[sel], peak, bw),
                measured,
                [5.0, 0.8, 0.8, 64.0, 64.0, 64.0],
                [0.0, 0.02, 0.02, 0.0, 0.0, 0.0],
                [500.0, 1.0, 1.0, 1e5, 1e5, 1e5],
            )
        out[cls] = gemm_entry(result, table.path, selection)
        rows.append((f"gemm.{cls}", result))
    return out, rows, table.version
