"""Collective and elementwise curves from AIConfigurator's communication and quantisation
tables.

- ``all_reduce_scale_up``: the engine's custom all-reduce (CUDA-graph rows) and NCCL's,
  the faster at each size (engines switch to NCCL for large messages), 2-8 GPUs in one
  NVLink domain; each GPU sends 2 (n-1)/n x the message (ring). The tables' message_size
  counts BF16/FP16 elements, not bytes: read as bytes, NCCL's largest all-reduces would
  reach half the bus bandwidth nccl-tests report on these systems, and AIConfigurator's
  own estimates look the tables up with tokens x hidden elements.
- ``all_to_all_scale_up`` / ``_scale_out``: DeepEP dispatch (FP8) + combine (BF16) per
  token count, the faster of its low-latency and normal kernels (engines use the first for
  decode, the second for prefill). A token goes once to every rank holding one of its
  experts: n (1 - (1 - 1/n)^k) ranks for k experts over n ranks (kvplan's
  ``planner.plan.perf`` counts it the same way); across nodes, once to every other node
  (then NVLink). Cross-node rows exist only in SGLang 0.5.6.post2's DeepEP tables (H100,
  H200); DeepEP is the same library under every engine, so those rows serve all three.
- ``elementwise``: vLLM's static per-tensor FP8 quantisation kernel
  (``static_scaled_fp8_quant``: reads BF16, writes FP8), one streaming kernel like a norm,
  residual add or activation, from its ``scale_matrix`` table, for every engine: rows
  moving at most 1 MB (the fixed time) or at least 256 MB (HBM streaming; rows between run
  partly from L2, above HBM bandwidth).
  The other quantisation tables do not time one kernel: the ``compute_scale`` tables time
  a dynamic quantisation as torch ops (TensorRT-LLM's: an absolute-max reduction, a
  division and the cast, ~7 µs at the smallest sizes, the launch cost of several kernels)
  or the difference of two kernels (vLLM's and SGLang's: vLLM's large rows imply 7 TB/s on
  a 4.8 TB/s H200), and SGLang's ``scale_matrix`` rows stay near 0.4 TB/s even at the
  largest sizes, a tenth of a streaming kernel's rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fitting import Fit, fit
from tables import Table, find_table

from planner.hardware import GB, GPU
from planner.plan.efficiency.curves import collective_s, memory_op, op_seconds
from planner.plan.efficiency.schema import CollectiveCurve, MemoryCurve
from planner.plan.perf import ALL_TO_ALL_BYTES_PER_VALUE, destinations_per_token

DOMAIN_GPUS = 8


def _entry(result: Fit, table: Table, selection: str, memory: bool = False) -> dict:
    p = result.params
    out = {"latency_us": round(float(p[0]), 3), "bandwidth_efficiency": round(float(p[1]), 4)}
    out["fit"] = result.quality(table.path, selection)  # type: ignore[assignment]
    return out


def _fit_collective(bytes_sent: np.ndarray, measured: np.ndarray, link: float) -> Fit:
    def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        curve = CollectiveCurve(latency_us=p[0], bandwidth_efficiency=p[1])
        return collective_s(curve, link, bytes_sent[sel])

    return fit(model, measured, [10.0, 0.7], [0.0, 0.02], [2000.0, 1.0])


def _all_reduce(system: str, engine: str, gpu: GPU) -> tuple[dict, Fit] | None:
    custom = find_table(system, "comm", engine, "custom_allreduce_perf.parquet")
    nccl = find_table(system, "comm", "nccl", "nccl_perf.parquet")
    frames = []
    if custom is not None:
        c = custom.frame
        graph = c[c.kernel_source.str.contains("graph")] if "kernel_source" in c else c
        frames.append((graph if not graph.empty else c)[["num_gpus", "message_size", "latency"]])
    if nccl is not None:
        n = nccl.frame
        n = n[(n.op_name == "all_reduce") & (n.nccl_dtype == "half")]
        frames.append(n[["num_gpus", "message_size", "latency"]])
    if not frames:
        return None
    d = pd.concat(frames).groupby(["num_gpus", "message_size"], as_index=False).latency.min()
    n_gpus = d.num_gpus.to_numpy(dtype=float)
    message_bytes = d.message_size.to_numpy(dtype=float) * 2  # BF16 elements
    ring = 2 * (n_gpus - 1) / n_gpus * message_bytes
    result = _fit_collective(ring, d.latency.to_numpy() * 1e-3, gpu.link_bytes_per_s_one_way)
    table = custom or nccl
    assert table is not None
    selection = (
        f"all-reduce, BF16, 2-8 GPUs, 128-512M elements: the faster of {engine}'s custom "
        "all-reduce (CUDA-graph rows) and NCCL (nccl_perf, all_reduce, half) at each size"
    )
    return _entry(result, table, selection), result


def _deepep_frames(system: str, engine: str) -> list[tuple[pd.DataFrame, str]]:
    """(rows with node_num, hidden, tokens per rank, topk, seconds, table path)."""
    out = []
    if engine in ("vllm", "trtllm"):
        t = find_table(system, "comm", engine, "moe_a2a_perf.parquet")
        if t is not None:
            f = t.frame.groupby(
                [
                    "comm_backend",
                    "node_num",
                    "ep_size",
                    "hidden_size",
                    "topk",
                    "num_tokens",
                    "phase",
                ],
                as_index=False,
            ).latency.min()
            both = f.groupby(
                ["comm_backend", "node_num", "ep_size", "hidden_size", "topk", "num_tokens"],
                as_index=False,
            ).latency.sum()
            both = both.groupby(
                ["node_num", "ep_size", "hidden_size", "topk", "num_tokens"], as_index=False
            ).latency.min()
            both["seconds"] = both.latency * 1e-6
            out.append((both, t.path))
    for name, dispatch, combine in (
        ("wideep_deepep_ll_perf.parquet", "dispatch_avg_t_us", "combine_avg_t_us"),
        ("wideep_deepep_normal_perf.parquet", "dispatch_transmit_us", "combine_transmit_us"),
    ):
        for version_engine in ("sglang",):
            t = find_table(system, "comm", version_engine, name)
            if t is None:
                continue
            f = t.frame.rename(columns={"num_token": "num_tokens", "num_topk": "topk"})
            f = f.assign(
                seconds=(f[dispatch] + f[combine]) * 1e-6, ep_size=f.node_num * DOMAIN_GPUS
            )
            f = f.groupby(
                ["node_num", "ep_size", "hidden_size", "topk", "num_tokens"], as_index=False
            ).seconds.min()
            out.append((f, t.path))
    return out


def _all_to_all_bytes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(bytes each GPU sends inside its node, across nodes) per row, as kvplan counts them."""
    ep = frame.ep_size.to_numpy(dtype=float)
    k = frame.topk.to_numpy(dtype=float)
    per_token = frame.hidden_size.to_numpy(dtype=float) * ALL_TO_ALL_BYTES_PER_VALUE
    tokens = frame.num_tokens.to_numpy(dtype=float)
    nodes = np.maximum(ep / DOMAIN_GPUS, 1)
    inside, across = destinations_per_token(ep, k, DOMAIN_GPUS)
    del nodes
    return tokens * inside * per_token, tokens * across * per_token


