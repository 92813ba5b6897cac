"""The Python API refuses impossible token counts and never overflows up to the 2^40 cap."""

from __future__ import annotations

import numpy as np
import pytest

from planner import load_model
from planner.errors import KvplanError
from planner.model.counting import visible_sum
from planner.units import MAX_TOKEN_COUNT


@pytest.mark.parametrize("bad", [-1000, -1, 1.5, float("nan"), float("inf"), 2**41, 2**70, True])
def test_kv_bytes_refuses_impossible_contexts(bad: object) -> None:
    model = load_model("llama-3.1-70b")
    for method in (model.kv_bytes, model.cache_bytes, model.read_bytes, model.flops_per_token):
        with pytest.raises(KvplanError, match="context_tokens"):
            method(bad)  # type: ignore[arg-type]
    if not isinstance(bad, bool):  # numpy turns [1024, True] into the ints [1024, 1]
        with pytest.raises(KvplanError, match="context_tokens"):
            model.kv_bytes(np.array([1024, bad]))


def test_query_tokens_are_checked() -> None:
    model = load_model("llama-3.1-70b")
    with pytest.raises(KvplanError, match="query_tokens"):
        model.flops_per_token(4096, 0)


def test_causal_sum_at_the_cap_does_not_wrap() -> None:
    # A full prefill of L tokens visits L (L + 1) / 2 (query, key) pairs: 2^79 + 2^39 at
    # L = 2^40, far beyond int64 (the old int64 sum wrapped from L ~ 2^32).
    n = MAX_TOKEN_COUNT
    expected = n * (n + 1) / 2
    assert float(visible_sum(n, n)) == pytest.approx(expected, rel=1e-15)
    assert float(visible_sum(n, np.array([n]))[0]) == pytest.approx(expected, rel=1e-15)
    # Exact integers while they fit: L = 2^20 -> 549,756,338,176.
    assert float(visible_sum(2**20, np.array([2**20]))[0]) == 2**20 * (2**20 + 1) // 2


def test_prefill_attention_flops_at_2_to_the_30() -> None:
    # Llama-3.1-70B, a 2^30-token prefill: attention per query token, averaged over the q = L
    # queries, is 80 layers x 64 heads x 2 FLOP x (128 + 128) x (L + 1) / 2 pairs per query.
    # (The int64 product overflowed from about 2^25 tokens and the attention term vanished.)
    model = load_model("llama-3.1-70b")
    n = 2**30
    parts = model.flops_breakdown(n, n)
    expected = 80 * 64 * 2 * (128 + 128) * (n + 1) / 2
    assert parts["attention:GQA"] == pytest.approx(expected, rel=1e-12)
    assert all(float(v) > 0 for v in parts.values())
