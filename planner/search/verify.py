"""`kvplan search --verify K`: run the simulator on the top K plans and compare.

Each plan becomes a scenario: its pools, replica counts and layouts; Poisson arrivals at the
search's rate of prompts and answers of the mean lengths (constant), the cached share of
every prompt a system prompt shared by all requests (so the prefix cache serves it). The
simulated TTFT at the search's percentile and the median TPOT, over requests arriving after
a warm-up (the first third of the arrivals), are set beside the plan's. Runs go to Dask through
``planner.parallel.map_tasks`` (a local cluster by default, ``--scheduler ADDRESS`` for an
existing one, ``serial`` in-process); every run has its own seed, so the answer does not
depend on where it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from planner.parallel import map_tasks
from planner.plan.prefill import cached_prompt_tokens
from planner.search.run import Candidate, Pool, SearchResult
from planner.search.spec import SearchSpec

VERIFY_BLOCK_TOKENS = 64  # paging and prefix-hash block of the verification runs
VERIFY_SEED = 11
# Requests wait this long at most before the simulator rejects them; far beyond any SLO.
VERIFY_QUEUE_TIMEOUT_S = 600.0
WARM_UP_SHARE = 1 / 3  # of the arrival period, not measured
# Drain after arrivals stop: long enough for a measured request to finish at the planned
# pace (first token plus every output token), with this much slack.
DRAIN_SLACK = 3.0


def scenario_document(
    candidate: Candidate, spec: SearchSpec, duration_s: float, seed: int
) -> dict[str, Any]:
    """The scenario (as a raw document) that simulates one searched plan."""
    cached = candidate_cached_tokens(spec)
    klass = {
        "name": "search",
        "share": 1,
        "input_tokens": {"kind": "constant", "value": spec.input_tokens - cached},
        "output_tokens": {"kind": "constant", "value": spec.output_tokens},
        "system_prompt_tokens": cached,
        "slo": {
            "ttft_s": spec.ttft_slo_s if spec.ttft_slo_s is not None else 3600.0,
            "tpot_s": spec.tpot_slo_s,
        },
    }
    doc: dict[str, Any] = {
        "name": f"verify: {candidate.label}",
        "model": candidate.pools[0].layout.model_source,
        "duration_s": duration_s,
        "drain_s": DRAIN_SLACK
        * (candidate.ttft_at_percentile_s + spec.output_tokens * candidate.tpot_s),
        "seed": seed,
        "block_tokens": VERIFY_BLOCK_TOKENS,
        "queue_timeout_s": VERIFY_QUEUE_TIMEOUT_S,
        "prefix_cache": {"enabled": cached > 0},
        "workload": {
            "arrival": {"kind": "poisson", "rate_per_s": spec.requests_per_s},
            "classes": [klass],
        },
    }
    first = candidate.pools[0]
    doc["gpu"] = first.layout.gpu
    if candidate.mode == "aggregated":
        doc["deployment"] = _deployment_fields(first)
        doc["replicas"] = first.replicas
    else:
        decode = candidate.pools[1]
        doc["disaggregation"] = {
            "prefill": {
                "gpu": first.layout.gpu,
                "replicas": first.replicas,
                "deployment": _deployment_fields(first),
            },
            "decode": {
                "gpu": decode.layout.gpu,
                "replicas": decode.replicas,
                "deployment": _deployment_fields(decode),
            },
        }
    return doc


def candidate_cached_tokens(spec: SearchSpec) -> int:
    """Cached prompt tokens as whole prefix-cache blocks (what the simulator can hit)."""
    cached = cached_prompt_tokens(spec.input_tokens, spec.prefix_hit_ratio)
    return cached // VERIFY_BLOCK_TOKENS * VERIFY_BLOCK_TOKENS


def _deployment_fields(pool: Pool) -> dict[str, Any]:
    return pool.layout.deployment.model_dump(exclude_unset=True)


def simulate_plan(item: tuple[dict[str, Any], float]) -> dict[str, Any]:
    """One verification run (a module-level function: Dask ships it to workers). Requests
    arriving in the first third of the run warm the replicas up and are not measured; the
    run drains so that measured requests finish."""
    from planner.schema import Scenario
    from planner.sim.run import run_scenario
    from planner.validation import validate

    document, percentile = item
    scenario = validate(Scenario, document, "search --verify")
    result = run_scenario(scenario)
    warm_up_s = scenario.duration_s * WARM_UP_SHARE
    measured = [r for r in result.cluster.requests if r.arrival_s >= warm_up_s]
    ttft = np.array(
        [r.first_token_s - r.arrival_s for r in measured if r.first_token_s == r.first_token_s]
    )
    tpot = np.array(
        [
            (r.finish_s - r.first_token_s) / (r.output_tokens - 1)
            for r in measured
            if r.finish_s == r.finish_s and r.output_tokens > 1 and r.state == "finished"
        ]
    )
    out: dict[str, Any] = {
        "measured_requests": len(measured),
        "ttft_at_percentile_s": float(np.quantile(ttft, percentile)) if ttft.size else None,
        "ttft_mean_s": float(np.mean(ttft)) if ttft.size else None,
        "tpot_p50_s": float(np.median(tpot)) if tpot.size else None,
        "tpot_mean_s": float(np.mean(tpot)) if tpot.size else None,
        "goodput": result.summary["goodput"],
        "sim_wall_time_s": result.summary["sim_wall_time_s"],
    }
    return out


def verify(
    result: SearchResult,
    k: int,
    *,
    scheduler: str | None = None,
    duration_s: float = 120.0,
    progress: Callable[[float], None] | None = None,
) -> list[dict[str, Any]]:
    """Simulate the top ``k`` plans; planned vs simulated TTFT and TPOT for each."""
    spec = result.spec
    chosen = result.top[:k]
    items = [
        (scenario_document(c, spec, duration_s, VERIFY_SEED + i), spec.ttft_percentile)
        for i, c in enumerate(chosen)
    ]
    simulated = map_tasks(simulate_plan, items, scheduler=scheduler, progress=progress)
    out = []
    for rank, (candidate, sim) in enumerate(zip(chosen, simulated, strict=True), start=1):
        plan = {
            "ttft_s": candidate.ttft_s,
            "ttft_at_percentile_s": candidate.ttft_at_percentile_s,
            "tpot_s": candidate.tpot_s,
        }
        delta = {
            "ttft_at_percentile": _ratio(sim["ttft_at_percentile_s"], plan["ttft_at_percentile_s"]),
            "tpot": _ratio(sim["tpot_p50_s"], plan["tpot_s"]),
        }
        out.append(
            {
                "rank": rank,
                "label": candidate.label,
                "plan": plan,
                "simulated": sim,
                "simulated_over_planned": delta,
            }
        )
    return out


def _ratio(simulated: float | None, planned: float) -> float | None:
    if simulated is None or planned <= 0:
        return None
    return simulated / planned
