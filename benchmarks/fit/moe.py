"""Fused MoE curves (``GroupedGemmCurve``) from AIConfigurator's ``moe_perf`` tables.

Each row is one fused-MoE call of ``num_tokens`` tokens on the busiest expert-parallel rank
(AIConfigurator's collector swaps the most loaded rank to rank 0 and times it). kvplan's
routing model gives that rank's assignments R and active experts A for the row's routing
(``balanced`` -> uniform, ``power_law_<alpha>``), so the fit sees the same quantities the
planner feeds the curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fitting import Fit, fit
from tables import find_table

from planner.dtypes import storage_format
from planner.hardware import GPU
from planner.plan.efficiency.curves import grouped_gemm_op, op_seconds
from planner.plan.efficiency.routing import busiest_rank
from planner.plan.efficiency.schema import GroupedGemmCurve

# moe_dtype -> (kvplan GEMM class, weight storage format, math dtype)
DTYPES = {
    "bfloat16": ("bf16", "bf16", "bf16"),
    "fp8": ("fp8", "fp8", "fp8"),
    "fp8_block": ("fp8_block", "fp8_w128", "fp8"),
    "nvfp4": ("fp4", "nvfp4", "fp4"),
}
SELECTION = (
    "moe_dtype == '{dtype}', the shapes of large fine-grained MoE models (hidden >= 4096, "
    ">= 128 experts: DeepSeek-V3/V4, Qwen3-235B, Kimi and similar), every moe_tp x moe_ep "
    "and routing (balanced, power-law 1.01 and 1.2); where the table has several kernels "
    "for a row, the fastest"
)
# Fused-MoE kernels run at shape-dependent efficiencies that one curve cannot follow over
# the table's whole range (hidden 1024-7168, 8-896 experts); the curve is fitted to the
# shapes kvplan's MoE models have.
MIN_HIDDEN = 4096
MIN_EXPERTS = 128


def _alpha(distribution: str) -> float | None:
    if distribution.startswith("power_law_"):
        return float(distribution.removeprefix("power_law_"))
    return None


def routing_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(R, A) per row from kvplan's routing model."""
    r = np.zeros(len(frame))
    a = np.zeros(len(frame))
    keys = ["num_experts", "topk", "moe_ep_size", "distribution"]
    for (e, k, ep, dist), idx in frame.groupby(keys).indices.items():
        tokens = frame.num_tokens.to_numpy(dtype=float)[idx]
        rr, aa = busiest_rank(int(e), int(k), int(ep), tokens, _alpha(str(dist)))
        r[idx], a[idx] = rr, aa
    return r, a


KEYS = [
    "num_tokens",
    "hidden_size",
    "inter_size",
    "topk",
    "num_experts",
    "moe_tp_size",
    "moe_ep_size",
    "distribution",
]
SHAPE = ["hidden_size", "inter_size", "num_experts", "topk"]
MIN_SHAPE_ROWS = 300
SHAPE_SELECTION = (
    "moe_dtype == '{dtype}', hidden {h}, expert width {i}, {e} experts, top-{k}: every "
    "moe_tp x moe_ep, token count and routing of this shape; fastest kernel per row"
)
# One curve over every expert tensor-parallel size leaves a trend along that axis (each
# rank's GEMMs are 1/moe_tp as wide): on TensorRT-LLM's tables the shape curves ran
# expert-parallel rows (moe_tp 1, DP-attention decode) 1.26x slow and moe_tp 16 rows 0.55-0.68x
# fast. Each shape also gets a curve per moe_tp with enough rows; the all-sizes curve stays
# for the sizes without one.
TP_SELECTION = (
    "moe_dtype == '{dtype}', hidden {h}, expert width {i}, {e} experts, top-{k}, moe_tp "
    "{tp}: every moe_ep, token count and routing of this shape and split; fastest kernel "
    "per row"
)


