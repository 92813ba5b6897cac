"""Attention-kernel curves (``AttentionCurve``) from AIConfigurator's attention tables.

Two kinds of tables:
- bare kernels (``generation_attention`` / ``context_attention`` for GQA, TensorRT-LLM's
  and SGLang's ``generation_mla`` / ``context_mla``): the curve is fitted to the kernel's
  time directly;
- attention modules (vLLM's MLA, every engine's DeepSeek-V4 CSA / HCA and V3.2 DSA): the
  measured time holds the layer's projections, RoPE and KV writes too. kvplan times those
  with its own (already fitted) GEMM and elementwise curves
  (``StepModel.attention_block_linear_s``) and its indexer curve, and the attention curve
  is fitted to what the module takes beyond them.
Work per row (FLOPs, cache bytes, sequences) comes from kvplan's attention kinds for the
row's shape (per-GPU heads = the catalog model's heads / tensor-parallel size), with the
engine's head padding on the table's GPU (``planner.plan.perf.kernel_heads``: a kernel
that runs 64 heads for a rank's 8 is charged 64 heads' FLOPs), so the fitted parameters
mean what the planner assumes.

Decode tables have one query per sequence: the query-tile half point is not identifiable
there and is fixed at 0 (the compute efficiency absorbs it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from fitting import Fit, fit
from tables import Table, find_table

from planner import load_model
from planner.hardware import GPU
from planner.model.attention import GQA, AttentionKind
from planner.plan.deployed import Deployed
from planner.plan.efficiency import efficiency_for
from planner.plan.efficiency.curves import attention_op, op_seconds
from planner.plan.efficiency.schema import AttentionCurve
from planner.plan.perf import ATTENTION_MATH_DTYPE, StepModel, kernel_heads
from planner.schema import Deployment, GQASpec

BF16 = "bfloat16"
# AIConfigurator model column -> kvplan catalog model. The tables name V4-Pro two ways:
# "sgl-project/DeepSeek-V4-Pro-FP8" (H100/H200, TensorRT-LLM on B200) and
# "deepseek-ai/DeepSeek-V4-Pro" (vLLM and SGLang on B200); both are the same checkpoint's
# shapes (128 query heads, 1024 o-LoRA, 16 output groups).
MODELS = {
    "deepseek-ai/DeepSeek-V3": "deepseek-v3",
    "deepseek-ai/DeepSeek-V3.2": "deepseek-v3.2",
    "sgl-project/DeepSeek-V4-Flash-FP8": "deepseek-v4-flash",
    "sgl-project/DeepSeek-V4-Pro-FP8": "deepseek-v4-pro",
    "deepseek-ai/DeepSeek-V4-Pro": "deepseek-v4-pro",
}


@dataclass
class Rows:
    """Per row: the curve's inputs on one GPU, the fixed part kvplan adds, the time."""

    flops: np.ndarray
    flops_per_query: np.ndarray
    nbytes: np.ndarray
    sequences: np.ndarray
    other_s: np.ndarray  # projections, RoPE, KV writes, indexer (modules); 0 for kernels
    measured_s: np.ndarray
    peak: float
    bandwidth: float


def _fit_rows(rows: Rows, prefill: bool) -> Fit:
    def model(p: np.ndarray, sel: np.ndarray) -> np.ndarray:
        curve = AttentionCurve(
            latency_us=p[0],
            per_sequence_us=p[1],
            compute_efficiency=p[2],
            bandwidth_efficiency=p[3],
            half_query_tokens=p[4] if prefill else 0.0,
        )
        t = attention_op(
            curve,
            rows.peak,
            rows.bandwidth,
            rows.flops[sel],
            rows.flops_per_query[sel],
            rows.nbytes[sel],
            rows.sequences[sel],
        )
        return op_seconds(t) + rows.other_s[sel]

    x0 = [10.0, 0.5, 0.5, 0.6, 64.0]
    lower = [0.0, 0.0, 0.02, 0.02, 0.0]
    upper = [5000.0, 1000.0, 1.0, 1.0, 1e5 if prefill else 1e-9]
    if not prefill:
        x0[4] = 0.0
    return fit(model, rows.measured_s, x0, lower, upper)


def _curve_entry(result: Fit, prefill: bool, table: Table, selection: str) -> dict:
    p = result.params
    return {
        "latency_us": round(float(p[0]), 3),
        "per_sequence_us": round(float(p[1]), 4),
        "compute_efficiency": round(float(p[2]), 4),
        "bandwidth_efficiency": round(float(p[3]), 4),
        "half_query_tokens": round(float(p[4]), 2) if prefill else 0.0,
        "fit": result.quality(table.path, selection),
    }


