"""The phases of a migration as functions of time: where each class's requests go, what
share is mirrored, and which replica policy each fleet follows.

- A class's share on the target is piecewise linear: 0 until its first cut-over, then each
  cut-over ramps it linearly from its previous value to ``to_percent`` over ``ramp_h``.
- The shadow share of a class is the sum of the shadow phases covering it (capped at 100%).
- The source fleet follows its replica policy from hour 0, holds the reserve count from
  the rollback reserve on, and drains at decommission. The target is asked for at stand-up
  and follows its policy from then on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.migrate.schema import (
    SECONDS_PER_HOUR,
    AutoscaleReplicas,
    Cutover,
    FixedReplicas,
    MigrationScenario,
    ReplicaPolicy,
    Shadow,
    SizedReplicas,
)

SOURCE = "source"
TARGET = "target"
FLEETS = (SOURCE, TARGET)
FloatArray = NDArray[np.float64]


def target_share(s: MigrationScenario, class_name: str, t_s: ArrayLike) -> FloatArray:
    """Fraction (0..1) of a class's new requests that go to the target at times t."""
    t_h = np.asarray(t_s, dtype=np.float64) / SECONDS_PER_HOUR
    share = np.zeros(np.shape(t_h))
    for p in s.cutovers:
        if p.class_name != class_name:
            continue
        goal = p.to_percent / 100.0
        if p.ramp_h <= 0:
            share = np.where(t_h >= p.at_h, goal, share)
        else:
            ramp = share + (goal - share) * (t_h - p.at_h) / p.ramp_h
            share = np.where(t_h >= p.at_h + p.ramp_h, goal, np.where(t_h >= p.at_h, ramp, share))
    return share


def shadow_share(s: MigrationScenario, class_name: str, t_s: ArrayLike) -> FloatArray:
    """Fraction (0..1) of a class's requests mirrored to the target at times t."""
    t_h = np.asarray(t_s, dtype=np.float64) / SECONDS_PER_HOUR
    total = np.zeros(np.shape(t_h))
    for p in s.phases:
        if isinstance(p, Shadow) and (p.classes is None or class_name in p.classes):
            inside = (t_h >= p.at_h) & (t_h < p.at_h + p.duration_h)
            total = total + np.where(inside, p.share_percent / 100.0, 0.0)
    return np.minimum(total, 1.0)


@dataclass(frozen=True)
class PolicySpan:
    """From ``start_s`` (to the next span) the fleet follows ``policy``; None = no
    replicas (before stand-up, after decommission)."""

    start_s: float
    policy: ReplicaPolicy | None


def policy_spans(s: MigrationScenario, fleet: str) -> list[PolicySpan]:
    """The replica policy of a fleet over the migration, as time-ordered spans."""
    if fleet == TARGET:
        spans = [PolicySpan(0.0, None)] if s.stand_up_h > 0 else []
        spans.append(PolicySpan(s.stand_up_h * SECONDS_PER_HOUR, s.fleets.target.replicas))
        return spans
    spans = [PolicySpan(0.0, s.fleets.source.replicas)]
    reserve = s.reserve
    if reserve is not None:
        spans.append(
            PolicySpan(reserve.at_h * SECONDS_PER_HOUR, FixedReplicas(count=reserve.replicas))
        )
    end_h = s.decommission_h
    if end_h is not None:
        spans.append(PolicySpan(end_h * SECONDS_PER_HOUR, None))
    return spans


def policy_at(s: MigrationScenario, fleet: str, t_s: float) -> ReplicaPolicy | None:
    current: ReplicaPolicy | None = None
    for span in policy_spans(s, fleet):
        if span.start_s <= t_s:
            current = span.policy
    return current


def is_autoscaled(policy: ReplicaPolicy | None) -> bool:
    return isinstance(policy, AutoscaleReplicas)


def fixed_count(policy: ReplicaPolicy | None, sized: int | None = None) -> int:
    """Replicas of a non-autoscaled policy (``sized``: the planned count of a sized one)."""
    if policy is None:
        return 0
    if isinstance(policy, FixedReplicas):
        return policy.count
    if isinstance(policy, SizedReplicas):
        if sized is None:
            raise ValueError("a sized policy needs its planned count")
        return sized
    raise ValueError("an autoscaled fleet has no fixed count")


def cutover_spans_h(s: MigrationScenario) -> list[tuple[Cutover, float, float]]:
    """Each cut-over with its start and ramp end, hours."""
    return [(p, p.at_h, p.at_h + p.ramp_h) for p in s.cutovers]


def served_classes(s: MigrationScenario, fleet: str) -> list[int]:
    """Indexes of the classes a fleet ever serves (production or mirrored)."""
    names = [c.name for c in s.traffic.classes]
    if fleet == SOURCE:
        # Every class starts on the source unless cut over at hour 0 to 100% at once.
        return [i for i, name in enumerate(names) if float(target_share(s, name, 0.0)) < 1.0]
    moved = {p.class_name for p in s.cutovers}
    mirrored = set()
    for p in s.phases:
        if isinstance(p, Shadow):
            mirrored |= set(p.classes or names)
    return [i for i, name in enumerate(names) if name in moved | mirrored]
