"""Routing a request to a replica: round robin, least outstanding tokens, prefix affinity,
and cache-aware with a load-balance fallback.

``cache_aware`` follows the SGLang router's cache-aware policy (sgl-project/sglang
sgl-router, documented defaults in the SMG router docs, lightseekorg/smg
docs/getting-started/load-balancing.md): when the load (requests queued or running) is
imbalanced -- the busiest replica has more than ``BALANCE_ABS_THRESHOLD`` requests more
than the idlest and more than ``BALANCE_REL_THRESHOLD`` times its load -- the request goes
to the least loaded replica; otherwise to the replica with the longest cached prefix if it
covers more than ``CACHE_THRESHOLD`` of the prompt, else to the least loaded. Pure
``prefix_affinity`` never balances: after a scale-up the new, cold replicas get nothing
while the warm ones queue.

Policies read replica state at the moment of arrival; replicas in the middle of a fast-mode
jump are synced first so both simulation modes route identically.
"""

from __future__ import annotations

from planner.sim.replica import Replica
from planner.sim.request import Request

BALANCE_ABS_THRESHOLD = 64
BALANCE_REL_THRESHOLD = 1.5
CACHE_THRESHOLD = 0.3


def _load(replica: Replica) -> int:
    return len(replica.waiting) + len(replica.running)


class Router:
    def __init__(self, policy: str, replicas: list[Replica]) -> None:
        self.policy = policy
        self.replicas = replicas
        self._next = 0

    def choose(self, request: Request, now: float) -> Replica | None:
        """The replica to send to, or None if every replica is down."""
        up = [r for r in self.replicas if r.up]
        if not up:
            return None
        if self.policy == "round_robin":
            for _ in range(len(self.replicas)):
                replica = self.replicas[self._next % len(self.replicas)]
                self._next += 1
                if replica.up:
                    return replica
        for replica in up:
            replica.sync(now)
        if self.policy == "prefix_affinity":
            # Longest cached prefix wins; ties (e.g. nothing cached) go to the least loaded
            # (then the lowest index). Load is only asked of the tied replicas.
            peeks = [r.pool.peek(request.block_keys) for r in up]
            best = max(peeks)
            tied = [r for r, p in zip(up, peeks, strict=True) if p == best]
            return max(tied, key=lambda r: (-r.outstanding_tokens(), -r.index))
        if self.policy == "cache_aware":
            return self._cache_aware(request, up)
        return min(up, key=lambda r: (r.outstanding_tokens(), r.index))

    @staticmethod
    def _cache_aware(request: Request, up: list[Replica]) -> Replica:
        loads = [_load(r) for r in up]
        low, high = min(loads), max(loads)
        least = up[loads.index(low)]
        if high - low > BALANCE_ABS_THRESHOLD and high > BALANCE_REL_THRESHOLD * low:
            return least
        peeks = [r.pool.peek(request.block_keys) for r in up]
        best = max(peeks)
        block = up[0].config.block_tokens
        if best and best * block > CACHE_THRESHOLD * request.input_tokens:
            tied = [
                (load, r.index, r) for r, p, load in zip(up, peeks, loads, strict=True) if p == best
            ]
            return min(tied, key=lambda x: (x[0], x[1]))[2]
        return least
