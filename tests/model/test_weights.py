"""Parameter counts against published figures, and storage formats by hand."""

from __future__ import annotations

import pytest

from planner import load_model
from planner.dtypes import storage_format

BILLION = 1e9


@pytest.mark.parametrize(
    ("name", "published_total", "published_active"),
    [
        # DeepSeek-V3 technical report: 671B total, 37B activated (MTP excluded).
        ("deepseek-v3", 671, 37),
        # V4 model card (../shared/reference/deepseek.md): Flash 284B / 13B.
        ("deepseek-v4-flash", 284, 13),
        # Llama 3.1 model card: 70.6B (dense, all active, published rounded to 70B).
        ("llama-3.1-70b", 70.6, 70),
        # Qwen3 technical report: 235B total, 22B activated.
        ("qwen3-235b-a22b", 235, 22),
    ],
)
def test_param_counts_match_published(name, published_total, published_active):
    model = load_model(name)
    assert model.total_params / BILLION == pytest.approx(published_total, rel=0.005)
    # Published active counts are rounded down to a whole billion.
    assert published_active <= model.active_params / BILLION < published_active + 1


def test_v4_pro_total_including_mtp_is_1_6t():
    # V4 model card: 1.6T total, 49B active. The Pro checkpoint's 1.6T includes its MTP block.
    model = load_model("deepseek-v4-pro")
    with_mtp = model.total_params + model.weight_breakdown["mtp"].params
    assert with_mtp / 1e12 == pytest.approx(1.6, rel=0.005)
    assert 49 <= model.active_params / BILLION < 50


def test_v32_adds_indexer_weights_to_v3():
    # Indexer per layer: wq_b 1536 x 8192 + wk 7168 x 128 + weights_proj 7168 x 64
    # = 12,582,912 + 917,504 + 458,752 = 13,959,168; x 61 layers = 851,509,248.
    v3 = load_model("deepseek-v3")
    v32 = load_model("deepseek-v3.2")
    assert v32.total_params - v3.total_params == 851_509_248
    assert v32.weight_breakdown["indexer"].params == 851_509_248


def test_mxfp4_expert_matrix_bytes():
    # V4-Flash expert w1: 2048 x 4096 E2M1 = 4,194,304 B, plus one E8M0 scale per 32
    # elements = 262,144 B.
    assert storage_format("mxfp4").tensor_bytes(2048, 4096) == 4_194_304 + 262_144


def test_fp8_block_scaled_matrix_bytes():
    # 7168 x 2048 FP8 = 14,680,064 B plus 56 x 16 blocks of 128x128, one FP32 scale each.
    assert storage_format("fp8_w128").tensor_bytes(7168, 2048) == 14_680_064 + 56 * 16 * 4


def test_fp4_experts_shrink_weights():
    # Same Flash model with routed experts stored as FP8 blocks instead of MXFP4: the routed
    # expert bytes grow by (8 bits) / (4.25 bits) = 1.88x (scales aside).
    flash = load_model("deepseek-v4-flash")
    fp4_bytes = flash.weight_breakdown["routed_experts"].bytes
    params = flash.weight_breakdown["routed_experts"].params
    assert fp4_bytes == pytest.approx(params * (4 + 8 / 32) / 8)


def test_llama_weight_bytes_bf16():
    # Dense BF16 model: 2 bytes per parameter (embedding, layers, untied head).
    model = load_model("llama-3.1-70b")
    assert model.weight_bytes == 2 * model.total_params
