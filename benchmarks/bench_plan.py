"""Planner speed: the concurrency frontier for every GPU profile x 4 models x 1,000 contexts.

Run: python benchmarks/bench_plan.py      (aim: under 0.5 s per frontier)

The first call includes building each model's per-matrix tables (cached afterwards on the
Model objects); the best of 5 is the steady state. Curves whose weights do not fit on 8
GPUs also build the "would fit on N GPUs" suggestion, which costs more than a fitting curve.
"""

from __future__ import annotations

import time

import numpy as np

from planner import load_model
from planner.hardware import gpu_names, load_gpu
from planner.plan.frontier import FrontierCurve, frontier, frontier_curve
from planner.schema import Deployment

MODELS = ("deepseek-v3.2", "deepseek-v4-pro", "deepseek-v4-flash", "llama-3.1-70b")
CONTEXT_POINTS = 1_000
MIN_CONTEXT_TOKENS = 1_024
MAX_CONTEXT_TOKENS = 1_048_576
GPUS_PER_REPLICA = 8
REPEATS = 5
AIM_S = 0.5


def timed(models: list, gpus: list, contexts: np.ndarray) -> tuple[float, list[FrontierCurve]]:
    start = time.perf_counter()
    curves = frontier(models, gpus, Deployment(gpus_per_replica=GPUS_PER_REPLICA), contexts)
    return time.perf_counter() - start, curves


def main() -> None:
    # 1,000 log-spaced points, kept as given (no rounding to unique whole tokens needed: the
    # low end is 1,024 tokens and neighbouring points are ~0.7% apart).
    contexts = np.geomspace(MIN_CONTEXT_TOKENS, MAX_CONTEXT_TOKENS, CONTEXT_POINTS).round()
    contexts = contexts.astype(np.int64)
    assert len(np.unique(contexts)) == CONTEXT_POINTS
    names = gpu_names()
    load_start = time.perf_counter()
    models = [load_model(name) for name in MODELS]
    gpus = [load_gpu(name) for name in names]
    load_s = time.perf_counter() - load_start

    first_s, curves = timed(models, gpus, contexts)
    best_s = min(timed(models, gpus, contexts)[0] for _ in range(REPEATS))

    fitting = [c for c in curves if c.fits]
    print(f"models and {len(names)} GPU profiles loaded: {load_s * 1e3:.1f} ms")
    print(
        f"frontier, {len(names)} GPUs x {len(MODELS)} models x {CONTEXT_POINTS:,} contexts "
        f"({len(curves)} curves, {len(curves) * CONTEXT_POINTS:,} points) on "
        f"{GPUS_PER_REPLICA} GPUs per replica: first call {first_s * 1e3:.1f} ms, "
        f"best of {REPEATS} {best_s * 1e3:.1f} ms (aim < {AIM_S * 1e3:.0f} ms)"
    )
    print(f"curves whose weights fit: {len(fitting)} of {len(curves)}")
    # Where the time goes: the curves that do not fit, timed on their own.
    deployment = Deployment(gpus_per_replica=GPUS_PER_REPLICA)
    by_name = {m.name: m for m in models} | {g.name: g for g in gpus}
    misfits = [(by_name[c.model], by_name[c.gpu]) for c in curves if not c.fits]
    misfit_s = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for model, gpu in misfits:
            frontier_curve(model, gpu, deployment, contexts)
        misfit_s.append(time.perf_counter() - start)
    print(
        f"of which the {len(misfits)} curves that do not fit (reason only, no suggestions): "
        f"best of {REPEATS} {min(misfit_s) * 1e3:.1f} ms"
    )
    for model in MODELS:
        missing = [c.gpu for c in curves if c.model == model and not c.fits]
        if missing:
            print(f"  {model} does not fit on {GPUS_PER_REPLICA} x: {', '.join(missing)}")


if __name__ == "__main__":
    main()
