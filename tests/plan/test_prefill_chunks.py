"""Prefill over many chunks: the vectorised per-operator breakdown, and the chunk bound."""

from __future__ import annotations

import time

import pytest

from planner import load_model
from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.limits import MAX_PREFILL_CHUNKS
from planner.plan.deployed import Deployed
from planner.plan.perf import prefill_chunk
from planner.plan.prefill import prefill_breakdown_s, prefill_time_s
from planner.schema import Deployment


def _deployed(name: str, budget: int) -> Deployed:
    return Deployed.build(
        load_model(name),
        load_gpu("h200"),
        Deployment(gpus_per_replica=8, max_batched_tokens=budget),
    )


@pytest.mark.parametrize("name", ["deepseek-v4-flash", "llama-3.1-70b"])
@pytest.mark.parametrize(("prompt", "cached"), [(10_000, 0), (8_192, 100), (5, 0)])
def test_breakdown_equals_chunk_by_chunk_and_sums_to_the_time(
    name: str, prompt: int, cached: int
) -> None:
    # Second implementation: every chunk timed on its own (chunks of 2,048 tokens ending
    # at cached + 2,048 k, then the remainder ending at the prompt's end).
    deployed = _deployed(name, 2048)
    uncached = prompt - cached
    ends = [cached + 2048 * (k + 1) for k in range(uncached // 2048)]
    chunks = [(2048, end) for end in ends]
    if uncached % 2048:
        chunks.append((uncached % 2048, prompt))
    expected: dict[str, float] = {}
    for tokens, end in chunks:
        for op, t in prefill_chunk(deployed, tokens, end).by_operator_s.items():
            expected[op] = expected.get(op, 0.0) + float(t)
    got = prefill_breakdown_s(deployed, prompt, cached)
    assert got.keys() == expected.keys()
    for op in expected:
        assert got[op] == pytest.approx(expected[op], rel=1e-12)
    assert sum(got.values()) == pytest.approx(prefill_time_s(deployed, prompt, cached), rel=1e-12)


def test_one_token_budget_is_fast_and_the_chunk_count_is_bounded() -> None:
    # 8,192 chunks of one token: one vectorised call, not 8,192 (it took minutes).
    deployed = _deployed("deepseek-v4-flash", 1)
    start = time.perf_counter()
    prefill_breakdown_s(deployed, 8192)
    assert time.perf_counter() - start < 20
    with pytest.raises(KvplanError, match="max_batched_tokens"):
        prefill_time_s(deployed, MAX_PREFILL_CHUNKS + 1)
