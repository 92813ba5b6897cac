"""Physical limits of the roofline model: no decode step beats peak HBM bandwidth or peak
FLOP/s, and step time, concurrency and context capacity move the right way.

The limits are computed here from first principles (bytes one GPU must read, FLOPs it must
do, the vendor's peak rates), never by calling the function under test again.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import planner
from planner.errors import KvplanError
from planner.hardware import GPU, gpu_names, load_gpu
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.plan.memory import (
    InsufficientMemoryError,
    max_concurrent_sequences,
    max_context_tokens,
    memory_budget,
)
from planner.plan.perf import decode_step
from planner.schema import Deployment, GQASpec

SETTINGS = settings(max_examples=40, deadline=None)
CATALOG = planner.catalog_names()
GPUS = gpu_names()
GPU_COUNTS = (4, 8, 16)
MAX_DRAWN_CONTEXT = 262_144
MAX_BATCH = 256
# Weight groups one GPU need not read in full for a decode step: routed experts (only the
# experts the batch picks) and MTP modules (off by default).
NOT_READ_IN_FULL = {"routed_experts", "mtp"}


@cache
def deployed_or_none(model_name: str, gpu_name: str, gpus: int) -> Deployed | None:
    """The replica, or None where the weights do not fit or TP does not divide the heads."""
    try:
        deployed = Deployed.build(
            planner.load_model(model_name), load_gpu(gpu_name), Deployment(gpus_per_replica=gpus)
        )
        memory_budget(deployed)
    except InsufficientMemoryError:
        return None
    except KvplanError:  # tensor-parallel size does not divide the attention heads
        return None
    return deployed


# --------------------------------------------------------------------------- the limits
def kv_head_share(model: Model, tp: int) -> float:
    """Share of a sequence's cache one TP rank reads: GQA splits KV heads over ranks (one
    whole head each when TP exceeds them); MLA/DSA/V4 cache one vector per token, so every
    rank reads all of it."""
    specs = {layer.attention for layer in model.spec.layers}
    gqa = [spec for spec in specs if isinstance(spec, GQASpec)]
    if not gqa:
        return 1.0
    assert len(gqa) == len(specs), "catalog models do not mix GQA with other attention"
    kv_heads = {spec.num_kv_heads for spec in gqa}
    assert len(kv_heads) == 1
    (heads,) = kv_heads
    return math.ceil(heads / tp) / heads


def must_read_weight_bytes(deployed: Deployed) -> float:
    """A lower bound on the weight bytes one GPU reads in any decode step, independent of
    how the planner shards: every non-expert weight must be read by some GPU each step, and
    the replica's N GPUs share that work at best evenly (replication only adds reads).
    Routed experts and MTP are not read in full; the embedding is a one-row lookup (unless
    tied: then the LM head reads it)."""
    skip = set(NOT_READ_IN_FULL)
    if not deployed.model.spec.tie_word_embeddings:
        skip.add("embedding")
    lines = deployed.model.weight_breakdown
    return sum(line.bytes for group, line in lines.items() if group not in skip) / deployed.gpus


def bytes_bound_s(deployed: Deployed, batch: int, context: int) -> float:
    model = deployed.model
    sequences = math.ceil(batch / deployed.attention_dp)
    kv = sequences * float(model.read_bytes(context)) * kv_head_share(model, deployed.tp)
    return (must_read_weight_bytes(deployed) + kv) / deployed.gpu.hbm_bandwidth_bytes_per_s


def highest_native_peak_flop_per_s(gpu: GPU) -> float:
    return max(
        spec.peak_tflop_per_s * 1e12
        for spec in gpu.profile.compute.values()
        if spec.native and spec.peak_tflop_per_s is not None
    )


def flops_bound_s(deployed: Deployed, batch: int) -> float:
    model = deployed.model
    matmul_params = model.active_params - model.weight_breakdown["embedding"].params
    flops_per_gpu = batch * 2 * matmul_params / deployed.gpus
    return flops_per_gpu / highest_native_peak_flop_per_s(deployed.gpu)


@st.composite
def fitting_deployments(draw: st.DrawFn) -> Deployed:
    """A catalog model on a GPU profile, 4, 8 or 16 per replica; misfits are rejected."""
    model, gpu = draw(st.sampled_from(CATALOG)), draw(st.sampled_from(GPUS))
    deployed = deployed_or_none(model, gpu, draw(st.sampled_from(GPU_COUNTS)))
    assume(deployed is not None)
    assert deployed is not None
    return deployed


@st.composite
def decode_cases(draw: st.DrawFn) -> tuple[Deployed, int, int]:
    deployed = draw(fitting_deployments())
    batch = draw(st.integers(1, MAX_BATCH))
    context = draw(st.integers(1, min(deployed.model.max_context_tokens, MAX_DRAWN_CONTEXT)))
    return deployed, batch, context


def pinned(model: str, gpu: str, gpus: int, batch: int, context: int) -> tuple[Deployed, int, int]:
    deployed = deployed_or_none(model, gpu, gpus)
    assert deployed is not None
    return deployed, batch, context


# Always tried as well: cases where the FLOPs limit is the higher one (a full batch on the
# compute-poor H20, several times its bytes limit) and a long GQA context where KV bytes
# dominate.
FLOPS_BOUND_CASES = [
    pinned("deepseek-v4-flash", "h20", 4, 256, 1),
    pinned("llama-3.1-70b", "h20", 16, 256, 1),
]
KV_BOUND_CASE = pinned("llama-3.1-70b", "b200", 16, 256, 131_072)


@SETTINGS
@given(decode_cases())
@example(FLOPS_BOUND_CASES[0])
@example(FLOPS_BOUND_CASES[1])
@example(KV_BOUND_CASE)
def test_decode_step_is_never_faster_than_peak_hardware(case: tuple[Deployed, int, int]) -> None:
    deployed, batch, context = case
    step = decode_step(deployed, batch, context)
    t_bytes = bytes_bound_s(deployed, batch, context)
    t_flops = flops_bound_s(deployed, batch)
    label = f"{deployed.model.name}, {deployed.gpus} x {deployed.gpu.name}, B={batch}, L={context}"
    assert float(step.time_s) >= t_bytes, label
    assert float(step.time_s) >= t_flops, label


def test_pinned_cases_exercise_both_limits() -> None:
    for deployed, batch, _ in FLOPS_BOUND_CASES:
        assert flops_bound_s(deployed, batch) > 2 * bytes_bound_s(deployed, batch, 1)
    deployed, batch, context = KV_BOUND_CASE
    assert bytes_bound_s(deployed, batch, context) > 2 * flops_bound_s(deployed, batch)


@SETTINGS
@given(decode_cases())
@example(FLOPS_BOUND_CASES[0])
@example(KV_BOUND_CASE)
def test_decode_step_accounts_for_the_minimum_work(case: tuple[Deployed, int, int]) -> None:
    # The step's own tallies must cover what the hardware cannot avoid doing.
    deployed, batch, context = case
    step = decode_step(deployed, batch, context)
    gpu = deployed.gpu
    min_bytes = bytes_bound_s(deployed, batch, context) * gpu.hbm_bandwidth_bytes_per_s
    min_flops = flops_bound_s(deployed, batch) * highest_native_peak_flop_per_s(gpu)
    assert float(step.bytes_per_gpu) >= min_bytes * (1 - 1e-12)
    assert float(step.flops_per_gpu) >= min_flops * (1 - 1e-12)


# --------------------------------------------------------------------------- monotonicity
# (model, GPU, GPUs per replica, attention TP); TP 4 on 8 GPUs is attention DP 2.
FIXED_CONFIGS = [
    ("llama-3.1-70b", "h100-sxm", 8, None),
    ("deepseek-v3.2", "b200", 8, None),
    ("deepseek-v4-flash", "h200", 8, None),
    ("deepseek-v4-pro", "mi300x", 8, None),
    ("deepseek-v4-flash", "h200", 8, 4),
]
MONOTONE_BATCHES = [*range(1, 65), *range(72, MAX_BATCH + 1, 8)]


def fixed_deployed(name: str, gpu: str, gpus: int, tp: int | None) -> Deployed:
    deployment = Deployment(gpus_per_replica=gpus, tensor_parallel=tp)
    return Deployed.build(planner.load_model(name), load_gpu(gpu), deployment)


def context_grid(model: Model, points: int = 120) -> np.ndarray:
    grid = np.geomspace(1, model.max_context_tokens, points).round().astype(np.int64)
    return np.unique(np.concatenate([grid, grid + 1, [63, 64, 65, 127, 128, 129]]))


@pytest.mark.parametrize(("name", "gpu", "gpus", "tp"), FIXED_CONFIGS)
def test_step_time_grows_with_batch_and_context(
    name: str, gpu: str, gpus: int, tp: int | None
) -> None:
    deployed = fixed_deployed(name, gpu, gpus, tp)
    contexts = context_grid(deployed.model)
    contexts = contexts[contexts <= deployed.model.max_context_tokens]
    times = np.stack([decode_step(deployed, b, contexts).time_s for b in MONOTONE_BATCHES])
    # The vectorised call gives, for each context, what a call with that context alone gives.
    for column, ctx in enumerate(contexts.tolist()):
        alone = float(decode_step(deployed, MONOTONE_BATCHES[-1], ctx).time_s)
        assert times[-1, column] == pytest.approx(alone, rel=1e-12)
    assert np.all(np.diff(times, axis=0) >= 0), "step time fell as the batch grew"
    assert np.all(np.diff(times, axis=1) >= 0), "step time fell as the context grew"
    # And the whole range is not flat: a longer context or a bigger batch costs something.
    assert times[-1, -1] > times[0, 0]
    assert times[-1, -1] > times[-1, 0], "context does not change the step time"


@SETTINGS
@given(
    fitting_deployments(),
    st.lists(st.integers(0, 2 * 1_048_576), min_size=2, max_size=20),
)
def test_concurrency_never_rises_with_context(deployed: Deployed, contexts: list[int]) -> None:
    ordered = np.array(sorted(contexts), dtype=np.int64)
    counts = max_concurrent_sequences(deployed, ordered)
    assert np.all(np.diff(counts) <= 0), (ordered, counts)
    assert np.all(counts >= 0)


@SETTINGS
@given(fitting_deployments(), st.lists(st.integers(0, 100_000), min_size=2, max_size=20))
def test_context_capacity_never_rises_with_concurrency(
    deployed: Deployed, concurrency: list[int]
) -> None:
    wanted = np.array(sorted(concurrency), dtype=np.int64)
    longest = max_context_tokens(deployed, wanted)
    assert np.all(np.diff(longest) <= 0), (wanted, longest)
    limit = deployed.model.max_context_tokens
    assert np.all((longest >= 0) & (longest <= limit))
    # Consistent with the count it inverts: C sequences fit at the answer, and (below the
    # model's limit) not at one token more.
    fits = longest > 0
    held = max_concurrent_sequences(deployed, longest)
    assert np.all(held[fits] >= wanted[fits])
    below = fits & (longest < limit)
    assert np.all(max_concurrent_sequences(deployed, longest + 1)[below] < wanted[below])
