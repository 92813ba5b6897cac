"""Which experts a batch routes to, and how much lands on the busiest expert-parallel rank.

A fused MoE layer finishes when its busiest rank does, so the step is timed on that rank:
it holds R token-expert assignments spread over A active local experts.

- Uniform routing (``alpha`` None): every rank gets the mean, R = T k / EP, and the
  experts a rank touches follow E/EP x (1 - (1 - k/E)^T) (T tokens choosing k of E).
- Power-law routing (``alpha`` > 1): the model AIConfigurator uses when it measures MoE
  kernels (ai-dynamo/aiconfigurator ``collector/helper.py``, power-law MoE workload:
  per-expert loads drawn from p(x) ~ x^-alpha on [1, 0.8 T] (on [0.01, 2] when T k <= E),
  scaled to T k assignments, the busiest rank timed). kvplan draws the same distribution
  with a fixed seed (``SEED``), averages ``DRAWS`` draws on a log-spaced grid of T and
  interpolates, so a result is deterministic and cheap.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
SEED = 20260101
DRAWS = 16
GRID_POINTS = 73  # log-spaced token counts from 1 to 2^24
GRID_MAX_TOKENS = 2**24
# Loads of the power-law model (AIConfigurator's collector): x_max = 0.8 T when T k > E.
POWER_LAW_MAX_SHARE = 0.8
POWER_LAW_SMALL_RANGE = (0.01, 2.0)


def _uniform(
    num_experts: int, experts_per_token: int, ep: int, tokens: FloatArray
) -> tuple[FloatArray, FloatArray]:
    assignments = tokens * experts_per_token / ep
    local = num_experts / ep
    active = local * (1.0 - (1.0 - experts_per_token / num_experts) ** tokens)
    return assignments, active


def _power_law_values(u: FloatArray, alpha: float, low: float, high: float) -> FloatArray:
    """Inverse CDF of p(x) ~ x^-alpha on [low, high] at uniform draws u."""
    a = 1.0 - alpha
    return np.asarray(((high**a - low**a) * u + low**a) ** (1.0 / a), dtype=np.float64)


def _capped_shares(x: FloatArray, total: float, cap: float) -> FloatArray:
    """Loads proportional to x summing to ``total``, none above ``cap`` (a token picks an
    expert at most once): the excess of capped experts goes to the others, in proportion."""
    exact: FloatArray = x / x.sum() * total
    for _ in range(len(x)):
        over = exact > cap
        if not np.any(over):
            break
        excess = float(np.sum(exact[over] - cap))
        exact[over] = cap
        free = exact < cap
        exact[free] += excess * exact[free] / exact[free].sum()
    return exact


def _largest_remainder(x: FloatArray, total: float, cap: float) -> FloatArray:
    """Integer loads proportional to x (at most ``cap`` each) that sum to ``total``."""
    exact = _capped_shares(x, total, cap)
    counts: FloatArray = np.floor(exact)
    missing = round(float(total - counts.sum()))
    if missing > 0:
        room = np.where(counts < cap, counts - exact, np.inf)
        counts[np.argsort(room)[:missing]] += 1
    return counts


@cache
def _power_law_grid(
    num_experts: int, experts_per_token: int, ep: int, alpha: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(log T grid, busiest-rank share of T k, active experts on that rank). The same
    uniform draws serve every T (common random numbers), and both statistics are made
    non-decreasing in T: more tokens never lighten the busiest rank."""
    grid = np.unique(np.round(np.geomspace(1, GRID_MAX_TOKENS, GRID_POINTS)))
    u = np.random.default_rng(SEED).random((DRAWS, num_experts))
    shares = np.empty_like(grid)
    actives = np.empty_like(grid)
    ranks = np.array_split(np.arange(num_experts), ep)
    for i, t in enumerate(grid):
        total = t * experts_per_token
        low, high = (1.0, POWER_LAW_MAX_SHARE * t) if total > num_experts else POWER_LAW_SMALL_RANGE
        high = max(high, low * (1 + 1e-9))
        share_sum = active_sum = 0.0
        for draw in u:
            counts = _largest_remainder(_power_law_values(draw, alpha, low, high), total, t)
            loads = np.array([counts[r].sum() for r in ranks])
            busiest = int(np.argmax(loads))
            share_sum += loads[busiest] / total
            active_sum += float(np.count_nonzero(counts[ranks[busiest]]))
        shares[i] = share_sum / DRAWS
        actives[i] = active_sum / DRAWS
    assignments = np.maximum.accumulate(shares * grid)
    return np.log(grid), assignments / grid, np.maximum.accumulate(actives)


def busiest_rank(
    num_experts: int,
    experts_per_token: int,
    ep: int,
    tokens: ArrayLike,
    alpha: float | None,
) -> tuple[FloatArray, FloatArray]:
    """(R, A) for T tokens entering the layer (all ranks together): token-expert
    assignments on the busiest rank and its active experts. Vectorised over T."""
    t = np.asarray(tokens, dtype=np.float64)
    if alpha is None or ep < 1:
        return _uniform(num_experts, experts_per_token, max(ep, 1), t)
    log_grid, shares, actives = _power_law_grid(num_experts, experts_per_token, ep, alpha)
    log_t = np.log(np.maximum(t, 1.0))
    share = np.interp(log_t, log_grid, shares)
    active = np.interp(log_t, log_grid, actives)
    positive = t > 0
    assignments = np.where(positive, share * t * experts_per_token, 0.0)
    # A rank cannot hold more assignments than its experts x tokens, nor touch more
    # experts than it has or than assignments it holds.
    local = -(-num_experts // ep)
    active = np.where(positive, np.minimum(np.minimum(active, local), assignments), 0.0)
    return np.asarray(assignments, dtype=np.float64), np.asarray(active, dtype=np.float64)
