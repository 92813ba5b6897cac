"""Waiting time of an M/D/c queue: Poisson arrivals, c servers, one fixed service time D.

Used for time to first token: prompts queue for prefill (one server per engine for an
aggregated replica's attention-DP group, c engines for a disaggregated prefill pool fed by
one router); each takes a fixed prefill time D. ``a = lambda D`` is the offered load and
``rho = a / c`` the utilisation.

Method (Crommelin 1932, "Delay probability formulae when the holding times are constant";
in the form of Franx 2001, "A simple solution for the M/D/c waiting time distribution",
Operations Research Letters 29(5)):
- Number in system N at times D apart: every customer in service at t has left by t + D
  and nobody who starts after t has, so N(t + D) = max(N(t) - c, 0) + A with
  A ~ Poisson(a). Its stationary distribution (solved here as a sparse linear system on
  states 0..K, K far into the tail) is also N's distribution at an arbitrary time.
- An arrival at t waits at most kD + u (k >= 0, 0 <= u < D) exactly when fewer than c of
  the customers ahead of it remain at t + kD + u, which gives, with
  Q = max(N - c, 0) and A_u ~ Poisson(a (1 - u / D)) independent of Q:
      P(W <= kD + u) = P(Q + A_u <= (k + 1) c - 1).
- Mean wait (Little's law on the queue): E[W] = E[Q] / lambda = D E[Q] / a. For c = 1
  this is the Pollaczek-Khinchine rho D / (2 (1 - rho)).
Times are returned in units of D.

Bounded work: the linear system grows with c (about c + a states, each with a Poisson row
of width a), and beyond a few hundred servers the sparse LU runs out of memory (a
disaggregated prefill pool for 4,000 requests/s crashed the process). Waits in units of D
at a fixed utilisation only fall as servers are added (the economy of scale of pooling), so
a queue of more than ``MAX_EXACT_SERVERS`` servers is given the waits of one with
``MAX_EXACT_SERVERS`` at the same utilisation: an upper bound, nearly zero there unless
rho is close to 1.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.linalg import spsolve
from scipy.stats import poisson

from planner.errors import KvplanError

# Utilisation above which the queue is treated as unstable for planning: the waiting time
# distribution's tail then needs more states than is worth solving (and grows without
# bound as rho -> 1).
MAX_UTILISATION = 0.98
# Poisson tails beyond this many standard deviations (plus a floor) are dropped.
TAIL_SIGMAS = 12.0
TAIL_FLOOR = 30
TAIL_DEPTH = 60.0  # states kept beyond c + Poisson width, times 1 / (1 - rho)
BISECTION_STEPS = 40  # the quantile to 1e-12 of a service time
# Largest c solved exactly (about 1.6 s and 0.3 GB at rho 0.97); larger queues get its waits.
MAX_EXACT_SERVERS = 256


def _check(servers: int, utilisation: float) -> None:
    if servers < 1:
        raise KvplanError(
            "an M/D/c queue needs at least one server", field="servers", value=servers
        )
    if servers > MAX_EXACT_SERVERS:
        raise KvplanError(
            "too many servers to solve exactly",
            field="servers",
            value=servers,
            expected=f"at most {MAX_EXACT_SERVERS} (wait_cdf, wait_quantile, mean_wait bound "
            "larger queues)",
        )
    if not 0.0 <= utilisation < MAX_UTILISATION:
        raise KvplanError(
            "queue utilisation out of range",
            field="utilisation",
            value=utilisation,
            expected=f"0 <= rho < {MAX_UTILISATION}",
        )


@lru_cache(maxsize=4096)
def queue_distribution(servers: int, utilisation: float) -> NDArray[np.float64]:
    """P(Q = j) for j = 0.., Q = max(N - c, 0) the customers waiting at an arbitrary time."""
    _check(servers, utilisation)
    c = servers
    a = c * utilisation
    if a == 0.0:
        return np.array([1.0])
    # States 0..K: K reaches far past where the stationary mass has any weight (the
    # queue's tail falls off geometrically, over about 1 / (1 - rho) customers).
    width = math.ceil(a + TAIL_SIGMAS * math.sqrt(a) + TAIL_FLOOR)
    states = c + width + math.ceil(TAIL_DEPTH / (1.0 - utilisation))
    pmf = poisson.pmf(np.arange(width + 1), a)
    base = np.maximum(np.arange(states) - c, 0)
    targets = base[:, None] + np.arange(width + 1)[None, :]
    probs = np.broadcast_to(pmf, targets.shape).copy()
    overflow = targets >= states
    # Mass beyond the last state (or beyond the Poisson cut) stays in the last state.
    lost = 1.0 - np.where(overflow, 0.0, probs).sum(axis=1)
    probs[overflow] = 0.0
    targets = np.minimum(targets, states - 1)
    rows = np.repeat(np.arange(states), width + 1)
    transition = sparse.csr_matrix(
        (probs.ravel(), (rows, targets.ravel())), shape=(states, states)
    ) + sparse.csr_matrix(
        (np.maximum(lost, 0.0), (np.arange(states), np.full(states, states - 1))),
        shape=(states, states),
    )
    # pi (P - I) = 0 with sum(pi) = 1: transpose, replace the last equation by the sum.
    system = (transition.T - sparse.identity(states)).tolil()
    system[states - 1, :] = np.ones(states)
    rhs = np.zeros(states)
    rhs[-1] = 1.0
    pi = np.clip(spsolve(system.tocsc(), rhs), 0.0, None)
    pi /= pi.sum()
    waiting = np.zeros(max(states - c, 1))
    waiting[0] = pi[: c + 1].sum()
    waiting[1:] = pi[c + 1 :]
    return waiting


def wait_cdf(servers: int, utilisation: float, wait_over_service: float) -> float:
    """P(W <= x D) for an M/D/c queue."""
    if wait_over_service < 0:
        return 0.0
    servers = min(servers, MAX_EXACT_SERVERS)  # an upper bound on the wait beyond it
    q = queue_distribution(servers, utilisation)
    a = servers * utilisation
    k = math.floor(wait_over_service)
    u = wait_over_service - k
    limit = (k + 1) * servers - 1
    j = np.arange(len(q))
    return float(np.sum(q * poisson.cdf(limit - j, a * (1.0 - u))))


@lru_cache(maxsize=65536)
def wait_quantile(servers: int, utilisation: float, probability: float) -> float:
    """Smallest x with P(W <= x D) >= p, in units of the service time D."""
    if not 0.0 < probability < 1.0:
        raise KvplanError(
            "must be a probability", field="percentile", value=probability, expected="0 < p < 1"
        )
    servers = min(servers, MAX_EXACT_SERVERS)  # an upper bound on the wait beyond it
    if wait_cdf(servers, utilisation, 0.0) >= probability:
        return 0.0
    q = queue_distribution(servers, utilisation)
    cumulative = np.cumsum(q)
    # P(W < (k + 1) D) = P(Q <= (k + 1) c - 1): the first interval [kD, (k+1)D) reaching p.
    ends = np.arange(servers - 1, len(q), servers)
    k = int(np.searchsorted(cumulative[ends], probability))
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        if wait_cdf(servers, utilisation, k + mid) >= probability:
            high = mid
        else:
            low = mid
    return k + high


def mean_wait(servers: int, utilisation: float) -> float:
    """E[W] / D = E[Q] / (c rho); for c = 1 the Pollaczek-Khinchine rho / (2 (1 - rho))."""
    if servers == 1:
        _check(servers, utilisation)
        return utilisation / (2.0 * (1.0 - utilisation))
    servers = min(servers, MAX_EXACT_SERVERS)  # an upper bound on the wait beyond it
    q = queue_distribution(servers, utilisation)
    a = servers * utilisation
    if a == 0.0:
        return 0.0
    return float(np.sum(np.arange(len(q)) * q) / a)