# ---------------------------------------------------------------------------- GQA
def _gqa_rows(frame: pd.DataFrame, gpu: GPU, prefill: bool) -> Rows:
    keys = ["batch_size", "isl", "step", "num_heads", "num_key_value_heads", "head_dim"]
    d = frame.groupby([*keys, "kv_cache_dtype"], as_index=False).latency.min()
    flops, per_query, nbytes = [], [], []
    for r in d.itertuples(index=False):
        kind = GQA(
            GQASpec(
                num_heads=int(r.num_heads),
                num_kv_heads=int(r.num_key_value_heads),
                head_dim=int(r.head_dim),
                kv_format="bf16" if r.kv_cache_dtype == BF16 else "fp8",
            )
        )
        q = int(r.isl) if prefill else 1
        end = int(r.isl + r.step)
        f = float(kind.attn_flops(q, end)) * r.batch_size
        flops.append(f)
        per_query.append(f / q)
        nbytes.append(float(kind.read_bytes(end)) * r.batch_size)
    return Rows(
        np.array(flops),
        np.array(per_query),
        np.array(nbytes),
        d.batch_size.to_numpy(dtype=float),
        np.zeros(len(d)),
        d.latency.to_numpy() * 1e-3,
        gpu.peak_flop_per_s(ATTENTION_MATH_DTYPE),
        gpu.hbm_bandwidth_bytes_per_s,
    )


# kvplan cache class -> AIConfigurator kv_cache_dtype column value.
CACHE_DTYPES = {"bf16": BF16, "fp8": "fp8"}


def _gqa(
    system: str, engine: str, gpu: GPU, prefill: bool, cache: str | None = None
) -> tuple[str, dict, Fit] | None:
    """The GQA kernel curve over BF16 and FP8 caches, or over one cache class alone."""
    name = "context_attention_perf.parquet" if prefill else "generation_attention_perf.parquet"
    table = find_table(system, "attention", engine, name)
    if table is None:
        return None
    f = table.frame
    # The shapes GQA models run (Llama 3, Qwen 3: head_dim 128, 8 query heads per KV
    # head); other head sizes and ratios run at different efficiencies.
    f = f[(f.window_size == 0) & (f.head_dim == 128) & (f.num_heads >= 4 * f.num_key_value_heads)]
    caches = "BF16 and FP8 caches"
    if cache is not None:
        f = f[f.kv_cache_dtype == CACHE_DTYPES[cache]]
        caches = f"{cache.upper()} cache only (kv_cache_dtype {CACHE_DTYPES[cache]})"
        if f.empty:
            return None
    rows = _gqa_rows(f, gpu, prefill)
    result = _fit_rows(rows, prefill)
    selection = (
        "full attention (window_size 0), head_dim 128, at least 4 query heads per KV head, "
        f"{caches}; fastest kernel per shape"
    )
    op = "gqa_prefill" if prefill else "gqa_decode"
    return op, _curve_entry(result, prefill, table, selection), result


# ---------------------------------------------------------------------------- MLA family
def _deployed(
    model_name: str, heads: int, kv_dtype: str, gemm_type: str, engine: str, gpu: GPU
) -> Deployed:
    model = load_model(model_name)
    total = max(kind.spec.num_heads for kind, _ in model.attention_groups)
    tp = total // heads
    formats = {}
    if gemm_type == BF16:
        formats = {"attention": "bf16", "indexer": "bf16", "compressor": "bf16"}
    deployment = Deployment(
        gpus_per_replica=tp,
        tensor_parallel=tp,
        engine=engine,  # type: ignore[arg-type]
        kv_dtype="bf16" if kv_dtype == BF16 else "fp8",
        weight_formats=formats,
    )
    return Deployed.build(model, gpu, deployment)


def _kind(deployed: Deployed, label: str) -> AttentionKind:
    for kind, _ in deployed.model.attention_groups:
        if kind.label == label:
            return kind
    raise KeyError(label)


