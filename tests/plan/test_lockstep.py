"""DP groups in lockstep (``planner.plan.lockstep``) and the sizing that uses it, by hand.

Two DP groups; a prompt takes 1 s of prefill alone and 2 s with the other group
prefilling too, in one chunk: D(u) = (1 - u) x 1 + u x 2 = 1 + u, and at a group rate r
u = r (1 + u), so u = r / (1 - r). At u = 1/4 (r = 1/5, 2/5 requests/s per replica):
- busy groups: none (3/4)^2 = 9/16, one 2 x 1/4 x 3/4 = 6/16, both 1/16; a step carries
  some prefill 1 - (1 - u)^2 = 7/16 of the time;
- with decodes in the prefill step (vLLM), a 0.1-s decode step runs one token per step
  of 1 s (one group) or 2 s (both): tokens/s = 9/16 / 0.1 + 6/16 / 1 + 1/16 / 2 =
  5.625 + 0.375 + 0.03125 = 6.03125, so H = 1 - 0.1 x 6.03125 = 0.396875;
- without (SGLang), a sequence's own group prefilling (1/4) emits nothing, the other's
  alone (3/4 x 1/4 = 3/16) one token per 1-s step: tokens/s = 5.625 + 0.1875 = 5.8125,
  H = 0.41875.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.plan.lockstep import Lockstep
from planner.plan.throughput import DecodeCurve

TIMES = np.array([1.0, 2.0])
STEP_S = 0.1


def _lock(decodes_in_prefill_steps: bool = True) -> Lockstep:
    return Lockstep(TIMES, 1, decodes_in_prefill_steps)


def test_held_share_by_hand():
    assert _lock().held_share(0.25, STEP_S) == pytest.approx(0.396875, rel=1e-12)
    assert _lock(False).held_share(0.25, STEP_S) == pytest.approx(0.41875, rel=1e-12)
    # A 1-s decode step: steps with one group prefilling last no longer (nothing held),
    # both-group steps (1/16 of the time) hold it half their 2 s.
    assert _lock().held_share(0.25, 1.0) == pytest.approx(1.0 / 16 * (1 - 1 / 2), rel=1e-12)
    # Idle: nothing held.
    assert _lock().held_share(0.0, STEP_S) == pytest.approx(0.0, abs=1e-15)


def test_rate_and_utilisation_invert_each_other():
    lock = _lock()
    assert lock.service_s(0.25) == pytest.approx(1.25)
    # lambda = 2 u / D(u) = 0.5 / 1.25 = 0.4 per replica.
    assert lock.replica_rate(0.25) == pytest.approx(0.4)
    assert lock.utilisation(0.4) == pytest.approx(0.25, rel=1e-9)


def test_tpot_under_lockstep_by_hand():
    # A flat 0.1-s decode step at every batch up to 100, one token per step.
    curve = DecodeCurve(np.full(100, STEP_S), 1.0, 100)
    # 0.4 requests/s: TPOT = 0.1 / (1 - 0.396875) = 0.165803 s; 100 output tokens give
    # 0.4 x 100 x 0.165803 = 6.63 sequences: batch 7.
    tpot = STEP_S / (1 - 0.396875)
    assert curve.batch_at(0.4, 100, 1.0, _lock()) == pytest.approx((7, tpot), rel=1e-9)
    # u -> 0: the no-prefill TPOT.
    assert curve.batch_at(1e-9, 100, 1.0, _lock())[1] == pytest.approx(STEP_S, rel=1e-6)


def test_max_rate_under_lockstep_by_hand():
    curve = DecodeCurve(np.full(100, STEP_S), 1.0, 100)
    # An SLO of exactly the TPOT at u = 1/4 binds first (Little's law needs 6.6 of the
    # 100 sequences, prefill runs at 0.4 x 1 s = 40% of its limit 80%): 0.4 requests/s.
    slo = STEP_S / (1 - 0.396875)
    assert curve.max_rate(100, 1.0, slo, _lock()) == pytest.approx(0.4, rel=1e-6)
    # A cap of 5 sequences binds instead: the rate r with r x 100 x TPOT(r) = 5, where
    # u = (r/2) / (1 - r/2) and TPOT = 0.1 / (1 - H(u)) by the hand formula.
    small = DecodeCurve(np.full(5, STEP_S), 1.0, 5)
    rate = small.max_rate(100, 1.0, 1.0, _lock())
    u = (rate / 2) / (1 - rate / 2)
    idle, one, both = (1 - u) ** 2, 2 * u * (1 - u), u * u
    held = 1 - STEP_S * (idle / STEP_S + one / 1.0 + both / 2.0)
    assert rate * 100 * STEP_S / (1 - held) == pytest.approx(5.0, rel=1e-6)
    # An SLO below the bare decode step: nothing.
    assert curve.max_rate(100, 1.0, 0.09, _lock()) == 0.0


def test_a_group_utilisation_over_the_limit_bounds_the_rate():
    # A prompt alone takes 2 s, with the other group busy 1 s (a partly busy step without
    # micro-batch overlap is slower): D(u) = 2 (1 - u) + u = 2 - u, u = r (2 - u), so
    # u = 2 r / (1 + r). The all-groups share lambda x 1 / 2 allows lambda = 1.6, but u
    # reaches the 80% limit first: r = 0.8 / 1.2 = 2/3, lambda = 4/3 requests/s. (A
    # 1-ms decode step: TPOT and Little's law are far from binding.)
    lock = Lockstep(np.array([2.0, 1.0]), 1, True)
    curve = DecodeCurve(np.full(100, 1e-3), 1.0, 100)
    assert curve.max_rate(10, 0.5, 1.0, lock) == pytest.approx(4 / 3, rel=1e-6)
