"""Attention kernels that need a minimum number of query heads per rank (engines/*.yaml
``head_padding``): the padded heads are computed like real ones.

Expected values are derived by hand from the models' configs (DeepSeek-V4-Flash: 64 heads
of head_dim 512, a 128-token window, HCA ratio 128, CSA ratio 4 with top-512; DeepSeek-V3:
128 heads, latent 512 + RoPE 64) and the engines' rules as read from their code (vLLM:
V4 queries padded to 64 heads, dense MLA decode tiled in 64 rows on Hopper; SGLang: V4
padded to 64; TensorRT-LLM: no rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner import load_model
from planner.engines import DEFAULT_ENGINE_DIR, ENGINE_DIR_ENV, HeadPadding, _load, load_engine
from planner.errors import ConfigError
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.perf import AttentionWork, StepModel, kernel_heads
from planner.schema import Deployment

V4_HEADS = 64
V4_HEAD_DIM = 512
WINDOW = 128
CONTEXT = 32_768
# One decode query at 32K: an HCA layer attends the 128-token window and 32768 / 128 = 256
# compressed entries; K = V, so each entry costs a 512-dim score and a 512-dim value sum,
# 2 FLOPs per multiply-add: 4 x 512 FLOPs per (head, entry).
HCA_FLOPS_PER_HEAD = 4 * V4_HEAD_DIM * (WINDOW + CONTEXT // 128)
SWA_FLOPS_PER_HEAD = 4 * V4_HEAD_DIM * WINDOW
HCA_LAYERS, SWA_LAYERS = 20, 2  # V4-Flash: 20 HCA layers, 2 window-only layers


def _deployed(model: str, gpu: str, tp: int, engine: str = "vllm", **extra: object) -> Deployed:
    deployment = Deployment.model_validate(
        {"gpus_per_replica": 8, "tensor_parallel": tp, "engine": engine, **extra}
    )
    return Deployed.build(load_model(model), load_gpu(gpu), deployment)


def _kind(deployed: Deployed, label: str):  # type: ignore[no-untyped-def]
    return next(k for k, _ in deployed.model.attention_groups if k.label == label)


def _hca_swa_decode(model: StepModel) -> list[AttentionWork]:
    """One decode sequence at 32K in the HCA and SWA layers only (no indexer FLOPs)."""
    out = []
    for kind, _ in model.kinds:
        if kind.label in ("HCA", "SWA"):
            out.append(StepModel.decode_work(kind, np.array([CONTEXT])))
        else:
            out.append(AttentionWork())
    return out


def test_rule_forms() -> None:
    pad = HeadPadding(
        kinds=("csa",), phases=("prefill", "decode"), gpus=("h200",), head_counts=(64, 128)
    )
    assert [pad.kernel_heads(h, 1) for h in (1, 8, 64, 65, 128, 200)] == [64, 64, 64, 128, 128, 256]
    tile = HeadPadding(kinds=("mla",), phases=("decode",), gpus=("h200",), tile_rows=64)
    # 16 heads x 1 query = 16 rows -> one 64-row tile = 64 heads; x 2 queries (MTP) = 32
    # rows -> 64 rows over 2 queries = 32 heads each; 100 heads -> 128 rows.
    assert tile.kernel_heads(16, 1) == 64
    assert tile.kernel_heads(16, 2) == 32
    assert tile.kernel_heads(100, 1) == 128


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"head_counts": [64], "tile_rows": 64}, "either head_counts or tile_rows"),
        ({}, "either head_counts or tile_rows"),
        ({"head_counts": [128, 64]}, "strictly increasing"),
        ({"tile_rows": 64, "phases": ["prefill"]}, "decode kernels only"),
    ],
)
def test_malformed_rules_are_refused(fields: dict[str, object], message: str) -> None:
    base = {"kinds": ["csa"], "phases": ["decode"], "gpus": ["h200"], **fields}
    with pytest.raises(ValueError, match=message):
        HeadPadding.model_validate(base)


def test_overlapping_rules_in_an_engine_file_are_a_named_error(tmp_path: Path, monkeypatch) -> None:
    text = (DEFAULT_ENGINE_DIR / "vllm.yaml").read_text()
    twice = text.replace(
        "  dsa_prefill_hopper:",
        "  again: {kinds: [hca], phases: [decode], gpus: [h200], head_counts: [64]}\n"
        "  dsa_prefill_hopper:",
    ).replace(
        "  head_padding.dsa_prefill_hopper:",
        '  head_padding.again: "test"\n  head_padding.dsa_prefill_hopper:',
    )
    (tmp_path / "vllm.yaml").write_text(twice)
    monkeypatch.setenv(ENGINE_DIR_ENV, str(tmp_path))
    _load.cache_clear()
    try:
        with pytest.raises(
            ConfigError, match="v4_flashmla and again both cover hca decode on h200"
        ):
            load_engine("vllm")
    finally:
        _load.cache_clear()


def test_v4_flash_tp8_kernel_flops_equal_tp1_under_vllm_on_h200() -> None:
    # TP 8: 64 / 8 = 8 heads per rank, padded to 64 (vLLM's FlashMLA sparse kernels take
    # h_q 64 or 128), so one rank computes all 64 heads' FLOPs: what one TP-1 rank computes.
    tp8 = StepModel(_deployed("deepseek-v4-flash", "h200", 8))
    tl = tp8.attention_timeline(_hca_swa_decode(tp8))
    tp1_per_rank = V4_HEADS * (HCA_LAYERS * HCA_FLOPS_PER_HEAD + SWA_LAYERS * SWA_FLOPS_PER_HEAD)
    assert tp1_per_rank == 1_040_187_392
    assert float(tl.flops) == pytest.approx(tp1_per_rank, rel=1e-12)
    heads = kernel_heads(tp8.deployed, _kind(tp8.deployed, "CSA"), "prefill")
    assert (heads.heads, heads.kernel_heads, heads.flops_factor) == (8, 64, 8)


def test_padded_heads_move_their_query_and_output() -> None:
    # 56 padded heads per query token, each a 512-value query read and a 512-value output
    # written in BF16: 56 x 1024 x 2 = 114,688 B per layer. The A100 profile has no
    # FlashMLA rule, so the same deployment there runs 8 heads and moves none of it.
    padded = StepModel(_deployed("deepseek-v4-flash", "h200", 8))
    plain = StepModel(_deployed("deepseek-v4-flash", "a100-80gb", 8))
    extra = (
        padded.attention_timeline(_hca_swa_decode(padded)).bytes
        - plain.attention_timeline(_hca_swa_decode(plain)).bytes
    )
    assert float(extra) == pytest.approx((HCA_LAYERS + SWA_LAYERS) * 56 * 1024 * 2, rel=1e-12)
    assert float(plain.attention_timeline(_hca_swa_decode(plain)).flops) == pytest.approx(
        1_040_187_392 / 8, rel=1e-12
    )


def test_v4_prefill_chunk_flops_per_rank_equal_the_whole_layer() -> None:
    # A 4K-token prefill chunk from an empty cache: at TP 8 each rank computes the padded
    # 64 heads, i.e. the whole layer's CSA FLOPs (every head), times its 21 layers.
    for engine in ("vllm", "sglang"):
        model = StepModel(_deployed("deepseek-v4-flash", "b200", 8, engine))
        csa = _kind(model.deployed, "CSA")
        work = [
            StepModel.chunk_work(kind, 4096, 4096) if kind is csa else AttentionWork()
            for kind, _ in model.kinds
        ]
        tl = model.attention_timeline(work)
        index_flops = float(csa.indexer_flops(4096, 4096))  # replicated, not padded
        whole_layer = float(csa.attn_flops(4096, 4096))
        assert float(tl.flops) == pytest.approx(21 * (whole_layer + index_flops), rel=1e-12)


def test_heads_already_at_the_minimum_are_unchanged() -> None:
    # TP 1 (attention DP 8): 64 heads per rank, a size the kernel takes: no padding.
    tp1 = _deployed("deepseek-v4-flash", "h200", 1)
    for label in ("CSA", "HCA", "SWA"):
        for phase in ("prefill", "decode"):
            heads = kernel_heads(tp1, _kind(tp1, label), phase)
            assert (heads.kernel_heads, heads.extra_bytes_per_query) == (64, 0.0)


def test_dense_mla_decode_tile_on_hopper_only_under_vllm() -> None:
    # DeepSeek-V3 at TP 8: 128 / 8 = 16 heads per rank. vLLM's Hopper MLA decode kernels
    # tile heads x queries in 64 rows: 16 rows cost 64 (4x the FLOPs), no bytes (the tile
    # is padded inside the kernel); with an MTP draft 2 x 16 = 32 rows -> 2x.
    v3 = _deployed("deepseek-v3", "h200", 8)
    mla = _kind(v3, "MLA")
    assert kernel_heads(v3, mla, "decode", 1).flops_factor == 4
    assert kernel_heads(v3, mla, "decode", 2).flops_factor == 2
    assert kernel_heads(v3, mla, "decode", 1).extra_bytes_per_query == 0
    assert kernel_heads(v3, mla, "prefill").flops_factor == 1  # naive-form prefill: no rule
    # No rule on B200 (FlashInfer MLA, padding not read), nor under SGLang or TRT-LLM.
    for gpu, engine in (("b200", "vllm"), ("h200", "sglang"), ("h200", "trtllm")):
        other = _deployed("deepseek-v3", gpu, 8, engine)
        assert kernel_heads(other, _kind(other, "MLA"), "decode").flops_factor == 1


def test_gqa_models_are_unchanged() -> None:
    llama = _deployed("llama-3.1-70b", "h200", 8)
    assert all(
        kernel_heads(llama, kind, phase).flops_factor == 1
        for kind, _ in llama.model.attention_groups
        for phase in ("prefill", "decode")
    )
