"""Prefix-cache hit ratio as a function of cache capacity, from block keys alone.

A quick replay without the serving engine: requests in arrival order against one LRU cache
of ``capacity_tokens // block_tokens`` blocks. A request's cached tokens are its longest
leading run of blocks already present (``min(run x block_tokens, input_tokens)``); then all
its blocks are touched tail first (so its first block ends most recent and eviction eats a
prefix from its end, as vLLM and :class:`planner.sim.block_pool.BlockPool` do) and the
least recently used blocks beyond capacity are evicted. The hit ratio is token-weighted:
sum of cached tokens / sum of input tokens. The unbounded point uses a plain set; for the
Mooncake FAST'25 synthetic trace it is about 65% (the paper's Table 2 reports 66%).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from planner.sim.block_pool import leading_run
from planner.sim.request import Request


def _unbounded(requests: list[Request], block_tokens: int) -> tuple[int, int]:
    seen: set[int] = set()
    cached = total = 0
    for request in requests:
        keys = request.block_keys
        run = leading_run(keys, seen)
        cached += min(run * block_tokens, request.input_tokens)
        total += request.input_tokens
        seen.update(keys)
    return cached, total


def _lru(requests: list[Request], block_tokens: int, capacity_blocks: int) -> int:
    cache: OrderedDict[int, None] = OrderedDict()
    move = cache.move_to_end
    evict = cache.popitem
    cached = 0
    for request in requests:
        keys = request.block_keys
        run = leading_run(keys, cache)
        cached += min(run * block_tokens, request.input_tokens)
        if capacity_blocks <= 0:
            continue
        for key in reversed(keys):  # tail first: the prefix head ends most recent
            if key in cache:
                move(key)
            else:
                cache[key] = None
        while len(cache) > capacity_blocks:
            evict(last=False)
    return cached


def cache_curve(
    requests: Iterable[Request], block_tokens: int, capacities_tokens: list[int]
) -> dict[str, Any]:
    """Token-weighted prefix hit ratio with an unbounded cache and at each capacity.

    Returns ``{"hit_ratio_unbounded": float, "points": [{"capacity_tokens": int,
    "hit_ratio": float}, ...]}`` (points in the order given). Requests are replayed in
    arrival order (stable for equal times).
    """
    ordered = sorted(requests, key=lambda r: r.arrival_s)
    cached, total = _unbounded(ordered, block_tokens)
    points = []
    for capacity in capacities_tokens:
        hits = _lru(ordered, block_tokens, int(capacity) // block_tokens)
        points.append(
            {"capacity_tokens": int(capacity), "hit_ratio": hits / total if total else 0.0}
        )
    return {"hit_ratio_unbounded": cached / total if total else 0.0, "points": points}
