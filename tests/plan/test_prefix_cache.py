"""Prefix-cache-aware planning (``plan --prefix-hit-ratio``), checked by hand.

A toy one-layer model on a toy GPU with 1,000 TB/s and no fixed costs, so every
step is compute-bound and its time is FLOPs / 10^14 FLOP/s. FLOPs per token of the linear
part: q, k, v, o 4 x 2 x 512 x 512 = 2,097,152 plus FFN 3 x 2 x 512 x 1,024 = 3,145,728,
together 5,242,880; the LM head 2 x 512 x 1,000 = 1,024,000 per sampled token. Attention
(8 heads x 64, MHA) costs 8 x 2 x (64 + 64) = 2,048 FLOPs per (query, visible token) pair;
a chunk of T tokens ending at context L has sum_{p = L-T+1}^{L} p pairs. The memory-bound
elementwise kernels add bytes / 10^15 B/s: per token 24,576 B (two residual + RMSNorms
8,192, RoPE 4,096, KV write 4,096, SiLU x mul 6,144, embedding 2,048; see
test_hand_derived) and per sampled token 8,000 B (two reads of 1,000 FP32 logits).
"""

from __future__ import annotations

import pytest

from planner import load_model
from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.plan.cost import SECONDS_PER_MONTH, APIPrice
from planner.plan.deployed import Deployed
from planner.plan.perf import prefill_chunk
from planner.plan.perf import prefill_time_s as perf_prefill_time_s
from planner.plan.prefill import cached_prompt_tokens, prefill_time_s, prefill_tokens_per_s
from planner.plan.throughput import size_replicas
from planner.schema import Deployment
from tests.plan.test_hand_derived import _toy_gpu, _toy_model

LINEAR_FLOP_PER_TOKEN = 5_242_880
HEAD_FLOP = 1_024_000
PAIR_FLOP = 2_048
FLOP_PER_S = 1e14
ELEMENTWISE_BYTES_PER_TOKEN = 24_576
SAMPLER_BYTES = 8_000
BYTES_PER_S = 1e15


def _toy(budget_tokens: int) -> Deployed:
    return Deployed.build(
        _toy_model(),
        _toy_gpu(1e3, 0.0),  # 1,000 TB/s: every operator here is compute bound
        Deployment(gpus_per_replica=1, step_overhead_ms=0, max_batched_tokens=budget_tokens),
    )


def _pairs(chunk: int, end: int) -> int:
    return sum(range(end - chunk + 1, end + 1))


def test_cached_tokens_from_ratio():
    assert cached_prompt_tokens(4400, 0.56) == 2464  # floor(0.56 x 4,400)
    assert cached_prompt_tokens(4400, 0.0) == 0
    # Everything cached still computes the last token (it produces the first output).
    assert cached_prompt_tokens(4400, 1.0) == 4399
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(KvplanError, match="prefix_hit_ratio"):
            cached_prompt_tokens(4400, bad)


def test_cached_prompt_computes_only_the_uncached_part_attending_to_all():
    # I = 300, C = 150, budget 100: chunks of 100 tokens ending at 250 and 50 ending at 300.
    # Pairs: 151 + ... + 250 = 20,050 and 251 + ... + 300 = 13,775 -> 33,825.
    assert _pairs(100, 250) == 20_050 and _pairs(50, 300) == 13_775
    flops = 150 * LINEAR_FLOP_PER_TOKEN + 2 * HEAD_FLOP + 33_825 * PAIR_FLOP  # 857,753,600
    assert flops == 857_753_600
    nbytes = 150 * ELEMENTWISE_BYTES_PER_TOKEN + 2 * SAMPLER_BYTES
    expected = flops / FLOP_PER_S + nbytes / BYTES_PER_S
    assert prefill_time_s(_toy(100), 300, 150) == pytest.approx(expected, rel=1e-9)
    # A fresh 150-token prompt does the same linear work but sees less context.
    assert prefill_time_s(_toy(100), 150, 0) < prefill_time_s(_toy(100), 300, 150)


