"""The simulator's fast step-time paths equal the reference ones bit for bit.

``StepModel.decode_attention_time_s`` and ``mixed_attention_time_s`` read per-sequence work
from a table (``DecodeWorkTable``) and skip building a timeline; the reference is the same
work summed from the attention kinds (``StepModel.decode_work`` / ``chunk_work``) and timed
by ``attention_time_s``. Equality is exact (``==`` on floats): the simulator's results must
not change when the fast paths are used.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.perf import AttentionWork, DecodeWorkTable, StepModel
from planner.schema import Deployment

CASES = [
    ("deepseek-v3", "h200", 8, 8),
    ("deepseek-v3.2", "h200", 8, 8),
    ("deepseek-v3.2", "h200", 8, 1),  # DP attention: per-group timing
    ("deepseek-v4-pro", "b200", 8, 8),
    ("deepseek-v4-flash", "h200", 4, 4),
    ("llama-3.1-70b", "h100-sxm", 4, 4),
    ("qwen3-235b-a22b", "h200", 8, 4),
]


def _model(name: str, gpu: str, gpus: int, tp: int) -> StepModel:
    deployed = Deployed.build(
        load_model(name), load_gpu(gpu), Deployment(gpus_per_replica=gpus, tensor_parallel=tp)
    )
    return StepModel(deployed, per_group=deployed.attention_dp > 1)


def _reference_work(
    model: StepModel, contexts: np.ndarray, chunks: list[tuple[int, int]]
) -> list[AttentionWork]:
    """The work the simulator summed before the fast path (decode part, then each chunk)."""
    work = []
    for kind, _ in model.kinds:
        parts = [StepModel.decode_work(kind, contexts)] if contexts.size else []
        parts += [StepModel.chunk_work(kind, t, end) for t, end in chunks]
        work.append(
            AttentionWork(
                *(
                    float(sum(np.sum(getattr(p, f)) for p in parts))
                    for f in ("flops", "main_read_bytes", "index_flops", "index_read_bytes")
                )
            )
        )
    return work


def _reference_decode_time(model: StepModel, contexts: np.ndarray, axis: int = 0) -> object:
    """decode_attention_time_s written directly on the kinds' methods (no table)."""
    d = model.deployed
    kernel_s = d.gpu.kernel_overhead_s(d.deployment.cuda_graphs)
    total: object = 0.0
    for kind, count, flop_s, byte_s, index_flop_s, index_byte_s in model._attention_constants:
        index_bytes = kind.index_read_bytes(contexts) if index_flop_s else 0.0
        main = np.maximum(
            np.sum(kind.attn_flops(1, contexts), axis=axis) * flop_s,
            np.sum(kind.read_bytes(contexts) - index_bytes, axis=axis) * byte_s,
        )
        total = total + count * (main + kernel_s)
        if index_flop_s:
            index = np.maximum(
                np.sum(kind.indexer_flops(1, contexts), axis=axis) * index_flop_s,
                np.sum(index_bytes, axis=axis) * index_byte_s,
            )
            total = total + count * (index + kernel_s)
    return total


contexts_st = st.lists(st.integers(1, 200_000), min_size=1, max_size=300)
chunks_st = st.lists(
    st.tuples(st.integers(1, 8192), st.integers(0, 150_000)), min_size=0, max_size=4
).map(lambda cs: [(t, t + start) for t, start in cs])


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-tp{c[3]}" for c in CASES])
@settings(max_examples=15, deadline=None)
@given(contexts=contexts_st, chunks=chunks_st, empty_decode=st.booleans())
def test_mixed_step_time_equals_timeline(case, contexts, chunks, empty_decode):
    model = _model(*case)
    ctx = np.array([] if empty_decode else contexts, dtype=np.int64)
    if not ctx.size and not chunks:
        chunks = [(100, 100)]
    expected = float(model.attention_time_s(_reference_work(model, ctx, chunks)))
    assert model.mixed_attention_time_s(ctx, chunks) == expected


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-tp{c[3]}" for c in CASES])
@settings(max_examples=15, deadline=None)
@given(contexts=contexts_st, k=st.integers(1, 40))
def test_decode_time_equals_direct(case, contexts, k):
    model = _model(*case)
    ctx = np.array(contexts, dtype=np.int64)
    assert model.decode_attention_time_s(ctx) == _reference_decode_time(model, ctx)
    grid = ctx[:, None] + np.arange(k)[None, :]
    fast = np.asarray(model.decode_attention_time_s(grid, axis=0))
    assert np.array_equal(fast, np.asarray(_reference_decode_time(model, grid, axis=0)))


def test_contexts_beyond_the_table_are_computed_directly():
    model = _model("deepseek-v4-flash", "h200", 4, 4)
    ctx = np.array([5, DecodeWorkTable.MAX_CONTEXT + 10, 900_000], dtype=np.int64)
    assert model.decode_attention_time_s(ctx) == _reference_decode_time(model, ctx)
    chunks = [(4096, DecodeWorkTable.MAX_CONTEXT + 5000)]
    expected = float(model.attention_time_s(_reference_work(model, ctx, chunks)))
    assert model.mixed_attention_time_s(ctx, chunks) == expected
    assert model._work_table.table.shape[1] <= DecodeWorkTable.MAX_CONTEXT
