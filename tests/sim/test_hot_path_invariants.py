"""Invariants the simulator's hot path relies on, checked at every scheduling decision.

``Replica._schedule`` only looks at the blocks of decoding requests whose context starts a
new block: every decoding request already holds blocks for context - 1 tokens (the KV of
its last step), so no other can need one. ``Replica.outstanding_tokens`` keeps its sum up
to date instead of walking the requests again. These tests check both claims directly
(the sum against a count written here), over runs that exercise preemption, queue
timeouts, a host tier, an invalidation, a fault with re-routing and sessions, in both
modes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.sim.replica import Replica, block_need
from planner.sim.run import run_scenario
from tests.sim.test_fast_exact import scenario


def _check_decode_blocks_held(replica: Replica) -> int:
    bs = replica.config.block_tokens
    checked = 0
    for r in replica.running:
        if r.decoding:
            token_blocks = len(r.shared_keys) + r.private_blocks - replica.config.state_blocks
            assert token_blocks >= -(-(r.input_tokens + r.generated - 1) // bs), r.rid
            checked += 1
    return checked


def _outstanding(replica: Replica) -> int:
    """Prefill and decode tokens still to run: a running request's rest of its prefill
    target and of its output, a queued one's whole prompt and output."""
    running = sum(
        r.prefill_target - r.computed_tokens + r.output_tokens - r.generated
        for r in replica.running
    )
    return running + sum(r.input_tokens + r.output_tokens for r in replica.waiting)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_decoding_requests_hold_blocks_for_their_last_step(monkeypatch, mode):
    original = Replica._schedule
    checked = [0]

    def schedule(self: Replica, now: float):  # type: ignore[no-untyped-def]
        checked[0] += _check_decode_blocks_held(self)
        if self.up:
            assert self.outstanding_tokens() == _outstanding(self)
        return original(self, now)

    monkeypatch.setattr(Replica, "_schedule", schedule)
    s = scenario(3, 8.0, "least_outstanding_tokens", True, True, True, True)
    result = run_scenario(s, mode=mode)
    assert result.summary["preemptions"] > 0  # the run does exercise recomputation
    assert checked[0] > 1000


@settings(max_examples=200, deadline=None)
@given(
    contexts=st.lists(st.integers(1, 5000), min_size=1, max_size=40),
    k=st.integers(1, 80),
    block_tokens=st.sampled_from([1, 2, 16, 64, 256]),
)
def test_jump_block_need_counts_each_new_block(contexts, k, block_tokens):
    # Brute force: walk each sequence through the iterations, counting a block whenever
    # its KV outgrows the blocks it holds (iteration 0's blocks are held already).
    expected = [0] * k
    for c in contexts:
        held = -(-c // block_tokens)
        for j in range(1, k):
            held_now = -(-(c + j) // block_tokens)
            expected[j] += held_now - held
    need = block_need(np.array(contexts, dtype=np.int64), k, block_tokens)
    if need is None:
        assert not any(expected)
    else:
        assert need.tolist() == expected
