"""Write the small excerpts of AIConfigurator's measured tables that kvplan's tests read.

    .venv-aic/bin/python benchmarks/fit/excerpt.py   # writes tests/plan/data/aic_*.csv

Each excerpt keeps a handful of rows at shapes real models run (Llama-3.1-70B and
DeepSeek-V3 projections on 8 GPUs, decode to prefill token counts), with a header naming
the table, package version and engine.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import aic_version, find_table

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "plan" / "data"
# (n, k) on the table's grid nearest to real layers on 8 GPUs: Llama-3.1-70B qkv (1280 x
# 8192 -> 1536 x 8192), o (8192 x 1024), gate_up (7168 x 8192); DeepSeek-V3 fused q_a +
# kv_a (2112 x 7168 -> 2048 x 7168), shared-expert down (7168 x 2048).
GEMM_SHAPES = [(1536, 8192), (8192, 1024), (7168, 8192), (2048, 7168), (7168, 2048)]
GEMM_TOKENS = [1, 8, 64, 256, 1024, 4096, 8192]


def load(system: str, op: str, engine: str, file_name: str) -> Any:
    table = find_table(system, op, engine, file_name)
    assert table is not None, f"no {file_name} for {system}/{engine}"
    return table


def write_fastest(name: str, table: Any, engine: str, rows: Any, by: list[str], what: str) -> None:
    """The fastest kernel's latency per ``by`` shape, under a header naming the table,
    AIConfigurator's version, the engine and ``what`` was selected."""
    fastest = rows.groupby(by, as_index=False).latency.min()
    header = (
        f"# AIConfigurator {aic_version()} measured table {table.path}\n"
        f"# ({engine} {table.version}{what}; latency in ms\n"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(header + fastest.to_csv(index=False))


def gemm_excerpt(system: str, engine: str, dtype: str) -> None:
    table = load(system, "gemm", engine, "gemm_perf.parquet")
    f = table.frame
    rows = f[
        (f.gemm_dtype == dtype)
        & f.m.isin(GEMM_TOKENS)
        & f[["n", "k"]].apply(tuple, axis=1).isin(GEMM_SHAPES)
    ]
    write_fastest(
        f"aic_gemm_{system}_{engine}_{dtype}.csv",
        table,
        engine,
        rows,
        ["m", "n", "k"],
        f", gemm_dtype {dtype}; fastest kernel per shape)",
    )


def moe_excerpt(system: str, engine: str) -> None:
    """DeepSeek-V3's routed experts (7168 x 2048, 8 of 256), FP8 block weights, uniform
    ('balanced') routing, expert parallel 8, a few token counts."""
    table = load(system, "moe", engine, "moe_perf.parquet")
    f = table.frame
    rows = f[
        (f.moe_dtype == "fp8_block")
        & (f.hidden_size == 7168)
        & (f.inter_size == 2048)
        & (f.num_experts == 256)
        & (f.topk == 8)
        & (f.moe_tp_size == 1)
        & (f.moe_ep_size == 8)
        & (f.distribution == "balanced")
        & f.num_tokens.isin([1, 8, 64, 256, 1024, 4096, 16384])
    ]
    write_fastest(
        f"aic_moe_{system}_{engine}_deepseek_v3.csv",
        table,
        engine,
        rows,
        ["num_tokens"],
        "): moe_dtype fp8_block, hidden 7168, inter 2048, top-8 of 256 experts, moe_tp 1, "
        "moe_ep 8, balanced routing; fastest kernel",
    )


def mla_excerpt(system: str, engine: str) -> None:
    """TensorRT-LLM's bare MLA decode kernel (absorbed, FlashMLA-style) at 16 heads per
    GPU (DeepSeek-V3 on 8 GPUs), BF16 cache."""
    table = load(system, "mla", engine, "generation_mla_perf.parquet")
    f = table.frame
    rows = f[
        (f.num_heads == 16)
        & (f.kv_cache_dtype == "bfloat16")
        & f.batch_size.isin([1, 8, 64, 256])
        & f.step.isin([1023, 4095, 16383])
    ]
    write_fastest(
        f"aic_mla_decode_{system}_{engine}.csv",
        table,
        engine,
        rows,
        ["batch_size", "step"],
        "): generation MLA kernel, 16 heads per GPU, BF16 KV cache, context = step + 1; "
        "fastest kernel",
    )


def gqa_excerpt(system: str, engine: str) -> None:
    """The GQA decode kernel at Llama-3.1-70B's shape on 8 GPUs (8 query heads, 1 KV head
    per GPU, head_dim 128), BF16 and FP8 caches, bandwidth-bound batches."""
    table = load(system, "attention", engine, "generation_attention_perf.parquet")
    f = table.frame
    rows = f[
        (f.window_size == 0)
        & (f.num_heads == 8)
        & (f.num_key_value_heads == 1)
        & (f.head_dim == 128)
        & f.batch_size.isin([16, 64, 256])
        & f.step.isin([4095, 16383])
    ]
    write_fastest(
        f"aic_gqa_decode_{system}_{engine}.csv",
        table,
        engine,
        rows,
        ["kv_cache_dtype", "batch_size", "step"],
        "): generation attention kernel, 8 query heads and 1 KV head per GPU, head_dim 128, "
        "context = step + 1; fastest kernel",
    )


if __name__ == "__main__":
    gemm_excerpt("h200_sxm", "vllm", "bfloat16")
    gemm_excerpt("h100_sxm", "trtllm", "fp8_block")
    moe_excerpt("h200_sxm", "sglang")
    mla_excerpt("h200_sxm", "trtllm")
    gqa_excerpt("h200_sxm", "sglang")
