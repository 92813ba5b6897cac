"""A fleet: replicas of one deployment whose number changes while the simulation runs.

A replica is asked for at some time (it bills from then: cloud GPUs are paid from the
moment they are started), serves after a provisioning delay (node start, weights loading,
graph capture), and is removed by draining: it takes no new requests, finishes the ones it
holds, and stops billing when empty. A replica that is asked for and removed before it
serves stops billing at once. Each replica is ``attention_dp`` engines (one per
attention data-parallel group, as in :class:`planner.sim.cluster.Cluster`); the router sees
the engines of serving, non-draining replicas. Requests that arrive while no replica serves
wait until one does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from planner.plan.deployed import Deployed
from planner.plan.perf import StepModel
from planner.sim.replica import Replica, ReplicaConfig, link_dp_groups
from planner.sim.request import Request
from planner.sim.router import Router


@dataclass
class ReplicaSlot:
    """One replica's life: asked, serving, draining, stopped (times in simulated seconds)."""

    number: int
    asked_s: float
    ready_s: float
    engines: list[Replica] = field(default_factory=list)
    serving: bool = False
    draining: bool = False
    stopped_s: float | None = None

    def billed_s(self, start_s: float, end_s: float) -> float:
        """Seconds of [start_s, end_s) this replica was billed."""
        stop = end_s if self.stopped_s is None else min(self.stopped_s, end_s)
        return max(0.0, stop - max(self.asked_s, start_s))

    @property
    def empty(self) -> bool:
        return all(not e.waiting and not e.running for e in self.engines)


class Fleet:
    def __init__(
        self,
        env: simpy.Environment,
        deployed: Deployed,
        config: ReplicaConfig,
        router_policy: str,
        on_finish: Callable[[Request, float], None],
    ) -> None:
        self.env = env
        self.deployed = deployed
        self.config = config
        self.groups = deployed.attention_dp
        self.step_model = StepModel(deployed, per_group=self.groups > 1)
        self.on_finish = on_finish
        self.slots: list[ReplicaSlot] = []
        self.accepting: list[Replica] = []  # the router's list, changed in place
        self.router = Router(router_policy, self.accepting)
        self.pending: list[Request] = []
        self._engine_slot: dict[int, ReplicaSlot] = {}
        # (time, billed replicas, serving replicas) at every change
        self.changes: list[tuple[float, int, int]] = []

    # ------------------------------------------------------------------ counts
    @property
    def live(self) -> list[ReplicaSlot]:
        """Replicas asked for and not removed (serving or provisioning)."""
        return [s for s in self.slots if s.stopped_s is None and not s.draining]

    @property
    def billed(self) -> int:
        return sum(1 for s in self.slots if s.stopped_s is None)

    @property
    def serving(self) -> int:
        return sum(1 for s in self.slots if s.serving and not s.draining)

    def engines(self) -> list[Replica]:
        return [e for s in self.slots for e in s.engines]

    def _changed(self) -> None:
        self.changes.append((self.env.now, self.billed, self.serving))

    # ------------------------------------------------------------------ scaling
    def scale_to(self, count: int, delay_s: float, ready_s: float | None = None) -> None:
        """Ask for or remove replicas so that ``count`` are live. New replicas serve after
        ``delay_s`` (or at ``ready_s`` if given); removal takes provisioning ones first,
        then the newest serving ones, which drain."""
        now = self.env.now
        live = self.live
        if count > len(live):
            for _ in range(count - len(live)):
                slot = ReplicaSlot(
                    len(self.slots), now, now + delay_s if ready_s is None else ready_s
                )
                self.slots.append(slot)
                self.env.process(self._provision(slot))
        elif count < len(live):
            excess = len(live) - count
            order = sorted(live, key=lambda s: (s.serving, -s.number))
            for slot in order[:excess]:
                self._remove(slot)
        self._changed()

    def _provision(self, slot: ReplicaSlot) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(slot.ready_s - self.env.now, 0.0))
        if slot.stopped_s is not None or slot.draining:
            return
        first = slot.number * self.groups
        slot.engines = [
            Replica(first + g, self.env, self.config, self.step_model, self._finished)
            for g in range(self.groups)
        ]
        link_dp_groups(slot.engines, self.groups)
        for engine in slot.engines:
            self._engine_slot[engine.index] = slot
            self.accepting.append(engine)
        slot.serving = True
        self._changed()
        pending, self.pending = self.pending, []
        for request in pending:
            self.submit(request)

    def _remove(self, slot: ReplicaSlot) -> None:
        if not slot.serving:
            slot.stopped_s = self.env.now
            return
        slot.draining = True
        for engine in slot.engines:
            self.accepting.remove(engine)
        self._stop_if_drained(slot)

    def _stop_if_drained(self, slot: ReplicaSlot) -> None:
        if slot.draining and slot.stopped_s is None and slot.empty:
            slot.stopped_s = self.env.now
            self._changed()

    def check_drained(self) -> None:
        """Stop draining replicas that have emptied (queue timeouts empty them silently)."""
        for slot in self.slots:
            self._stop_if_drained(slot)

    # ------------------------------------------------------------------ requests
    def submit(self, request: Request) -> None:
        engine = self.router.choose(request, self.env.now)
        if engine is None:
            self.pending.append(request)
        else:
            engine.submit(request)

    def _finished(self, request: Request, now: float) -> None:
        self.on_finish(request, now)
        slot = self._engine_slot.get(request.replica)
        if slot is not None and slot.draining:
            self._stop_if_drained(slot)

    def in_flight(self) -> int:
        return len(self.pending) + sum(len(e.waiting) + len(e.running) for e in self.engines())

    def finalize(self, now: float) -> None:
        """Materialise every engine's state at ``now`` (the end of a run)."""
        for engine in self.engines():
            engine.finalize(now)
