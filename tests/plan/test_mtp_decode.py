"""MTP decoding feeds each sequence 2 query tokens (its last token and one draft) through
the main model; MLA decode kernels (FlashMLA) run them in the absorbed form, like q = 1.
The naive prefill form re-expands every cached latent into per-head keys and values: the
planner used it for MTP decode by mistake (DeepSeek-V3, 8 x H800, TP 1, batch 128 at 4K:
attention 95x, the whole step 5x longer than without MTP)."""

from __future__ import annotations

import numpy as np
import pytest

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.perf import StepModel, decode_step
from planner.schema import Deployment

CONTEXT = 4096


def v3(mtp: bool) -> Deployed:
    return Deployed.build(
        load_model("deepseek-v3"),
        load_gpu("h800"),
        Deployment(gpus_per_replica=8, tensor_parallel=1, mtp=mtp),
    )


def test_mtp_decode_attention_flops_are_absorbed() -> None:
    # DeepSeek-V3 MLA, absorbed: per head and visible (query, token) pair, a score over
    # kv_lora_rank + rope = 512 + 64 dims and a value sum over 512 dims: 2 x (576 + 512) =
    # 2,176 FLOPs. Two queries ending at L see L - 1 and L tokens: 2L - 1 pairs per head.
    (kind, layers), *_ = load_model("deepseek-v3").attention_groups
    assert layers == 61
    work = StepModel.decode_work(kind, np.array([CONTEXT]), query_tokens=2)
    expected = 128 * 2176 * (2 * CONTEXT - 1)
    assert float(work.decode.flops) == expected == 2_281_422_848
    # The naive form (q = 2 treated as a prefill chunk) is ~60x this at 4K: per pair
    # 2 x (128 + 64 + 128) = 640 FLOPs x 128 heads, plus re-expanding the L - 2 cached
    # latents: 2 x 512 x 128 x (128 + 128) = 33,554,432 FLOPs per token.
    naive = 128 * 640 * (2 * CONTEXT - 1) + 33_554_432 * (CONTEXT - 2)
    assert float(kind.attn_flops(2, CONTEXT)) == naive
    assert naive > 60 * expected


def test_mtp_step_attention_is_about_twice_the_plain_step() -> None:
    # Data-parallel attention (TP 1), batch 128 per replica at 4K: the attention kernels see
    # twice the queries over the same cache, so with MTP they cost at most about twice as
    # much (not the naive form's 60x).
    plain = decode_step(v3(False), 128, CONTEXT)
    mtp = decode_step(v3(True), 128, CONTEXT)
    ratio = float(mtp.by_operator_s["attention:MLA"]) / float(plain.by_operator_s["attention:MLA"])
    assert 1.0 < ratio <= 2.0
    assert float(mtp.time_s) < 2 * float(plain.time_s)


@pytest.mark.parametrize("batch", [1, 64])
def test_mtp_attention_flops_in_the_step_match_the_hand_count(batch: int) -> None:
    # The step's FLOPs grow with MTP by exactly the attention difference (absorbed, 2 queries
    # vs 1) plus the linear work of one more token per sequence and the MTP module: compare
    # the attention part alone through the step model's own work split.
    (kind, _), *_ = load_model("deepseek-v3").attention_groups
    one = float(StepModel.decode_work(kind, np.array([CONTEXT]), 1).decode.flops)
    two = float(StepModel.decode_work(kind, np.array([CONTEXT]), 2).decode.flops)
    assert one == 128 * 2176 * CONTEXT
    assert two - one == 128 * 2176 * (CONTEXT - 1)
    assert batch * two / one == pytest.approx(batch * (2 - 1 / CONTEXT))
