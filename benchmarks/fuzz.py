"""Fuzz campaign over every input surface: counts of outcomes per surface.

    python benchmarks/fuzz.py --examples 10000 [--seed S] [--surface cli ...] [--show 5]

Uses the strategies of the in-project fuzz suite (tests/fuzz/strategies.py): CLI argv,
config.json, scenario YAML, traces, GPU and engine profiles, fitted kernel curves,
calibration inputs (start-up logs, benchmark results, calibrated profiles, engine terms),
dashboard links, the Python API. Each example runs in-process under a deadline and ends
as one of: ok (exit 0, every invariant of the output holds), user_error (one line, exit
2), traceback, hang, invariant (a violated invariant, or a user error that is not one
line). Findings are printed with their input.
Exit status 1 if anything but ok / user_error occurred.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # the url surface runs pages

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz.harness import OK, OUTCOMES, USER_ERROR  # noqa: E402
from tests.fuzz.strategies import SURFACES  # noqa: E402

# Share of examples per surface (the CLI and the API are cheap; simulations are not).
WEIGHTS = {
    "cli": 4,
    "config.json": 3,
    "scenario": 2,
    "trace": 1,
    "gpu_profile": 2,
    "engine_profile": 1,
    "api": 4,
    "calibrate": 1,
    "fits": 1,
    "url": 2,
    "migrate": 1,
}


def campaign(surface: str, examples: int, rng_seed: int, show: int) -> tuple[Counter[str], list]:
    counts: Counter[str] = Counter()
    findings: list[tuple[str, str, str]] = []

    @seed(rng_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=SURFACES[surface])
    def run(case: object) -> None:
        result = case.run()  # type: ignore[attr-defined]
        counts[result.outcome] += 1
        if result.outcome not in (OK, USER_ERROR) and len(findings) < show:
            findings.append((result.outcome, result.detail, repr(case)[:1500]))

    run()
    return counts, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="total examples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--surface", nargs="*", default=sorted(SURFACES), choices=sorted(SURFACES))
    parser.add_argument("--show", type=int, default=5, help="findings to print per surface")
    args = parser.parse_args()
    weights = {s: WEIGHTS[s] for s in args.surface}
    total_weight = sum(weights.values())
    totals: Counter[str] = Counter()
    per_surface: dict[str, Counter[str]] = defaultdict(Counter)
    start = time.perf_counter()
    warnings.simplefilter("ignore")
    for surface, weight in weights.items():
        n = max(1, round(args.examples * weight / total_weight))
        t0 = time.perf_counter()
        counts, findings = campaign(surface, n, args.seed, args.show)
        per_surface[surface] = counts
        totals.update(counts)
        line = ", ".join(f"{o} {counts[o]}" for o in OUTCOMES)
        took = time.perf_counter() - t0
        print(f"{surface:15s} {sum(counts.values()):6d} examples  {line}  ({took:.0f} s)")
        for outcome, detail, case in findings:
            print(f"  {outcome}: {detail}\n    input: {case}")
        sys.stdout.flush()
    line = ", ".join(f"{o} {totals[o]}" for o in OUTCOMES)
    took = time.perf_counter() - start
    print(f"{'total':15s} {sum(totals.values()):6d} examples  {line}  ({took:.0f} s)")
    return 0 if set(totals) <= {OK, USER_ERROR} else 1


if __name__ == "__main__":
    sys.exit(main())
