"""M/D/c waiting times (planner.plan.queueing) against closed forms for one server and an
independent event-by-event simulation for several."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from planner.errors import KvplanError
from planner.plan.queueing import (
    MAX_EXACT_SERVERS,
    mean_wait,
    queue_distribution,
    wait_cdf,
    wait_quantile,
)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.95])
def test_md1_queue_length_is_pollaczek_khinchine(rho):
    # M/D/1: mean number waiting Lq = rho^2 / (2 (1 - rho)) (P-K with zero service variance).
    q = queue_distribution(1, rho)
    assert float(np.sum(np.arange(len(q)) * q)) == pytest.approx(rho**2 / (2 * (1 - rho)))
    assert mean_wait(1, rho) == pytest.approx(rho / (2 * (1 - rho)))


@pytest.mark.parametrize("rho", [0.3, 0.7])
def test_md1_wait_cdf_is_erlangs(rho):
    # Erlang (1909), service time 1, arrival rate rho:
    #   P(W <= x) = (1 - rho) e^{rho x}                               for 0 <= x < 1
    #   P(W <= x) = (1 - rho) (e^{rho x} - rho (x - 1) e^{rho (x-1)})  for 1 <= x < 2
    for x in (0.0, 0.25, 0.9):
        assert wait_cdf(1, rho, x) == pytest.approx((1 - rho) * math.exp(rho * x), rel=1e-9)
    for x in (1.0, 1.5, 1.99):
        expected = (1 - rho) * (math.exp(rho * x) - rho * (x - 1) * math.exp(rho * (x - 1)))
        assert wait_cdf(1, rho, x) == pytest.approx(expected, rel=1e-9)


def test_md1_median_by_hand():
    # rho = 0.7: P(W = 0) = 0.3; the median solves 0.3 e^{0.7 x} = 0.5 in [0, 1):
    # x = ln(5/3) / 0.7 = 0.72975 service times.
    assert wait_quantile(1, 0.7, 0.5) == pytest.approx(math.log(5 / 3) / 0.7, rel=1e-9)
    # Below P(W = 0) no wait at all.
    assert wait_quantile(1, 0.7, 0.2) == 0.0


def _simulated_waits(servers: int, rho: float, customers: int, seed: int) -> np.ndarray:
    """Kiefer-Wolfowitz recursion for FCFS with c servers, service time 1: the sorted
    vector of times until each server is free, seen by successive arrivals."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / (servers * rho), customers)
    free = np.zeros(servers)
    waits = np.empty(customers)
    for i, gap in enumerate(gaps):
        free = np.maximum(free - gap, 0.0)
        waits[i] = free[0]
        free[0] += 1.0
        free.sort()
    return waits[customers // 10 :]  # drop the warm-up


@pytest.mark.parametrize(("servers", "rho"), [(2, 0.8), (4, 0.85)])
def test_mdc_against_simulation(servers, rho):
    waits = _simulated_waits(servers, rho, 200_000, seed=servers)
    assert mean_wait(servers, rho) == pytest.approx(float(np.mean(waits)), rel=0.05)
    for p in (0.5, 0.9, 0.99):
        assert wait_quantile(servers, rho, p) == pytest.approx(
            float(np.quantile(waits, p)), rel=0.05, abs=0.01
        )
    assert wait_cdf(servers, rho, 0.0) == pytest.approx(float(np.mean(waits == 0)), abs=0.01)


def test_more_servers_wait_less():
    # Same utilisation, pooled servers: less waiting (economies of scale).
    assert mean_wait(8, 0.8) < mean_wait(2, 0.8) < mean_wait(1, 0.8)


@pytest.mark.parametrize(("servers", "rho"), [(0, 0.5), (1, 1.0), (2, -0.1)])
def test_bad_queue_inputs(servers, rho):
    with pytest.raises(KvplanError):
        queue_distribution(servers, rho)


def test_waits_fall_as_servers_are_pooled_so_large_queues_get_a_bound():
    # Fuzz finding: a disaggregated prefill pool of thousands of engines (the dashboard's Cost
    # page at 3,994 requests/s) ran SuperLU out of memory and crashed the process. Waits in
    # units of D at a fixed utilisation fall as servers are pooled (checked exactly up to the
    # cap), so larger queues get the cap's waits: an upper bound, computed at once.
    for rho in (0.7, 0.95):
        waits = [wait_quantile(c, rho, 0.9) for c in (1, 8, 64, MAX_EXACT_SERVERS)]
        assert all(a >= b for a, b in itertools.pairwise(waits)), waits
        means = [mean_wait(c, rho) for c in (1, 8, 64, MAX_EXACT_SERVERS)]
        assert all(a >= b for a, b in itertools.pairwise(means)), means
    big = 4096
    assert wait_quantile(big, 0.97, 0.9) == wait_quantile(MAX_EXACT_SERVERS, 0.97, 0.9)
    assert mean_wait(big, 0.97) == mean_wait(MAX_EXACT_SERVERS, 0.97)
    assert wait_cdf(big, 0.97, 0.5) == wait_cdf(MAX_EXACT_SERVERS, 0.97, 0.5)
    with pytest.raises(KvplanError, match="servers"):
        queue_distribution(big, 0.97)
