"""Dense GEMM curves (``GemmCurve``) from AIConfigurator's ``gemm_perf`` tables."""

from __future__ import annotations

import numpy as np
from fitting import fit
from tables import find_table

from planner.dtypes import storage_format
from planner.hardware import GPU
from planner.plan.efficiency.curves import gemm_op, op_seconds
from planner.plan.efficiency.schema import GemmCurve

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


def gemm_bytes(m: np.ndarray, n: np.ndarray, k: np.ndarray, fmt: str) -> np.ndarray:
    """Weights (scales included) plus BF16 activations in and out, as kvplan counts them."""
    f = storage_format(fmt)
    weight = {(kk, nn): f.tensor_bytes(int(kk), int(nn)) for kk, nn in set(zip(k, n, strict=True))}
    w = np.array([weight[(kk, nn)] for kk, nn in zip(k, n, strict=True)])
    return w + m * (k + n) * 2


def gemm_seconds(
    p: np.ndarray,
    m: np.ndarray,
    n: np.ndarray,
    k: np.ndarray,
    nbytes: np.ndarray,
    peak: float,
    bw: float,
) -> np.ndarray:
    curve = GemmCurve(
        latency_us=p[0],
        compute_efficiency=p[1],
        bandwidth_efficiency=p[2],
        half_m=p[3],
        half_n=p[4],
        half_k=p[5],
    )
    return op_seconds(gemm_op(curve, peak, bw, m, n, k, 2 * m * n * k, nbytes))


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
        result = fit(
            lambda p, sel: gemm_seconds(p, m[sel], n[sel], k[sel], nbytes[sel], peak, bw),  # noqa: B023
            measured,
            [5.0, 0.8, 0.8, 64.0, 64.0, 64.0],
            [0.0, 0.02, 0.02, 0.0, 0.0, 0.0],
            [500.0, 1.0, 1.0, 1e5, 1e5, 1e5],
        )
        p = result.params
        out[cls] = {
            "latency_us": round(float(p[0]), 3),
            "compute_efficiency": round(float(p[1]), 4),
            "bandwidth_efficiency": round(float(p[2]), 4),
            "half_m": round(float(p[3]), 2),
            "half_n": round(float(p[4]), 2),
            "half_k": round(float(p[5]), 2),
            "fit": result.quality(table.path, SELECTION.format(dtype=dtype)),
        }
        rows.append((f"gemm.{cls}", result))
    return out, rows, table.version