def _mla_rows(
    frame: pd.DataFrame, gpu: GPU, engine: str, label: str, prefill: bool, module: bool
) -> Rows:
    """Rows of an MLA-family table (bare kernel or module)."""
    if "model" not in frame.columns:
        frame = frame.assign(model="deepseek-ai/DeepSeek-V3", gemm_type=BF16)
    frame = frame[frame.model.isin(MODELS)]
    keys = ["model", "num_heads", "kv_cache_dtype", "gemm_type", "batch_size", "isl", "step"]
    d = frame.groupby(keys, as_index=False).latency.min()
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "q", "b", "s", "o", "t")}
    groups = d.groupby(["model", "num_heads", "kv_cache_dtype", "gemm_type"])
    eff = efficiency_for(gpu, engine)
    phase = "prefill" if prefill else "decode"
    for (model, heads, kv, gemm), g in groups:
        deployed = _deployed(MODELS[str(model)], int(heads), str(kv), str(gemm), engine, gpu)
        step_model = StepModel(deployed)
        kind = _kind(deployed, label)
        tp = deployed.tp
        queries = g.isl.to_numpy(dtype=int) if prefill else np.ones(len(g), dtype=int)
        for q in np.unique(queries):
            rows = g[queries == q]
            b = rows.batch_size.to_numpy(dtype=float)
            q_int = int(q)
            if prefill:
                end = (rows.isl + rows.step).to_numpy(dtype=np.int64)
                flops = np.asarray(kind.attn_flops(q_int, end), dtype=float)
            else:
                end = rows.step.to_numpy(dtype=np.int64) + 1
                flops = np.asarray(kind.decode_attn_flops(q_int, end), dtype=float)
            index_bytes = np.asarray(kind.index_read_bytes(end), dtype=float)
            main_bytes = np.asarray(kind.read_bytes(end), dtype=float) - index_bytes
            heads = kernel_heads(deployed, kind, phase, q_int)
            other = np.zeros(len(rows))
            if module:
                other = np.asarray(
                    step_model.attention_block_linear_s(kind, b * q_int), dtype=float
                )
                if kind.has_indexer:
                    fi = np.asarray(kind.indexer_flops(q_int, end), dtype=float) * b
                    t = eff.attention_time(
                        f"indexer_{phase}",
                        kind.index_math_dtype,
                        fi,
                        fi / q_int,
                        index_bytes * b,
                        b,
                    )
                    other = other + op_seconds(t)
            out["f"].append(flops * b / tp * heads.flops_factor)
            out["q"].append(flops * b / tp / q_int * heads.flops_factor)
            out["b"].append(
                main_bytes * b * kind.kv_shard_fraction(tp)
                + b * q_int * heads.extra_bytes_per_query
            )
            out["s"].append(b)
            out["o"].append(np.broadcast_to(other, b.shape))
            out["t"].append(rows.latency.to_numpy() * 1e-3)
    return Rows(
        *(np.concatenate(out[k]) for k in ("f", "q", "b", "s", "o", "t")),
        gpu.peak_flop_per_s(ATTENTION_MATH_DTYPE),
        gpu.hbm_bandwidth_bytes_per_s,
    )


# (op, table folder, table file, kvplan kind label, module?)
MLA_FAMILY = [
    ("mla_decode", "mla", "generation_mla_perf.parquet", "MLA", False),
    ("mla_prefill", "mla", "context_mla_perf.parquet", "MLA", False),
    ("mla_decode", "mla", "mla_generation_module_perf.parquet", "MLA", True),
    ("mla_prefill", "mla", "mla_context_module_perf.parquet", "MLA", True),
    ("dsa_decode", "sparse_attention", "dsa_generation_module_perf.parquet", "DSA", True),
    ("dsa_prefill", "sparse_attention", "dsa_context_module_perf.parquet", "DSA", True),
    ("csa_decode", "sparse_attention", "dsv4_csa_generation_module_perf.parquet", "CSA", True),
    ("csa_prefill", "sparse_attention", "dsv4_csa_context_module_perf.parquet", "CSA", True),
    ("hca_decode", "sparse_attention", "dsv4_hca_generation_module_perf.parquet", "HCA", True),
    ("hca_prefill", "sparse_attention", "dsv4_hca_context_module_perf.parquet", "HCA", True),
]
MODULE_SELECTION = (
    "{label} attention module (projections + kernels) of {models}, every per-GPU head "
    "count, batch and context; kvplan's fitted GEMM/elementwise curves time the "
    "projections, RoPE and KV writes (and the indexer), the curve the rest; errors are on "
    "the whole module"
)
KERNEL_SELECTION = (
    "DeepSeek-V3 shape (kv_lora 512 + rope 64), every per-GPU head count, batch and context"
)


