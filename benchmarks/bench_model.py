"""Analytic-core speed: KV bytes and decode FLOPs for 4 models x 10,000 context points.

Run: python benchmarks/bench_model.py      (aim: under 50 ms after import)
"""

from __future__ import annotations

import time

import numpy as np

from planner import load_model

MODELS = ("deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash", "llama-3.1-70b")
CONTEXT_POINTS = 10_000
MAX_CONTEXT_TOKENS = 1_048_576
REPEATS = 5


def run_once(models: list, contexts: np.ndarray) -> float:
    start = time.perf_counter()
    for model in models:
        model.kv_bytes(contexts)
        model.state_bytes()
        model.decode_flops_per_token(contexts)
    return time.perf_counter() - start


def main() -> None:
    contexts = np.linspace(1, MAX_CONTEXT_TOKENS, CONTEXT_POINTS).astype(np.int64)
    load_start = time.perf_counter()
    models = [load_model(name) for name in MODELS]
    load_s = time.perf_counter() - load_start
    first_s = run_once(models, contexts)
    best_s = min(run_once(models, contexts) for _ in range(REPEATS))
    print(f"models loaded from catalog: {load_s * 1e3:.1f} ms")
    print(
        f"KV + FLOPs, {len(MODELS)} models x {CONTEXT_POINTS:,} contexts: "
        f"first call {first_s * 1e3:.1f} ms, best of {REPEATS} {best_s * 1e3:.1f} ms "
        f"(aim < 50 ms)"
    )


if __name__ == "__main__":
    main()