def _all_to_all(system: str, engine: str, gpu: GPU) -> tuple[dict[str, dict], list[tuple]]:
    frames = _deepep_frames(system, engine)
    if not frames:
        return {}, []
    out: dict[str, dict] = {}
    rows: list[tuple] = []
    # Inside one node: the engine's own table if it has one, else SGLang's.
    own = [f for f in frames if engine in f[1]] or frames
    single = pd.concat([f for f, _ in own])
    single = (
        single[single.node_num == 1]
        .groupby(["hidden_size", "topk", "num_tokens"], as_index=False)
        .agg(
            seconds=("seconds", "min"), ep_size=("ep_size", "first"), node_num=("node_num", "first")
        )
    )
    inside, _ = _all_to_all_bytes(single)
    link = gpu.link_bytes_per_s_one_way
    result = _fit_collective(inside, single.seconds.to_numpy(), link)
    path = own[0][1]
    selection = (
        "DeepEP dispatch + combine inside one node (8 GPUs), every hidden size, top-k and "
        "token count; the faster of the low-latency and normal kernels"
    )
    out["all_to_all_scale_up"] = _entry(result, Table(pd.DataFrame(), path, ""), selection)
    rows.append(("collectives.all_to_all_scale_up", result))
    # Across nodes (SGLang 0.5.6.post2 tables with 2-8 nodes).
    multi = pd.concat([f for f, _ in frames])
    multi = (
        multi[multi.node_num > 1]
        .groupby(["node_num", "ep_size", "hidden_size", "topk", "num_tokens"], as_index=False)
        .seconds.min()
    )
    if not multi.empty and gpu.profile.interconnect.scale_out_gb_per_s:
        inside_m, across_m = _all_to_all_bytes(multi)
        up = CollectiveCurve(
            latency_us=float(result.params[0]), bandwidth_efficiency=float(result.params[1])
        )
        inside_s = collective_s(up, link, inside_m)
        nic = gpu.profile.interconnect.scale_out_gb_per_s * GB

        def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
            curve = CollectiveCurve(latency_us=p[0], bandwidth_efficiency=p[1])
            return np.maximum(inside_s[sel], collective_s(curve, nic, across_m[sel]))

        result_out = fit(model, multi.seconds.to_numpy(), [20.0, 0.7], [0.0, 0.02], [5000.0, 1.0])
        paths = sorted({p for f, p in frames if (f.node_num > 1).any()})
        selection = (
            "DeepEP dispatch + combine over 2-8 nodes of 8 GPUs, every hidden size, top-k "
            "and token count, the faster kernel; the NVLink part timed by the scale-up curve"
        )
        out["all_to_all_scale_out"] = _entry(
            result_out, Table(pd.DataFrame(), paths[0], ""), selection
        )
        rows.append(("collectives.all_to_all_scale_out", result_out))
    return out, rows


