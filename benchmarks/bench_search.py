"""Speed of the analytic deployment search (one process, one core).

Prints how many layouts and deployments (a layout at one batch size / max_num_seqs, or one
disaggregated pool pair) `kvplan search` evaluates, in how long, and deployments per second.
Target (issue 11): 10,000+ deployments in under 10 s on one core.

    OMP_NUM_THREADS=1 python benchmarks/bench_search.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from planner.search.run import run_search
from planner.search.spec import SearchSpec

CASES = {
    "V3.2 on H200, 20 req/s of 32K in / 1K out": SearchSpec(
        models=("deepseek-v3.2",),
        gpus=("h200",),
        requests_per_s=20,
        input_tokens=32_768,
        output_tokens=1024,
        tpot_slo_s=0.05,
    ),
    "V3 / V3.2 / V4-Flash on H200, H100, B200, 10 req/s of 8K / 1K": SearchSpec(
        models=("deepseek-v3", "deepseek-v3.2", "deepseek-v4-flash"),
        gpus=("h200", "h100-sxm", "b200"),
        requests_per_s=10,
        input_tokens=8192,
        output_tokens=1024,
        tpot_slo_s=0.05,
    ),
}


def main() -> None:
    for name, spec in CASES.items():
        run_search(spec)  # warm the caches (model loading, profiles) once
        start = time.perf_counter()
        result = run_search(spec)
        elapsed = time.perf_counter() - start
        print(
            f"{name}: {result.layouts:,} layouts, {result.deployments:,} deployments in "
            f"{elapsed:.2f} s = {result.deployments / elapsed:,.0f} deployments/s; "
            f"best {result.best.label}, ${result.best.usd_per_month:,.0f}/month"
        )


if __name__ == "__main__":
    main()
