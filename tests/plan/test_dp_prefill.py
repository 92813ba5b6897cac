"""Prefill with data-parallel attention: a step is timed by the DP groups that have tokens
in it (planner.plan.perf ``busy_groups``, planner.plan.prefill), checked by hand.

A toy MoE model on a toy GPU (100 TFLOP/s BF16, 1,000 TB/s, no fixed costs, uniform
routing): one layer, MHA 8 heads x 64 (hidden 512), 4 routed experts of width 256, 2 per
token, vocab 1,000; 4 GPUs with TP 1, so 4 attention-DP groups and EP 4 (one expert per
GPU), DeepEP-style all-to-all. An expert costs 3 x 2 x 512 x 256 = 786,432 FLOPs per
token-expert assignment.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import KvplanError
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.plan.perf import prefill_chunk
from planner.plan.prefill import (
    prefill_service,
    prefill_time_s,
    prefill_times_by_busy_s,
    prefill_tokens_per_s,
)
from planner.plan.throughput import replica_times
from planner.schema import Deployment, GQASpec, LayerSpec, ModelSpec, MoEFFNSpec
from tests.plan.test_hand_derived import _toy_gpu

FLOP_PER_S = 1e14
BYTES_PER_S = 1e15
EXPERT_FLOP_PER_ASSIGNMENT = 3 * 2 * 512 * 256
HIDDEN = 512
GROUPS = 4


def _toy_moe(budget_tokens: int = 100) -> Deployed:
    layer = LayerSpec(
        attention=GQASpec(num_heads=8, num_kv_heads=8, head_dim=64),
        ffn=MoEFFNSpec(num_routed_experts=4, experts_per_token=2, expert_intermediate_size=256),
    )
    model = Model(
        ModelSpec(
            name="toy-moe",
            display_name="toy-moe",
            architecture="test",
            hidden_size=HIDDEN,
            vocab_size=1000,
            max_context_tokens=4096,
            layers=(layer,),
        )
    )
    return Deployed.build(
        model,
        _toy_gpu(1e3, 0.0),
        Deployment(
            gpus_per_replica=GROUPS,
            tensor_parallel=1,
            step_overhead_ms=0,
            moe_routing_alpha=None,
            moe_dispatch="all_to_all",
            max_batched_tokens=budget_tokens,
        ),
    )


def _op(step, name: str) -> float:
    return float(np.asarray(step.by_operator_s[name]))


def test_lone_chunk_spreads_its_experts_over_every_ep_rank():
    # 100 tokens in one group, the 3 others idle: 100 x 2 = 200 assignments over 4 ranks,
    # 50 on each (uniform routing): 50 x 786,432 = 39,321,600 FLOPs = 0.393216 us, plus
    # the handed pairs' token vectors, 50 x 512 x 2 B = 51,200 B at 10^15 B/s = 51.2 ps.
    # All four groups busy: 400 tokens, 200 assignments per rank: 4x the FLOPs and pairs.
    d = _toy_moe()
    lone = prefill_chunk(d, 100, 100, busy_groups=1)
    full = prefill_chunk(d, 100, 100, busy_groups=GROUPS)
    assert 50 * EXPERT_FLOP_PER_ASSIGNMENT == 39_321_600
    assert _op(lone, "routed_experts") == pytest.approx(
        39_321_600 / FLOP_PER_S + 51_200 / BYTES_PER_S, rel=1e-9
    )
    assert _op(full, "routed_experts") == pytest.approx(
        4 * 39_321_600 / FLOP_PER_S + 4 * 51_200 / BYTES_PER_S, rel=1e-9
    )
    # The busiest group's own work is one chunk either way: projections, attention, norms.
    for name in ("projections", "attention:MHA", "norms"):
        assert _op(lone, name) == pytest.approx(_op(full, name), rel=1e-12)
    # A GPU of the busy group sends its 100 tokens either way (the send side bounds the
    # all-to-all: with one group busy each rank receives a quarter of what it would).
    assert _op(lone, "all_to_all") == pytest.approx(_op(full, "all_to_all"), rel=1e-12)
    # The default is every group busy (the replica at its full token budget).
    assert float(prefill_chunk(d, 100, 100).time_s) == pytest.approx(float(full.time_s))


def test_step_time_grows_with_the_busy_groups_by_the_experts():
    # Each extra busy group adds 50 assignments on every rank: 0.393216 us + 51.2 ps.
    d = _toy_moe()
    times = [float(prefill_chunk(d, 100, 100, busy_groups=k).time_s) for k in (1, 2, 3, 4)]
    step = 39_321_600 / FLOP_PER_S + 51_200 / BYTES_PER_S
    assert np.diff(times) == pytest.approx([step] * 3, rel=1e-6)


def test_idle_replica_ttft_is_the_lone_prompt_and_throughput_is_all_busy():
    d = _toy_moe()
    # A 300-token prompt: three 100-token chunks, each with its group alone.
    by_busy = prefill_times_by_busy_s(d, 300)
    alone = sum(float(prefill_chunk(d, 100, end, busy_groups=1).time_s) for end in (100, 200, 300))
    assert prefill_time_s(d, 300) == pytest.approx(alone, rel=1e-12)
    assert by_busy[0] == pytest.approx(alone, rel=1e-12)
    assert len(by_busy) == GROUPS and np.all(np.diff(by_busy) > 0)
    # Throughput at the full token budget: every group runs a 100-token prompt per step,
    # 4 x 100 prompt tokens per all-busy step.
    step_s = float(prefill_chunk(d, 100, 100, busy_groups=GROUPS).time_s)
    assert prefill_tokens_per_s(d, 100) == pytest.approx(400 / step_s, rel=1e-12)
    with pytest.raises(KvplanError, match="busy_groups"):
        prefill_time_s(d, 300, 0, busy_groups=GROUPS + 1)


def test_service_time_follows_the_busy_groups():
    # Two groups, a prompt takes 1 s alone and 2 s with the other group prefilling too:
    # D(u) = (1 - u) x 1 + u x 2 = 1 + u and u = r D(u), so u = r / (1 - r).
    # r = 0.25 prompts/s per group: u = 1/3, D = 4/3 s.
    service, u = prefill_service(np.array([1.0, 2.0]), 0.25)
    assert u == pytest.approx(1 / 3, rel=1e-9)
    assert service == pytest.approx(4 / 3, rel=1e-9)
    # Three groups at 1, 2, 3 s: D(u) = 1 + 2u (binomial mean 2u), u = r / (1 - 2 r);
    # r = 0.2: u = 1/3, D = 5/3 s.
    service, u = prefill_service(np.array([1.0, 2.0, 3.0]), 0.2)
    assert (service, u) == pytest.approx((5 / 3, 1 / 3), rel=1e-9)
    # Low load: the lone-prompt time; high load: toward the all-busy time.
    assert prefill_service(np.array([1.0, 2.0]), 1e-6)[0] == pytest.approx(1.0, rel=1e-5)
    # r = 0.499: u = 0.499 / 0.501, D = 1 + u = 1.99601 s.
    assert prefill_service(np.array([1.0, 2.0]), 0.499)[0] == pytest.approx(1 + 0.499 / 0.501)
    # One group (no DP attention): the time, at utilisation r x time.
    assert prefill_service(np.array([2.0]), 0.25) == pytest.approx((2.0, 0.5))


def test_queued_ttft_goes_from_the_lone_to_the_all_busy_prefill():
    d = _toy_moe()
    times = replica_times(d, 300, 10)
    lone, busy = times.prefill_by_busy_s[0], times.prefill_by_busy_s[-1]
    assert times.prefill_s == lone
    # Capacity is the all-busy figure: one request's prefill takes busy / 4 of the replica.
    assert times.prefill_share_s == pytest.approx(busy / GROUPS)
    low = times.ttft_s(1e-6, 1, None)
    assert low == pytest.approx(lone, rel=1e-4)
    # At 90% of the all-busy capacity every group is prefilling most of the time.
    rate = 0.9 * GROUPS / busy
    service, u = times.prefill_service(rate)
    assert lone < service < busy and service > lone + 0.8 * (busy - lone)
    assert u == pytest.approx(rate / GROUPS * service, rel=1e-9)


def _overlapped(engine: str) -> Deployed:
    d = _toy_moe()
    deployment = d.deployment.model_copy(update={"overlap_micro_batches": True, "engine": engine})
    return Deployed.build(d.model, d.gpu, deployment)


def test_vllm_micro_batches_only_when_every_group_is_busy():
    # vLLM micro-batches a step only when every DP rank does, and an idle rank's one-token
    # dummy batch is below the threshold (engines/vllm.yaml): a lone chunk's all-to-all is
    # added after its compute, the sum of every operator. With all four groups busy the
    # all-to-all (longer than the rest of the linear work) hides that work: the step is
    # the all-to-all plus attention (not covered). SGLang keeps the overlap either way.
    for busy in (1, GROUPS):
        step = prefill_chunk(_overlapped("vllm"), 100, 100, busy_groups=busy)
        parts = {name: _op(step, name) for name in step.by_operator_s}
        linear = sum(t for name, t in parts.items() if name not in ("all_to_all", "attention:MHA"))
        assert parts["all_to_all"] > linear
        hidden = parts["all_to_all"] + parts["attention:MHA"]
        expected = sum(parts.values()) if busy == 1 else hidden
        assert float(step.time_s) == pytest.approx(expected, rel=1e-12)
    lone = prefill_chunk(_overlapped("sglang"), 100, 100, busy_groups=1)
    assert float(lone.time_s) == pytest.approx(
        _op(lone, "all_to_all") + _op(lone, "attention:MHA"), rel=1e-12
    )
