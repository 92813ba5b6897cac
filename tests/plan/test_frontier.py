"""The concurrency frontier at 1M tokens: V4-Flash > V4-Pro > nothing for V3.2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner import load_model
from planner.cli import main
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.frontier import FrontierCurve, frontier
from planner.plan.memory import memory_budget
from planner.schema import Deployment

ONE_M = 1_048_576
V32_MAX_CONTEXT = 163_840  # DeepSeek-V3.2 config.json max_position_embeddings
EIGHT = Deployment(gpus_per_replica=8)
MODELS = ("deepseek-v4-flash", "deepseek-v4-pro", "deepseek-v3.2")
CONTEXTS = np.array([V32_MAX_CONTEXT, V32_MAX_CONTEXT + 1, ONE_M], dtype=np.int64)


def curves_on(gpu: str) -> dict[str, FrontierCurve]:
    curves = frontier([load_model(m) for m in MODELS], [load_gpu(gpu)], EIGHT, CONTEXTS)
    assert [(c.model, c.gpu) for c in curves] == [(m, gpu) for m in MODELS]
    return {c.model: c for c in curves}


def at(curve: FrontierCurve, context: int) -> int:
    (index,) = np.flatnonzero(curve.context_tokens == context)
    return int(curve.max_concurrent_sequences[index])


@pytest.mark.parametrize("gpu", ["h200", "b200"])
def test_v4_flash_holds_more_1m_sequences_than_v4_pro(gpu: str) -> None:
    curves = curves_on(gpu)
    flash, pro = curves["deepseek-v4-flash"], curves["deepseek-v4-pro"]
    assert flash.fits and pro.fits
    assert at(flash, ONE_M) > at(pro, ONE_M) >= 1


@pytest.mark.parametrize("gpu", ["h200", "b200"])
def test_v32_holds_nothing_beyond_its_maximum_context(gpu: str) -> None:
    v32 = curves_on(gpu)["deepseek-v3.2"]
    assert v32.fits  # the weights fit; the zeros come from the context limit
    assert at(v32, V32_MAX_CONTEXT) >= 1
    assert at(v32, V32_MAX_CONTEXT + 1) == 0
    assert at(v32, ONE_M) == 0


@pytest.mark.parametrize("gpu", ["h200", "b200"])
@pytest.mark.parametrize("model", ["deepseek-v4-flash", "deepseek-v4-pro"])
def test_1m_count_is_pool_over_sequence_cache(gpu: str, model: str) -> None:
    # Independent route to the same number, in vLLM 0.33's layout: V4 caches one entry per
    # compressed group shared by all heads, so with TP 8 (attention DP 1) every GPU holds
    # each sequence's whole cache. All cache groups draw from one pool of blocks, each the
    # size of the widest group: the compressed group (256 tokens of context per block) with
    # pages padded to 576 B: CSA 64 x 584 = 37,376 -> 37,440, FP8 indexer 64 x 132 = 8,448
    # -> 8,640, HCA 2 x 584 = 1,168 -> 1,728.
    # Flash: 21 CSA + 20 HCA layers: 21 x (37,440 + 8,640) + 20 x 1,728 = 1,002,240 B.
    # Pro: 30 CSA + 31 HCA layers: 30 x (37,440 + 8,640) + 31 x 1,728 = 1,435,968 B.
    # A decoding 1M sequence holds 4,096 compressed blocks, 3 blocks in each of the two
    # sliding-window groups (128-token window in 64-token blocks), 3 CSA compressor-state
    # blocks (window 8, 4 slots) and 17 HCA compressor-state blocks (window 128, 8 slots):
    # 4,122 blocks.
    block_bytes = {"deepseek-v4-flash": 1_002_240, "deepseek-v4-pro": 1_435_968}[model]
    curve = curves_on(gpu)[model]
    deployed = Deployed.build(load_model(model), load_gpu(gpu), EIGHT)
    assert deployed.attention_dp == 1
    blocks = math.floor(memory_budget(deployed).kv_pool_bytes / block_bytes)
    assert at(curve, ONE_M) == blocks // 4_122


def test_plan_beyond_maximum_context_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "--model", "deepseek-v3.2", "--gpu", "h200", "--context", "1M"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("kvplan: error:")
    assert "Traceback" not in captured.err
    assert "maximum context" in line
    assert f"{V32_MAX_CONTEXT:,}" in line or str(V32_MAX_CONTEXT) in line
