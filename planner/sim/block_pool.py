"""Paged KV blocks of one replica, shared between running requests and the prefix cache.

A block holds ``block_tokens`` tokens of context for every layer. A block is free, owned by
one running request (private), or cached under a prefix key: referenced by running requests
(refcount > 0) or evictable (refcount 0, in LRU order). Allocation takes free blocks first
and then evicts the least recently used cached blocks, so the cache lives in whatever HBM
the running requests do not need (vLLM's prefix caching). Evicted blocks can spill to an
optional host tier (LRU, bounded), from which a later request loads them at the tier's
bandwidth. ``invalidate`` drops every cached prefix (e.g. a tokenizer change); blocks
running requests still reference stay in use until their last holder releases them.

Accounting (checked by ``check`` and a property test): free + evictable + blocks held by
running requests (private ones, and each shared or orphaned block once) = total.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container

from planner.sim.request import Request


def leading_run(keys: list[int], cached: Container[int]) -> int:
    """How many of the first keys are all present in ``cached``."""
    run = 0
    for key in keys:
        if key not in cached:
            break
        run += 1
    return run


class BlockPool:
    def __init__(
        self, total_blocks: int, host_tier_blocks: int = 0, enable_caching: bool = True
    ) -> None:
        self.total_blocks = total_blocks
        self.free_blocks = total_blocks
        self.enable_caching = enable_caching
        self.refcount: dict[int, int] = {}  # cached key -> running requests using it
        self.evictable: OrderedDict[int, None] = OrderedDict()  # refcount 0, oldest first
        self.host_tier_blocks = host_tier_blocks
        self.host: OrderedDict[int, None] = OrderedDict()
        self.epoch = 0  # bumped by invalidate(); older shared references become orphans
        # Blocks that were referenced when the cache was invalidated: (epoch, key) -> holders.
        # A block is freed when its last holder releases it, once.
        self.orphaned: dict[tuple[int, int], int] = {}

    # ------------------------------------------------------------------ accounting
    @property
    def available_blocks(self) -> int:
        """Blocks an allocation can get: free ones plus evictable cached ones."""
        return self.free_blocks + len(self.evictable)

    @property
    def used_blocks(self) -> int:
        """Blocks held by running requests (cached-but-evictable blocks count as free)."""
        return self.total_blocks - self.available_blocks

    def allocate(self, count: int) -> None:
        """Take ``count`` blocks (caller checked available_blocks), evicting LRU if needed."""
        take = min(count, self.free_blocks)
        self.free_blocks -= take
        for _ in range(count - take):
            key, _ = self.evictable.popitem(last=False)
            del self.refcount[key]
            self._spill(key)

    def _spill(self, key: int) -> None:
        if self.host_tier_blocks <= 0:
            return
        self.host[key] = None
        self.host.move_to_end(key)
        while len(self.host) > self.host_tier_blocks:
            self.host.popitem(last=False)

    # ------------------------------------------------------------------ prefix cache
    def peek(self, keys: list[int]) -> int:
        """Leading blocks of ``keys`` cached in HBM (no side effects)."""
        return leading_run(keys, self.refcount)

    def match(self, keys: list[int]) -> tuple[int, int]:
        """(blocks cached in HBM, further blocks found in the host tier), leading run."""
        if not self.enable_caching:
            return 0, 0
        hbm = self.peek(keys)
        return hbm, leading_run(keys[hbm:], self.host)

    def idle_among(self, keys: list[int]) -> int:
        """How many of these cached blocks are evictable now (acquiring them takes them
        out of the available pool)."""
        return sum(1 for key in keys if self.refcount[key] == 0)

    def acquire(self, request: Request, keys: list[int]) -> None:
        """The request references these cached blocks (a leading run found by match)."""
        for key in keys:
            count = self.refcount[key]
            if count == 0:
                del self.evictable[key]
            self.refcount[key] = count + 1
        request.shared_keys = list(keys)
        request.shared_epoch = self.epoch

    def release(self, request: Request, computed_blocks: int) -> None:
        """Give back everything the request holds. Its private blocks among the first
        ``computed_blocks`` blocks that have keys become cached; the rest are freed.

        Blocks enter the LRU tail-first (as vLLM frees them), so a prefix's head is always
        more recent than its continuations and eviction eats prefixes from the end."""
        shared = request.shared_keys
        released: list[int] = []  # keys now at refcount 0, in prefix order
        if request.shared_epoch == self.epoch:
            for key in shared:
                count = self.refcount[key] - 1
                self.refcount[key] = count
                if count == 0:
                    released.append(key)
        else:  # cached before an invalidation: free each block with its last holder
            for key in shared:
                ident = (request.shared_epoch, key)
                holders = self.orphaned[ident] - 1
                if holders:
                    self.orphaned[ident] = holders
                else:
                    del self.orphaned[ident]
                    self.free_blocks += 1
        private = request.private_blocks
        # A request admitted before an invalidation computed its blocks under the old keys
        # (e.g. the old tokenizer): they must not enter the new cache.
        if self.enable_caching and request.shared_epoch == self.epoch:
            for key in request.block_keys[len(shared) : computed_blocks]:
                if private == 0:
                    break
                private -= 1
                if key in self.refcount:  # someone cached the same prefix meanwhile
                    self.free_blocks += 1
                    if self.refcount[key] == 0:
                        released.append(key)  # touch it, it is part of this prefix
                        del self.evictable[key]
                    continue
                self.refcount[key] = 0
                released.append(key)
        for key in reversed(released):
            self.evictable[key] = None
        self.free_blocks += private
        request.shared_keys = []
        request.private_blocks = 0

    def load_from_host(self, keys: list[int]) -> None:
        """Blocks loaded back from the host tier become private blocks of the loader (they
        are cached again when it finishes); the caller allocated them."""
        for key in keys:
            self.host.pop(key, None)

    def invalidate(self) -> None:
        """Forget every cached prefix (HBM and host tier)."""
        self.free_blocks += len(self.evictable)
        self.evictable.clear()
        for key, holders in self.refcount.items():
            if holders:
                self.orphaned[(self.epoch, key)] = holders
        self.refcount.clear()
        self.host.clear()
        self.epoch += 1

    def check(self) -> None:
        """Internal consistency (used by tests)."""
        referenced = sum(1 for c in self.refcount.values() if c > 0)
        assert len(self.evictable) + referenced == len(self.refcount)
        assert all(holders > 0 for holders in self.orphaned.values())
        held = referenced + len(self.orphaned)
        assert self.free_blocks >= 0
        assert self.free_blocks + len(self.evictable) + held <= self.total_blocks