def fit_collectives(system: str, engine: str, gpu: GPU) -> tuple[dict[str, dict], list[tuple], str]:
    out: dict[str, dict] = {}
    rows: list[tuple] = []
    got = _all_reduce(system, engine, gpu)
    if got is not None:
        out["all_reduce_scale_up"] = got[0]
        rows.append(("collectives.all_reduce_scale_up", got[1]))
    a2a, a2a_rows = _all_to_all(system, engine, gpu)
    out.update(a2a)
    rows += a2a_rows
    return out, rows, ""


# Rows of the elementwise fit: those small enough that the fixed time dominates, and those
# large enough to stream from HBM. Rows between are served partly from L2 (50 MB on
# H100/H200), so they run above HBM bandwidth (H100's table reaches 4.9 TB/s against its
# 3.35 TB/s HBM) and would fit a bandwidth no streaming kernel reaches.
ELEMENTWISE_FIXED_BYTES = 1e6
ELEMENTWISE_STREAMING_BYTES = 256e6


def fit_elementwise(system: str, engine: str, gpu: GPU) -> tuple[dict, list[tuple], str]:
    table = find_table(system, "quantize", "vllm", "scale_matrix_perf.parquet")
    if table is None:
        return {}, [], ""
    frame = table.frame
    d = frame[frame.latency > 0].groupby(["m", "k"], as_index=False).latency.min()
    moved = d.m * d.k * 3  # BF16 in, FP8 out (one static scale, read once)
    d = d[(moved <= ELEMENTWISE_FIXED_BYTES) | (moved >= ELEMENTWISE_STREAMING_BYTES)]
    m, k = d.m.to_numpy(dtype=float), d.k.to_numpy(dtype=float)
    nbytes = m * k * 3
    bw = gpu.hbm_bandwidth_bytes_per_s

    def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        curve = MemoryCurve(latency_us=p[0], bandwidth_efficiency=p[1])
        return op_seconds(memory_op(curve, bw, nbytes[sel]))

    result = fit(model, d.latency.to_numpy() * 1e-3, [5.0, 0.7], [0.0, 0.02], [500.0, 1.0])
    selection = (
        "static per-tensor FP8 quantisation (scale_matrix: vLLM's static_scaled_fp8_quant, "
        "one streaming kernel), rows moving at most 1 MB (fixed time) or at least 256 MB "
        "(HBM streaming, past L2), vLLM's table for every engine (see benchmarks/fit/comm.py)"
    )
    return _entry(result, table, selection), [("elementwise", result)], table.version
