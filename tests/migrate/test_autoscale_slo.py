"""The autoscaler holds every class's TTFT SLO, not the fleet's average (hand-derived)."""

from __future__ import annotations

import math

import pytest

from planner.migrate.schema import AutoscaleReplicas
from planner.migrate.simulate import (
    CORRECTION_DECAY,
    CORRECTION_STEP,
    SLO_MISS_TOLERANCE,
    next_correction,
    wanted_count,
    worst_late_share,
)


def test_a_small_class_missing_its_slo_raises_the_correction():
    # Chat: 1,700 requests decided, 5 late (0.29%). RAG: 300 decided, 9 late (3%). The fleet
    # as a whole: 14 of 2,000 = 0.7% late, under the 1% allowance: a fleet-wide rule keeps
    # the count. RAG alone is 3 times over it: the class rule raises the correction.
    late, decided = [5, 9], [1700, 300]
    assert sum(late) / sum(decided) == pytest.approx(0.007)
    assert sum(late) / sum(decided) < SLO_MISS_TOLERANCE
    assert worst_late_share(late, decided) == pytest.approx(0.03)
    assert next_correction(1.0, worst_late_share(late, decided), False) == CORRECTION_STEP
    # Not while a replica is still provisioning (its capacity is on the way).
    assert next_correction(1.0, 0.03, True) == 1.0


def test_the_correction_decays_only_when_every_class_is_well_within():
    # Chat 0 of 1,000 late, RAG 1 of 300 (0.33%): over a quarter of the allowance (0.25%),
    # so the correction is kept; with RAG at 0 of 300 it decays by 3%.
    assert next_correction(1.5, worst_late_share([0, 1], [1000, 300]), False) == 1.5
    assert next_correction(1.5, worst_late_share([0, 0], [1000, 300]), False) == pytest.approx(
        1.5 * CORRECTION_DECAY
    )
    assert next_correction(1.0, 0.0, False) == 1.0  # never below the planner's count
    # A class with nothing decided counts as on time.
    assert worst_late_share([0, 0], [0, 0]) == 0.0


def test_wanted_count_rounds_the_corrected_plan_up_within_bounds():
    policy = AutoscaleReplicas(min_replicas=2, max_replicas=10)
    # 4 planned x 1.25 = 5 exactly (no rounding up past an exact product); x 1.3 = 5.2 -> 6.
    assert wanted_count(4, 1.25, True, policy) == 5
    assert wanted_count(4, 1.3, True, policy) == math.ceil(5.2)
    assert wanted_count(9, 1.25, True, policy) == 10  # 11.25 -> 12, capped at 10
    assert wanted_count(1, 1.0, True, policy) == 2  # the minimum
    assert wanted_count(0, 3.0, False, policy) == 2  # no demand: the minimum