def fit_attention(system: str, engine: str, gpu: GPU) -> tuple[dict[str, dict], list[tuple], str]:
    out: dict[str, dict] = {}
    quality: list[tuple] = []
    version = ""
    for prefill in (False, True):
        got = _gqa(system, engine, gpu, prefill)
        if got is not None:
            op, entry, result = got
            out[op] = entry
            quality.append((f"attention.{op}", result))
    for op, folder, name, label, module in MLA_FAMILY:
        if op in out:  # a bare-kernel table already gave this curve
            continue
        table = find_table(system, folder, engine, name)
        if table is None:
            continue
        prefill = op.endswith("prefill")
        frame = table.frame
        if "model" in frame.columns:
            frame = frame[frame.model.isin(MODELS)]
        if frame.empty:
            continue
        rows = _mla_rows(frame, gpu, engine, label, prefill, module)
        result = _fit_rows(rows, prefill)
        models = ", ".join(sorted(set(frame.model))) if "model" in frame.columns else "DeepSeek-V3"
        selection = (
            MODULE_SELECTION.format(label=label, models=models) if module else KERNEL_SELECTION
        )
        out[op] = _curve_entry(result, prefill, table, selection)
        quality.append((f"attention.{op}", result))
        version = table.version
    return out, quality, version


# Caches whose decode kernels stream at efficiencies this close share one curve: splitting
# the table then only halves the data behind each curve.
SAME_CACHE_TOLERANCE = 0.10
BANDWIDTH_BOUND_BYTES = 1e8  # a step reading this much BF16 cache is streaming-bound


def _fp8_over_bf16_streaming(frame: pd.DataFrame) -> float:
    """Median, over shapes measured with both caches that read at least
    ``BANDWIDTH_BOUND_BYTES`` of BF16 cache, of FP8's streaming efficiency over BF16's
    (FP8 moves half the bytes: 0.5 x BF16 time / FP8 time)."""
    keys = ["batch_size", "isl", "step", "num_heads", "num_key_value_heads", "head_dim"]
    f = frame[
        (frame.window_size == 0)
        & (frame.head_dim == 128)
        & (frame.num_heads >= 4 * frame.num_key_value_heads)
    ]
    d = f.groupby([*keys, "kv_cache_dtype"], as_index=False).latency.min()
    both = d.pivot_table(index=keys, columns="kv_cache_dtype", values="latency").dropna()
    both = both.reset_index()
    bf16_bytes = (
        both.batch_size * (both.isl + both.step) * both.num_key_value_heads * both.head_dim * 4
    )
    big = both[bf16_bytes >= BANDWIDTH_BOUND_BYTES]
    if big.empty or CACHE_DTYPES["fp8"] not in big or BF16 not in big:
        return 1.0
    return float((0.5 * big[BF16] / big[CACHE_DTYPES["fp8"]]).median())


def fit_attention_by_kv_cache(
    system: str, engine: str, gpu: GPU
) -> tuple[dict[str, dict], list[tuple], str]:
    """GQA decode curves fitted to each cache class alone (``attention_by_kv_cache``): the
    decode kernel streams the cache, and the tables' FP8 caches run at a lower fraction of
    HBM bandwidth than BF16 ones under vLLM and SGLang (dequantisation in the inner loop),
    so one curve over both mis-times each. Where the two stream within
    ``SAME_CACHE_TOLERANCE`` of each other (TensorRT-LLM's H100/H200 tables) the single
    curve stays. Prefill is math-bound and keeps one curve."""
    out: dict[str, dict] = {}
    quality: list[tuple] = []
    version = ""
    table = find_table(system, "attention", engine, "generation_attention_perf.parquet")
    if table is None:
        return out, quality, version
    ratio = _fp8_over_bf16_streaming(table.frame)
    same = abs(ratio - 1) <= SAME_CACHE_TOLERANCE
    print(
        f"{system} {engine}: FP8 caches stream at {ratio:.2f}x BF16's on paired shapes; "
        + ("one curve for both" if same else "one curve per cache")
    )
    if same:
        return out, quality, version
    for cache in CACHE_DTYPES:
        got = _gqa(system, engine, gpu, prefill=False, cache=cache)
        if got is None:
            continue
        op, entry, result = got
        out[cache] = {op: entry}
        quality.append((f"attention.{op}[{cache} cache]", result))
        version = str(entry["fit"]["table"]).split("/")[-2]  # .../<engine>/<version>/file
    return out, quality, version
