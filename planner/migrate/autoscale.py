"""How many replicas a fleet wants for a demand: the planner's sizing, nothing new.

A demand is a request rate with mean prompt and answer lengths (in the fleet's tokens),
the share of prompt tokens served from the prefix cache, and the strictest SLOs of the
classes it carries. The fleet wants ``size_replicas(rate / target_utilisation, ...)``
replicas (TPOT SLO, and TTFT SLO at its percentile): the same answer ``kvplan plan --rate``
gives. The simulated autoscaler feeds it the last interval's measured demand; the hybrid's
analytic hours feed it their expected demand. Sizings are cached on rounded inputs (rate,
lengths: 2% steps in log space; hit ratio: 1% steps), so a long timeline asks the planner
only for the distinct demands it meets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import KvplanError
from planner.plan.deployed import Deployed
from planner.plan.throughput import size_replicas

LOG_STEP = math.log(1.02)
HIT_STEP = 0.01


@dataclass(frozen=True)
class Demand:
    requests_per_s: float
    mean_input_tokens: float
    mean_output_tokens: float
    prefix_hit_ratio: float
    tpot_slo_s: float
    ttft_slo_s: float


def _log_round(x: float) -> float:
    return math.exp(round(math.log(max(x, 1e-9)) / LOG_STEP) * LOG_STEP)


class Sizer:
    """Replicas wanted for a demand on one deployment (cached)."""

    def __init__(self, deployed: Deployed) -> None:
        self.deployed = deployed
        self._cache: dict[tuple[float, ...], int] = {}
        self.calls = 0

    def replicas(self, demand: Demand, target_utilisation: float = 1.0) -> int:
        """The fewest replicas for ``demand`` planned at rate / target_utilisation; 0 for
        no demand. Raises KvplanError when no replica count can meet the SLOs."""
        if demand.requests_per_s <= 0:
            return 0
        key = (
            _log_round(demand.requests_per_s / target_utilisation),
            _log_round(demand.mean_input_tokens),
            _log_round(demand.mean_output_tokens),
            round(min(max(demand.prefix_hit_ratio, 0.0), 0.99) / HIT_STEP) * HIT_STEP,
            demand.tpot_slo_s,
            demand.ttft_slo_s,
        )
        cached = self._cache.get(key)
        if cached is None:
            self.calls += 1
            cached = size_replicas(
                self.deployed,
                key[0],
                max(1, round(key[1])),
                max(1, round(key[2])),
                demand.tpot_slo_s,
                prefix_hit_ratio=key[3],
                ttft_slo_s=demand.ttft_slo_s,
            ).replicas
            self._cache[key] = cached
        return cached

    def replicas_or(self, demand: Demand, target_utilisation: float, fallback: int) -> int:
        """``replicas``, or ``fallback`` where the planner finds no feasible count."""
        try:
            return self.replicas(demand, target_utilisation)
        except KvplanError:
            return fallback