def _fit_frame(frame: pd.DataFrame, fmt: str, math: str, gpu: GPU) -> Fit:
    d = frame.groupby(KEYS, as_index=False).latency.min()
    r, a = routing_columns(d)
    h = d.hidden_size.to_numpy(dtype=float)
    inter = d.inter_size.to_numpy(dtype=float) / d.moe_tp_size.to_numpy(dtype=float)
    f = storage_format(fmt)
    bytes_of = {
        (hh, ii): f.tensor_bytes(int(hh), int(2 * ii)) + f.tensor_bytes(int(ii), int(hh))
        for hh, ii in set(zip(h, inter, strict=True))
    }
    per_expert = np.array([bytes_of[(hh, ii)] for hh, ii in zip(h, inter, strict=True)])
    nbytes = a * per_expert + r * (2 * h + 3 * inter) * 2
    # The collector hands every rank all T tokens (experts masked by an expert map):
    # T k pairs, as kvplan counts them without an all-to-all.
    pair_bytes = d.num_tokens.to_numpy(dtype=float) * d.topk.to_numpy(dtype=float) * h * 2
    flops = 6 * h * inter
    peak = gpu.peak_flop_per_s(math)
    bw = gpu.hbm_bandwidth_bytes_per_s

    def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        curve = GroupedGemmCurve(
            latency_us=p[0],
            compute_efficiency=p[1],
            bandwidth_efficiency=p[2],
            half_tokens_per_expert=p[3],
            pair_bandwidth_efficiency=p[4],
        )
        op = grouped_gemm_op(
            curve, peak, bw, r[sel], a[sel], flops[sel], nbytes[sel], pair_bytes[sel]
        )
        return op_seconds(op)

    return fit(
        model,
        d.latency.to_numpy() * 1e-3,
        [20.0, 0.6, 0.6, 32.0, 0.3],
        [0.0, 0.02, 0.02, 0.0, 0.01],
        [2000.0, 1.0, 1.0, 1e4, 1.0],
    )


def _curve(result: Fit) -> dict:
    p = result.params
    return {
        "latency_us": round(float(p[0]), 3),
        "compute_efficiency": round(float(p[1]), 4),
        "bandwidth_efficiency": round(float(p[2]), 4),
        "half_tokens_per_expert": round(float(p[3]), 2),
        "pair_bandwidth_efficiency": round(float(p[4]), 4),
    }


def _frames(table_frame: pd.DataFrame, gpu: GPU):  # type: ignore[no-untyped-def]
    for dtype, (cls, fmt, math) in DTYPES.items():
        f = table_frame
        frame = f[
            (f.moe_dtype == dtype) & (f.hidden_size >= MIN_HIDDEN) & (f.num_experts >= MIN_EXPERTS)
        ]
        if frame.empty or gpu.math_dtype(math) != math:
            continue
        yield dtype, cls, fmt, math, frame


def fit_moe(system: str, engine: str, gpu: GPU) -> tuple[dict[str, dict], list[tuple], str]:
    """One curve per GEMM class over every large MoE shape in the table."""
    table = find_table(system, "moe", engine, "moe_perf.parquet")
    if table is None:
        return {}, [], ""
    out: dict[str, dict] = {}
    rows = []
    for dtype, cls, fmt, math, frame in _frames(table.frame, gpu):
        result = _fit_frame(frame, fmt, math, gpu)
        out[cls] = _curve(result) | {
            "fit": result.quality(table.path, SELECTION.format(dtype=dtype))
        }
        rows.append((f"grouped_gemm.{cls}", result))
    return out, rows, table.version


def _shape_entry(
    cls: str, shape: tuple, fit_result: Fit, path: str, selection: str, **extra: int
) -> dict:
    h, i, e, k = shape
    key = {
        "gemm_class": cls,
        "hidden_size": int(h),
        "inter_size": int(i),
        "num_experts": int(e),
        "experts_per_token": int(k),
    }
    return key | extra | _curve(fit_result) | {"fit": fit_result.quality(path, selection)}


def fit_moe_shapes(system: str, engine: str, gpu: GPU) -> tuple[list[dict], list[tuple], str]:
    """A curve per expert shape with enough rows (engines tune their kernels per shape), and
    per expert tensor-parallel size of it with enough rows (TP_SELECTION)."""
    table = find_table(system, "moe", engine, "moe_perf.parquet")
    if table is None:
        return [], [], ""
    out: list[dict] = []
    rows = []
    for dtype, cls, fmt, math, frame in _frames(table.frame, gpu):
        for shape, shape_frame in frame.groupby(SHAPE):
            if len(shape_frame) < MIN_SHAPE_ROWS:
                continue
            h, i, e, k = shape
            result = _fit_frame(shape_frame, fmt, math, gpu)
            selection = SHAPE_SELECTION.format(dtype=dtype, h=h, i=i, e=e, k=k)
            out.append(_shape_entry(cls, shape, result, table.path, selection))
            rows.append((f"moe.{cls}@{h}x{i}x{e}k{k}", result))
            for tp, tp_frame in shape_frame.groupby("moe_tp_size"):
                if len(tp_frame) < MIN_SHAPE_ROWS:
                    continue
                result = _fit_frame(tp_frame, fmt, math, gpu)
                selection = TP_SELECTION.format(dtype=dtype, h=h, i=i, e=e, k=k, tp=tp)
                entry = _shape_entry(cls, shape, result, table.path, selection, moe_tp_size=int(tp))
                out.append(entry)
                rows.append((f"moe.{cls}@{h}x{i}x{e}k{k}tp{tp}", result))
    return out, rows, table.version
