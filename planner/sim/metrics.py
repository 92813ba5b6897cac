"""Simulation metrics: latency percentiles and distributions, goodput, prefix hits, cost.

TTFT = first token - arrival (queueing included); TPOT = (finish - first token) /
(output tokens - 1); end-to-end = finish - arrival. Goodput is the share of requests whose
fate is decided that finished within their class SLO on both TTFT and TPOT. Decided:
finished, rejected, or still in flight at the end but already past their TTFT SLO (no
first token by then, or a late one) -- so an overloaded run with a growing queue cannot
report a high goodput from the few requests it finished. TTFT percentiles cover every
request that produced a first token, finished or not. The prefix hit ratio is
token-weighted: cached prompt tokens at first admission over prompt tokens of admitted
requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.schema import SLOSpec
from planner.sim.request import FINISHED, REJECTED, Request

PERCENTILES = (50, 90, 99)


def percentiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {f"p{p}": None for p in PERCENTILES}
    return {
        f"p{p}": float(v)
        for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True)
    }


@dataclass
class TimeSeries:
    time_s: list[float] = field(default_factory=list)
    kv_utilization: list[float] = field(default_factory=list)  # mean over replicas
    queued: list[int] = field(default_factory=list)  # waiting requests, all replicas
    running: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        return {
            "time_s": self.time_s,
            "kv_utilization": self.kv_utilization,
            "queued": self.queued,
            "running": self.running,
        }


@dataclass
class RequestArrays:
    """Per-request columns of finished requests (for distributions and exports)."""

    class_index: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray


def finished_arrays(requests: list[Request]) -> RequestArrays:
    done = [r for r in requests if r.state == FINISHED]

    def col(fn: Any, dtype: Any = np.float64) -> np.ndarray:
        return np.fromiter((fn(r) for r in done), dtype=dtype, count=len(done))

    return RequestArrays(
        class_index=col(lambda r: r.class_index, np.int64),
        ttft_s=col(lambda r: r.first_token_s - r.arrival_s),
        tpot_s=col(
            lambda r: (
                (r.finish_s - r.first_token_s) / (r.output_tokens - 1)
                if r.output_tokens > 1
                else np.nan
            )
        ),
        e2e_s=col(lambda r: r.finish_s - r.arrival_s),
        input_tokens=col(lambda r: r.input_tokens, np.int64),
        output_tokens=col(lambda r: r.output_tokens, np.int64),
        cached_tokens=col(lambda r: r.cached_tokens, np.int64),
    )


def meets_slo(arrays: RequestArrays, slos: list[SLOSpec]) -> np.ndarray:
    ttft_limit = np.array([s.ttft_s for s in slos])[arrays.class_index]
    tpot_limit = np.array([s.tpot_s for s in slos])[arrays.class_index]
    tpot_ok = np.isnan(arrays.tpot_s) | (arrays.tpot_s <= tpot_limit)
    return np.asarray((arrays.ttft_s <= ttft_limit) & tpot_ok, dtype=bool)


def _in_flight_misses(
    requests: list[Request], slos: list[SLOSpec], end_s: float
) -> tuple[list[int], int]:
    """Per class: in-flight requests that already missed their TTFT SLO; and how many
    in-flight requests are still undecided."""
    misses = [0] * len(slos)
    undecided = 0
    for r in requests:
        if r.state in (FINISHED, REJECTED):
            continue
        limit = slos[r.class_index].ttft_s
        first = r.first_token_s
        late = (first - r.arrival_s > limit) if first == first else (end_s - r.arrival_s > limit)
        if late:
            misses[r.class_index] += 1
        else:
            undecided += 1
    return misses, undecided


def _ttft_all(requests: list[Request]) -> tuple[np.ndarray, np.ndarray]:
    """TTFT and class of every request with a first token (finished or still running)."""
    started = [r for r in requests if r.first_token_s == r.first_token_s]
    ttft = np.fromiter(
        (r.first_token_s - r.arrival_s for r in started), dtype=np.float64, count=len(started)
    )
    cls = np.fromiter((r.class_index for r in started), dtype=np.int64, count=len(started))
    return ttft, cls


def summarize(
    requests: list[Request],
    class_names: list[str],
    slos: list[SLOSpec],
    sim_time_s: float,
    gpus_total: int,
    usd_per_gpu_hour: float,
    preemptions: int,
) -> dict[str, Any]:
    states = Counter(r.state for r in requests)
    finished = states[FINISHED]
    rejected = states[REJECTED]
    arrays = finished_arrays(requests)
    ok = meets_slo(arrays, slos)
    misses, undecided = _in_flight_misses(requests, slos, sim_time_s)
    outcomes = finished + rejected + sum(misses)
    ttft_all, ttft_class = _ttft_all(requests)
    admitted = [r for r in requests if r.admitted_once]
    prompt_tokens = sum(r.input_tokens for r in admitted)
    cached = sum(r.cached_tokens for r in admitted)
    output_tokens = int(arrays.output_tokens.sum())
    gpu_hours = gpus_total * sim_time_s / 3600.0
    cost_usd = gpu_hours * usd_per_gpu_hour
    per_class = []
    for i, name in enumerate(class_names):
        in_class = arrays.class_index == i
        class_outcomes = misses[i] + sum(
            1 for r in requests if r.class_index == i and r.state in (FINISHED, REJECTED)
        )
        per_class.append(
            {
                "name": name,
                "finished": int(in_class.sum()),
                "goodput": float(ok[in_class].sum() / class_outcomes) if class_outcomes else None,
                "ttft_s": percentiles(ttft_all[ttft_class == i]),
                "tpot_s": percentiles(arrays.tpot_s[in_class & ~np.isnan(arrays.tpot_s)]),
            }
        )
    return {
        "requests": {
            "arrived": len(requests),
            "finished": finished,
            "rejected": rejected,
            "in_flight": len(requests) - finished - rejected,
            "in_flight_past_ttft_slo": sum(misses),
            "in_flight_undecided": undecided,
        },
        "ttft_s": percentiles(ttft_all),
        "tpot_s": percentiles(arrays.tpot_s[~np.isnan(arrays.tpot_s)]),
        "e2e_s": percentiles(arrays.e2e_s),
        "prefix_hit_ratio": cached / prompt_tokens if prompt_tokens else 0.0,
        "preemptions": preemptions,
        "goodput": float(ok.sum() / outcomes) if outcomes else None,
        "rejections_by_reason": dict(
            Counter(r.reject_reason for r in requests if r.state == REJECTED)
        ),
        "reroutes": sum(r.reroutes for r in requests),
        "throughput": {
            "output_tokens_per_s": output_tokens / sim_time_s,
            "requests_per_s": finished / sim_time_s,
        },
        "cost": {
            "gpu_hours": gpu_hours,
            "usd": cost_usd,
            "usd_per_million_output_tokens": cost_usd / output_tokens * 1e6
            if output_tokens
            else None,
        },
        "per_class": per_class,
        "sim_time_s": sim_time_s,
    }