def test_no_cache_equals_the_plain_prefill():
    deployed = Deployed.build(
        load_model("deepseek-v3.2"), load_gpu("h200"), Deployment(tensor_parallel=1)
    )
    # perf.prefill_time_s times a chunk in every DP group at once (its all-busy default).
    groups = deployed.attention_dp
    for prompt in (1000, 8192, 20_000):
        assert prefill_time_s(deployed, prompt, 0, groups) == pytest.approx(
            perf_prefill_time_s(deployed, prompt), rel=1e-12
        )


def test_packed_prefill_throughput_short_prompts_share_a_step():
    # I = 50, budget 100: two prompts per step. FLOPs per step: 100 tokens x 5,242,880 +
    # 2 head rows + 2 x 1,275 pairs x 2,048 = 531,558,400 -> 100 prompt tokens per
    # 5.315584 us.
    step_flops = 100 * LINEAR_FLOP_PER_TOKEN + 2 * HEAD_FLOP + 2 * 1_275 * PAIR_FLOP
    assert step_flops == 531_558_400
    step_bytes = 100 * ELEMENTWISE_BYTES_PER_TOKEN + 2 * SAMPLER_BYTES
    expected = 100 / (step_flops / FLOP_PER_S + step_bytes / BYTES_PER_S)
    assert prefill_tokens_per_s(_toy(100), 50, 0) == pytest.approx(expected, rel=1e-9)


def test_packed_prefill_throughput_counts_cached_tokens():
    # I = 300, C = 150, budget 100: 2/3 of a prompt per step; the step carries 100 uncached
    # tokens, 2/3 of a head row and 2/3 of the prompt's 33,825 pairs:
    # 524,288,000 + 682,666.67 + 46,182,400 = 571,153,066.67 FLOPs for 200 prompt tokens.
    step_flops = 100 * LINEAR_FLOP_PER_TOKEN + HEAD_FLOP * 2 / 3 + 33_825 * PAIR_FLOP * 2 / 3
    step_bytes = 100 * ELEMENTWISE_BYTES_PER_TOKEN + SAMPLER_BYTES * 2 / 3
    expected = 200 / (step_flops / FLOP_PER_S + step_bytes / BYTES_PER_S)
    assert prefill_tokens_per_s(_toy(100), 300, 150) == pytest.approx(expected, rel=1e-9)


def test_one_prompt_per_step_is_the_chunk_rate():
    # A prompt exactly one budget long: one prompt per step, the plain chunk time.
    deployed = _toy(100)
    chunk_s = float(prefill_chunk(deployed, 100, 100).time_s)
    assert prefill_tokens_per_s(deployed, 100, 0) == pytest.approx(100 / chunk_s, rel=1e-9)


def test_hits_lower_replicas_and_input_cost():
    deployed = Deployed.build(
        load_model("deepseek-v3.2"), load_gpu("h200"), Deployment(tensor_parallel=1)
    )
    cold = size_replicas(deployed, 20, 32_768, 1024, 0.05)
    warm = size_replicas(deployed, 20, 32_768, 1024, 0.05, prefix_hit_ratio=0.8)
    assert warm.replicas < cold.replicas
    assert warm.ttft_s < cold.ttft_s
    assert prefill_tokens_per_s(deployed, 32_768, 26_214) > prefill_tokens_per_s(deployed, 32_768)


def test_api_bill_charges_cached_tokens_at_the_cached_price():
    # One request a month of 1M prompt tokens (half cached) and 1M output tokens:
    # 0.5 x $1 + 0.5 x $0.10 + $2 = $2.55.
    price = APIPrice(
        model="m",
        label="l",
        usd_per_million_input_tokens=1.0,
        usd_per_million_output_tokens=2.0,
        usd_per_million_cached_input_tokens=0.1,
        source="test",
    )
    bill = price.monthly_usd(1 / SECONDS_PER_MONTH, 1e6, 1e6, prefix_hit_ratio=0.5)
    assert bill == pytest.approx(2.55)
