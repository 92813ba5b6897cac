"""Paged blocks shared by running requests and the prefix cache (hand-worked cases)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from planner.sim.block_pool import BlockPool
from planner.sim.request import Request, chain_keys


def request(keys: list[int], private: int = 0) -> Request:
    r = Request(rid=0, arrival_s=0.0, input_tokens=len(keys) * 16, output_tokens=1, block_keys=keys)
    r.private_blocks = private
    return r


def test_release_caches_keyed_blocks_tail_first_and_frees_the_rest():
    pool = BlockPool(10)
    r = request([1, 2, 3], private=5)  # 3 keyed blocks + 2 blocks of state/partial tail
    pool.allocate(5)
    pool.release(r, computed_blocks=3)
    # 3 blocks now cached (evictable), 2 freed: everything is available again.
    assert pool.free_blocks == 7 and list(pool.evictable) == [3, 2, 1]
    assert pool.available_blocks == 10 and pool.used_blocks == 0
    # Allocating beyond the free blocks evicts the tail of the prefix first.
    pool.allocate(8)
    assert list(pool.evictable) == [2, 1] and pool.peek([1, 2, 3]) == 2
    pool.check()


def test_shared_blocks_are_not_evictable_while_referenced():
    pool = BlockPool(4)
    first = request([1, 2], private=2)
    pool.allocate(2)
    pool.release(first, computed_blocks=2)
    second = request([1, 2, 5])
    assert pool.match(second.block_keys) == (2, 0)
    pool.acquire(second, [1, 2])
    assert pool.available_blocks == 2  # the two referenced blocks are in use
    second.private_blocks = 1
    pool.allocate(1)
    pool.release(second, computed_blocks=3)
    # Head stays most recent: order tail-first 5, 2, 1.
    assert list(pool.evictable) == [5, 2, 1]
    pool.check()


def test_invalidate_drops_prefixes_and_turns_references_private():
    pool = BlockPool(4)
    first = request([1, 2], private=2)
    pool.allocate(2)
    pool.release(first, computed_blocks=2)
    holder = request([1, 2])
    pool.acquire(holder, [1, 2])
    pool.invalidate()
    assert pool.peek([1, 2]) == 0 and pool.free_blocks == 2
    pool.release(holder, computed_blocks=2)  # its references are plain blocks now
    assert pool.free_blocks == 4 and not pool.evictable
    pool.check()


def test_host_tier_keeps_evicted_blocks():
    pool = BlockPool(2, host_tier_blocks=1)
    r = request([1, 2], private=2)
    pool.allocate(2)
    pool.release(r, computed_blocks=2)  # LRU (oldest first): 2, 1
    pool.allocate(1)  # evicts 2 into the host tier
    assert pool.match([1, 2]) == (1, 1)
    pool.allocate(1)  # evicts 1; the host tier holds one block: 2 drops out
    assert list(pool.host) == [1]
    assert pool.match([1, 2]) == (0, 1)  # the head is in the host tier, block 2 is gone


def test_two_holders_of_a_block_free_it_once_after_invalidation():
    # Hand count: 4 blocks. A caches [1, 2] (2 blocks, evictable). B and C both reference
    # them (refcount 2 each): 2 blocks in use, 2 free. The cut-over invalidates the cache:
    # the 2 referenced blocks stay in use until their last holder leaves. B leaves: still
    # held by C (2 free). C leaves: 4 free. Freeing them once per holder would give 6 free
    # blocks of 4 and a negative utilisation.
    pool = BlockPool(4)
    first = request([1, 2], private=2)
    pool.allocate(2)
    pool.release(first, computed_blocks=2)
    b, c = request([1, 2]), request([1, 2])
    pool.acquire(b, [1, 2])
    pool.acquire(c, [1, 2])
    assert pool.free_blocks == 2 and pool.used_blocks == 2
    pool.invalidate()
    pool.release(b, computed_blocks=2)
    assert pool.free_blocks == 2 and pool.used_blocks == 2
    pool.release(c, computed_blocks=2)
    assert pool.free_blocks == 4 and pool.used_blocks == 0
    pool.check()


class BlockPoolMachine(RuleBasedStateMachine):
    """Any sequence of admissions (with prefix hits), growth, releases, evictions and
    invalidations keeps the physical accounting: free + evictable + blocks held by live
    requests (private ones, plus each distinct shared block once) = total."""

    TOTAL = 12

    def __init__(self) -> None:
        super().__init__()
        self.pool = BlockPool(self.TOTAL, host_tier_blocks=4)
        self.live: list[Request] = []
        # Physical identity of each live request's shared references: (epoch, key).
        self.shared_ids: dict[int, list[tuple[int, int]]] = {}
        self.next_rid = 0

    @rule(
        # Few distinct prefixes, so requests share cached blocks often.
        prefix=st.sampled_from([(0,), (0, 1), (0, 1, 2), (1,), ()]),
        state_blocks=st.integers(0, 2),
    )
    def admit(self, prefix: tuple[int, ...], state_blocks: int) -> None:
        keys = chain_keys(prefix)  # equal prefixes give equal chained keys
        hbm, host = self.pool.match(keys)
        matched = keys[:hbm]
        need = len(keys) - hbm + state_blocks
        available = self.pool.available_blocks - self.pool.idle_among(matched)
        if need > available:
            return
        r = Request(
            rid=self.next_rid, arrival_s=0.0, input_tokens=16, output_tokens=1, block_keys=keys
        )
        self.next_rid += 1
        self.pool.acquire(r, matched)
        self.pool.allocate(need)  # host-tier hits are loaded into private blocks
        self.pool.load_from_host(keys[hbm : hbm + host])
        r.private_blocks = need
        self.shared_ids[r.rid] = [(self.pool.epoch, k) for k in matched]
        self.live.append(r)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), extra=st.integers(1, 3))
    def grow(self, data: st.DataObject, extra: int) -> None:
        r = data.draw(st.sampled_from(self.live))
        if extra <= self.pool.available_blocks:
            self.pool.allocate(extra)
            r.private_blocks += extra

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        r = data.draw(st.sampled_from(self.live))
        computed = data.draw(st.integers(len(r.shared_keys), len(r.block_keys)))
        self.pool.release(r, computed)
        self.live.remove(r)
        del self.shared_ids[r.rid]

    @rule()
    def invalidate(self) -> None:
        self.pool.invalidate()

    @invariant()
    def physical_blocks_add_up(self) -> None:
        pool = self.pool
        private = sum(r.private_blocks for r in self.live)
        shared = len({ident for ids in self.shared_ids.values() for ident in ids})
        assert pool.free_blocks + len(pool.evictable) + private + shared == pool.total_blocks
        assert 0 <= pool.used_blocks <= pool.total_blocks
        pool.check()


TestBlockPoolMachine = BlockPoolMachine.TestCase
TestBlockPoolMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
