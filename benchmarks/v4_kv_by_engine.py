"""The V3.2 -> V4 KV headline at 1M context, in the report's reference layout and in each
serving engine's default layout, plus what each engine admits on 8 x B200.

Run: python benchmarks/v4_kv_by_engine.py

Reference layout: the catalog (the V4 report's serving stack: FP8 entries, MXFP4 CSA indexer
keys), the numbers of `kvplan compare deepseek-v3.2 deepseek-v4-pro deepseek-v4-flash
--context 1M`. Engine layouts: engines/*.yaml (vLLM 0.33.0: FP8 indexer keys, 256-token
compressed blocks, pages padded to 576 B, fixed state in whole blocks of one shared pool;
SGLang 0.5.23: the same entries in a token pool, plus its SWA pool at 0.1 of the full pool's
tokens). Per sequence = the bytes one 1M-token sequence takes from one GPU's KV pool (every
GPU of an attention group holds the whole MLA/V4 cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import (
    max_concurrency,
    max_concurrent_sequences,
    memory_budget,
    sequence_bytes_per_gpu,
)
from planner.schema import Deployment

ONE_M = 1_048_576
GIB = 2**30
MODELS = ("deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash")
ENGINES = ("vllm", "sglang")


def per_sequence_gib(model: str, engine: str | None) -> float:
    if engine is None:
        return float(load_model(model).cache_bytes(ONE_M)) / GIB
    deployed = Deployed.build(load_model(model), load_gpu("b200"), Deployment(engine=engine))
    return float(sequence_bytes_per_gpu(deployed, ONE_M)) / GIB


def main() -> None:
    layouts: list[tuple[str, str | None]] = [("reference (V4 report)", None)]
    layouts += [(e, e) for e in ENGINES]
    print("KV + fixed state per 1M-token sequence, GiB (ratio vs V3.2 in the same layout)")
    print("| model | " + " | ".join(name for name, _ in layouts) + " |")
    print("|---|" + "---:|" * len(layouts))
    sizes = {label: [per_sequence_gib(m, engine) for m in MODELS] for label, engine in layouts}
    for i, model in enumerate(MODELS):
        cells = [
            f"{sizes[label][i]:.2f} ({sizes[label][i] / sizes[label][0]:.1%})"
            for label, _ in layouts
        ]
        print(f"| {model} | " + " | ".join(cells) + " |")
    print()
    print("8 x B200 at 1M: sequences that fit while decoding / the engine's logged maximum")
    print("concurrency (summed over data-parallel engines), engine defaults")
    print("| model | engine | TP 8 | DP 8 (TP 1) |")
    print("|---|---|---:|---:|")
    for model in MODELS[1:]:
        for engine in ENGINES:
            cells = []
            for tp in (8, 1):
                deployment = Deployment(engine=engine, gpus_per_replica=8, tensor_parallel=tp)
                deployed = Deployed.build(load_model(model), load_gpu("b200"), deployment)
                budget = memory_budget(deployed)
                fits = int(max_concurrent_sequences(deployed, ONE_M, budget))
                logged = float(max_concurrency(deployed, ONE_M, budget)) * deployed.attention_dp
                cells.append(f"{fits} / {logged:.1f}")
            print(f"| {model} | {engine} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
