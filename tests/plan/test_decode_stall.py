"""How long a prompt's prefill holds up the decodes (``decode_stall_share_s``), by hand.

The toy one-layer model of test_prefix_cache on a toy GPU with 1,000 TB/s (every operator
compute bound) and a 1 ms step overhead; token budget 100. A 300-token prompt is three
chunks of 100 tokens ending at 100, 200 and 300. Per token the linear part costs
5,242,880 FLOPs at 10^14 FLOP/s plus 24,576 B of elementwise traffic at 10^15 B/s; a
sampled token 1,024,000 FLOPs plus 8,000 B; the chunks' attention 5,050 + 15,050 + 25,050 =
45,150 (query, visible token) pairs of 2,048 FLOPs.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner.plan.deployed import Deployed
from planner.plan.prefill import decode_stall_share_s, prefill_time_s
from planner.schema import Deployment
from tests.plan.test_hand_derived import _toy_gpu, _toy_model

STEP_OVERHEAD_S = 1e-3
PER_TOKEN_S = 5_242_880 / 1e14 + 24_576 / 1e15
PER_SAMPLED_S = 1_024_000 / 1e14 + 8_000 / 1e15
ATTENTION_S = 45_150 * 2_048 / 1e14


def _toy(engine: str) -> Deployed:
    return Deployed.build(
        _toy_model(),
        _toy_gpu(1e3, 0.0),
        Deployment(
            gpus_per_replica=1,
            step_overhead_ms=STEP_OVERHEAD_S * 1e3,
            max_batched_tokens=100,
            engine=engine,
        ),
    )


def test_decodes_riding_in_prefill_steps_share_the_step_overhead():
    # vLLM runs the decodes in the chunk's step: the chunk adds 100 tokens' linear work,
    # one sampled row and its attention to a step the decodes run anyway; the step's fixed
    # 1 ms is paid once. Three chunks: 300 x per-token + 3 x per-sampled + attention
    # = 15.7360 + 0.0307 + 0.9247 = 16.6914 us, whatever the decode batch.
    expected = 300 * PER_TOKEN_S + 3 * PER_SAMPLED_S + ATTENTION_S
    assert expected == pytest.approx(16.6914288e-6, rel=1e-9)
    d = _toy("vllm")
    stall = decode_stall_share_s(d, 300, 0, np.array([1, 10, 50]))
    assert stall == pytest.approx([expected] * 3, rel=1e-9)
    # The prompt alone pays the step overhead on each of its three steps.
    assert prefill_time_s(d, 300) == pytest.approx(expected + 3 * STEP_OVERHEAD_S, rel=1e-9)


def test_decodes_wait_through_a_prefill_batch_that_runs_alone():
    # SGLang (no --enable-mixed-chunk) runs the prefill batch alone: the decodes wait
    # through all of it, step overheads included.
    d = _toy("sglang")
    expected = 300 * PER_TOKEN_S + 3 * PER_SAMPLED_S + ATTENTION_S + 3 * STEP_OVERHEAD_S
    assert decode_stall_share_s(d, 300, 0, np.array([1, 50])) == pytest.approx(
        [expected] * 2, rel=1e-9
    )
