"""MoE routing on the busiest expert-parallel rank (planner.plan.efficiency.routing)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.plan.efficiency.routing import busiest_rank

TOKENS = np.array([1, 2, 8, 64, 512, 4096, 65_536], dtype=np.float64)


def test_uniform_routing_by_hand() -> None:
    # DeepSeek-V3: 256 experts, 8 per token, on 8 ranks of 32 experts. Uniform: each rank
    # gets T x 8 / 8 = T assignments and touches 32 x (1 - (1 - 8/256)^T) experts; two
    # tokens: 32 x (1 - (248/256)^2) = 32 - 30.03125 = 1.96875.
    r, a = busiest_rank(256, 8, 8, TOKENS, None)
    np.testing.assert_allclose(r, TOKENS)
    assert a[1] == pytest.approx(1.96875)
    assert a[-1] == pytest.approx(32.0)


@pytest.mark.parametrize("alpha", [1.01, 1.2])
@pytest.mark.parametrize("ep", [1, 8, 32])
def test_power_law_routing_is_a_heavier_busiest_rank(alpha: float, ep: int) -> None:
    r, a = busiest_rank(256, 8, ep, TOKENS, alpha)
    uniform_r, _ = busiest_rank(256, 8, ep, TOKENS, None)
    # The busiest rank holds at least the mean and at most every assignment of its experts.
    assert np.all(r >= uniform_r - 1e-9)
    assert np.all(r <= TOKENS * 8)
    assert np.all(a <= 256 / ep) and np.all(a >= 0) and np.all(a <= r)
    # More tokens never lighten the busiest rank; the same call gives the same answer.
    assert np.all(np.diff(r) >= 0) and np.all(np.diff(a) >= 0)
    again = busiest_rank(256, 8, ep, TOKENS, alpha)
    np.testing.assert_array_equal(again[0], r)
    if ep == 1:
        np.testing.assert_allclose(r, TOKENS * 8)  # one rank holds everything


def test_no_tokens_no_work() -> None:
    r, a = busiest_rank(256, 8, 8, np.array([0.0]), 1.01)
    assert r[0] == 0 and a[0] == 0
