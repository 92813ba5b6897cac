"""The simulator's fast step-time paths equal the reference ones.

``StepModel.decode_attention_time_s`` and ``mixed_attention_time_s`` read per-sequence work
from a table (``DecodeWorkTable``) and skip building a timeline; the reference is the same
work summed from the attention kinds (``StepModel.decode_work`` / ``chunk_work``) and timed
by ``attention_time_s``. The fast paths fold the curves' constants, so the two agree to
rounding (1e-12 relative); the simulator itself always takes the fast paths (fast and exact
modes alike). The decode time also equals, bit for bit, a per-kind loop over the terms
written here (``_per_kind_loop_time``), so speeding it up cannot move a simulated result.
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
    """The work of the step summed from the kinds (decode part, then each chunk)."""
    work = []
    for kind, _ in model.kinds:
        parts = [StepModel.decode_work(kind, contexts)] if contexts.size else []
        parts += [StepModel.chunk_work(kind, t, end) for t, end in chunks]
        work.append(AttentionWork.total(parts))
    return work


def _reference_decode_time(model: StepModel, contexts: np.ndarray, axis: int = 0) -> object:
    """decode_attention_time_s through the general timeline, one column at a time."""
    if contexts.ndim == 1:
        work = [StepModel.decode_work(kind, contexts) for kind, _ in model.kinds]
        return float(model.attention_time_s(work))
    columns = np.moveaxis(contexts, axis, 0)
    return np.array([_reference_decode_time(model, columns[:, j]) for j in range(columns.shape[1])])


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
    assert model.mixed_attention_time_s(ctx, chunks) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-tp{c[3]}" for c in CASES])
@settings(max_examples=15, deadline=None)
@given(contexts=contexts_st, k=st.integers(1, 40))
def test_decode_time_equals_direct(case, contexts, k):
    model = _model(*case)
    ctx = np.array(contexts, dtype=np.int64)
    assert model.decode_attention_time_s(ctx) == pytest.approx(
        _reference_decode_time(model, ctx), rel=1e-12
    )
    grid = ctx[:, None] + np.arange(k)[None, :]
    fast = np.asarray(model.decode_attention_time_s(grid, axis=0))
    reference = np.asarray(_reference_decode_time(model, grid, axis=0))
    np.testing.assert_allclose(fast, reference, rtol=1e-12)
    # Against the term loop, bit for bit: the simulator's results must not move when the
    # step-time code is made faster (the whole-number work sums are exact in any order,
    # and the terms are added in the same order with the same operations).
    assert model.decode_attention_time_s(ctx) == _per_kind_loop_time(model, ctx)
    assert fast.tolist() == np.asarray(_per_kind_loop_time(model, grid)).tolist()


def test_contexts_beyond_the_table_are_computed_directly():
    model = _model("deepseek-v4-flash", "h200", 4, 4)
    ctx = np.array([5, DecodeWorkTable.MAX_CONTEXT + 10, 900_000], dtype=np.int64)
    assert model.decode_attention_time_s(ctx) == pytest.approx(
        _reference_decode_time(model, ctx), rel=1e-12
    )
    chunks = [(4096, DecodeWorkTable.MAX_CONTEXT + 5000)]
    expected = float(model.attention_time_s(_reference_work(model, ctx, chunks)))
    assert model.mixed_attention_time_s(ctx, chunks) == pytest.approx(expected, rel=1e-12)
    assert model._work_table.table.shape[1] <= DecodeWorkTable.MAX_CONTEXT


def _per_kind_loop_time(model: StepModel, contexts: np.ndarray, axis: int = 0) -> object:
    """A second implementation of decode_attention_time_s, term by term: the work summed
    in the table's original row layout (``DecodeWorkTable.sums``: a gather, numpy's own
    summation order) and each kind's attention, then indexer, term added in a Python loop
    (the form the simulator used before the vectorised one); ``pad_s``: the padded query
    heads' bytes per query (engine head padding), one query per sequence."""
    sums = model._work_table.sums(contexts, axis)
    assert sums is not None
    n = contexts.shape[axis]
    total: object = 0.0
    for i, (kind, count, k, pad_s) in enumerate(model._decode_constants):
        w = sums[4 * i : 4 * i + 4]
        main = np.maximum(w[0] * (k[2] + k[3]), w[1] * k[4] + pad_s * n)
        total = total + count * (main + k[0] + k[1] * n)
        if kind.has_indexer:
            index = np.maximum(w[2] * (k[7] + k[8]), w[3] * k[9])
            total = total + count * (index + k[5] + k[6] * n)
    return total


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-tp{c[3]}" for c in CASES])
def test_catalogue_work_tables_hold_whole_numbers(case):
    # FLOPs and bytes per context are whole numbers for every catalogue model, so the
    # simulator sums them in a fast order without changing a bit (sums_last).
    table = _model(*case)._work_table
    assert table._grow(DecodeWorkTable.MAX_CONTEXT)
    assert table.largest * 4096 < 2.0**53  # 4,096 sequences at the longest context
    assert np.array_equal(table.table, np.floor(table.table))


def test_fractional_work_is_summed_in_the_original_order():
    table = _model("llama-3.1-70b", "h100-sxm", 4, 4)._work_table
    assert table._grow(8192)
    table.table = table.table / 3.0  # not whole numbers: the fast order could round
    table.by_context = np.ascontiguousarray(table.table[table.order].T)
    table.largest = float("inf")
    ctx = np.random.default_rng(0).integers(1, 8000, size=(200, 7))
    expected = np.moveaxis(table.table[:, ctx].sum(axis=1), 0, -1)[..., table.order]
    assert np.asarray(table.sums_last(ctx, 0)).tolist() == expected.tolist()
