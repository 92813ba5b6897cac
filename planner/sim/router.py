"""Routing a request to a replica: round robin, least outstanding tokens, prefix affinity.

Policies read replica state at the moment of arrival; replicas in the middle of a fast-mode
jump are synced first so both simulation modes route identically.
"""

from __future__ import annotations

from planner.sim.replica import Replica
from planner.sim.request import Request


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
            # Longest cached prefix wins; ties (e.g. nothing cached) go to the least loaded.
            return max(
                up,
                key=lambda r: (r.pool.peek(request.block_keys), -r.outstanding_tokens(), -r.index),
            )
        return min(up, key=lambda r: (r.outstanding_tokens(), r.index))
