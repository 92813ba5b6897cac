"""Write the small excerpts of AIConfigurator's measured tables that kvplan's tests read.

    .venv-aic/bin/python benchmarks/fit/excerpt.py   # writes tests/plan/data/aic_*.csv

Each excerpt keeps a handful of rows at shapes real models run (Llama-3.1-70B and
DeepSeek-V3 projections on 8 GPUs, decode to prefill token counts), with a header naming
the table, package version and engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import aic_version, find_table

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "plan" / "data"
# (n, k) on the table's grid nearest to real layers on 8 GPUs: Llama-3.1-70B qkv (1280 x
# 8192 -> 1536 x 8192), o (8192 x 1024), gate_up (7168 x 8192); DeepSeek-V3 fused q_a +
# kv_a (2112 x 7168 -> 2048 x 7168), shared-expert down (7168 x 2048).
GEMM_SHAPES = [(1536, 8192), (8192, 1024), (7168, 8192), (2048, 7168), (7168, 2048)]
GEMM_TOKENS = [1, 8, 64, 256, 1024, 4096, 8192]


def write(name: str, header: str, frame_text: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(header + frame_text)


def gemm_excerpt(system: str, engine: str, dtype: str) -> None:
    table = find_table(system, "gemm", engine, "gemm_perf.parquet")
    assert table is not None
    f = table.frame
    rows = f[
        (f.gemm_dtype == dtype)
        & f.m.isin(GEMM_TOKENS)
        & f[["n", "k"]].apply(tuple, axis=1).isin(GEMM_SHAPES)
    ]
    rows = rows.groupby(["m", "n", "k"], as_index=False).latency.min()
    header = (
        f"# AIConfigurator {aic_version()} measured table {table.path}\n"
        f"# ({engine} {table.version}, gemm_dtype {dtype}; fastest kernel per shape); "
        "latency in ms\n"
    )
    write(f"aic_gemm_{system}_{engine}_{dtype}.csv", header, rows.to_csv(index=False))


if __name__ == "__main__":
    gemm_excerpt("h200_sxm", "vllm", "bfloat16")
    gemm_excerpt("h100_sxm", "trtllm", "fp8_block")
