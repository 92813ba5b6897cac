"""Paged blocks shared by running requests and the prefix cache (hand-worked cases)."""

from __future__ import annotations

from planner.sim.block_pool import BlockPool
from planner.sim.request import Request


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
