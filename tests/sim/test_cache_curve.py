"""Prefix-cache hit-ratio curve: hand-derived replays and the Mooncake trace's figure."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from planner.schema import ConstantDist, PoissonArrivals, SLOSpec, WorkloadClass, WorkloadSpec
from planner.sim.cache_curve import cache_curve
from planner.sim.request import Request, chain_keys
from planner.sim.workload import build_workload, load_mooncake

# tests/sim/test_cache_curve.py -> repository root is parents[2]; shared/ sits beside it.
MOONCAKE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "traces"
    / "mooncake_synthetic_trace.jsonl"
)


def req(rid: int, t: float, input_tokens: int, content: list[int]) -> Request:
    return Request(
        rid=rid,
        arrival_s=t,
        input_tokens=input_tokens,
        output_tokens=1,
        block_keys=chain_keys(content),
    )


# Block size 4. Content ids per block (Mooncake style: the last block may be partial):
#   A (t=0): 10 tokens, blocks [a b c]     (a = 1, b = 2, c = 3, d = 4)
#   B (t=1): 12 tokens, blocks [a b d]
#   C (t=2):  9 tokens, blocks [a b c]
ABC = [req(0, 0.0, 10, [1, 2, 3]), req(1, 1.0, 12, [1, 2, 4]), req(2, 2.0, 9, [1, 2, 3])]


def test_unbounded_hand_derived() -> None:
    # A: nothing cached -> 0. B: leading run a b -> 2 x 4 = 8 tokens. C: run a b c = 3 blocks
    # -> min(12, 9) = 9 tokens. Hit ratio = (0 + 8 + 9) / (10 + 12 + 9) = 17 / 31.
    curve = cache_curve(ABC, 4, [])
    assert curve["hit_ratio_unbounded"] == pytest.approx(17 / 31)
    assert curve["points"] == []
    # Arrival order, not list order, decides.
    assert cache_curve(ABC[::-1], 4, [])["hit_ratio_unbounded"] == pytest.approx(17 / 31)


def test_lru_eviction_hand_derived() -> None:
    # A request's blocks are touched tail first, so its first block ends most recent
    # (as vLLM frees them). LRU order listed oldest first.
    # Capacity 12 or 13 tokens = 3 blocks:
    #   A: miss; insert abc, ab, a -> [abc ab a].
    #   B: a, ab hit (8 tokens); touch abd (new), ab, a -> [abc abd ab a], evict abc
    #      -> [abd ab a].
    #   C: a, ab hit, abc gone -> 8 tokens (not 9).   Total 16 / 31.
    # Capacity 8 tokens = 2 blocks:
    #   A: [abc ab a] -> evict abc -> [ab a]. B: a, ab hit (8); [abd ab a] -> evict abd
    #   -> [ab a]. C: a, ab hit -> 8 tokens.          Total 16 / 31.
    #   (Head-first touching would have evicted a, leaving 0 hits: prefixes die from the
    #   front.)
    # Capacity 0 caches nothing; 100 tokens (25 blocks) never evicts = unbounded 17 / 31.
    curve = cache_curve(ABC, 4, [12, 13, 8, 0, 100])
    assert [p["capacity_tokens"] for p in curve["points"]] == [12, 13, 8, 0, 100]
    ratios = [p["hit_ratio"] for p in curve["points"]]
    assert ratios == pytest.approx([16 / 31, 16 / 31, 16 / 31, 0.0, 17 / 31])


def test_lru_keeps_recently_used_blocks() -> None:
    # One-block requests of 4 tokens, capacity 3 blocks: X Y Z X W X.
    #   X Y Z fill [x y z]; X hits (4) -> [y z x]; W -> [y z x w], evict y -> [z x w];
    #   X hits (4). FIFO would have evicted x at W. Hit ratio 8 / 24.
    order = [1, 2, 3, 1, 4, 1]
    requests = [req(i, float(i), 4, [c]) for i, c in enumerate(order)]
    curve = cache_curve(requests, 4, [12])
    assert curve["points"][0]["hit_ratio"] == pytest.approx(8 / 24)
    assert curve["hit_ratio_unbounded"] == pytest.approx(8 / 24)


def test_shared_system_prompt_workload() -> None:
    # Block 4, system prompt 8 tokens (2 shared blocks), own 8 tokens (2 unique blocks):
    # every request after the first reuses 8 of its 16 tokens -> (n - 1) x 8 / (16 n).
    cls = WorkloadClass(
        name="chat",
        share=1,
        input_tokens=ConstantDist(value=8),
        output_tokens=ConstantDist(value=2),
        system_prompt_tokens=8,
        slo=SLOSpec(ttft_s=1, tpot_s=0.1),
    )
    spec = WorkloadSpec(arrival=PoissonArrivals(rate_per_s=10), classes=[cls])
    requests = list(build_workload(spec, duration_s=20, block_tokens=4, seed=0).requests())
    n = len(requests)
    curve = cache_curve(requests, 4, [8])
    assert curve["hit_ratio_unbounded"] == pytest.approx((n - 1) * 8 / (16 * n))
    # With room for only 2 blocks: each request touches its own 2 blocks first and the 2
    # shared system blocks last, so eviction drops its own blocks and the system prompt
    # stays cached: the same hits as unbounded.
    assert curve["points"][0]["hit_ratio"] == pytest.approx((n - 1) * 8 / (16 * n))


def test_shuffled_input_replays_in_arrival_order() -> None:
    requests = [req(i, float(i), 8, [i % 3, 7]) for i in range(30)]
    shuffled = requests[:]
    random.Random(0).shuffle(shuffled)
    assert cache_curve(shuffled, 4, [8, 16]) == cache_curve(requests, 4, [8, 16])


@pytest.mark.skipif(not MOONCAKE.exists(), reason="../shared/traces not present")
def test_mooncake_trace_unbounded_hit_ratio() -> None:
    # Mooncake FAST'25, Table 2: prefix cache ratio about 66% with an unbounded cache for
    # the synthetic trace; our token-weighted replay gives about 0.65.
    requests = load_mooncake(MOONCAKE)
    assert len(requests) == 3993
    curve = cache_curve(requests, 512, [1_000_000, 1_000_000_000])
    assert curve["hit_ratio_unbounded"] == pytest.approx(0.65, abs=0.02)
    small, huge = (p["hit_ratio"] for p in curve["points"])
    assert small < huge
    assert huge == pytest.approx(curve["hit_ratio_unbounded"])
