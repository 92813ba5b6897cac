"""Hand-derived KV bytes and FLOPs per attention kind; the arithmetic is in each test."""

from __future__ import annotations

import numpy as np
import pytest

from planner import load_model
from planner.model.attention import CompressedAttention, make_attention
from planner.schema import CompressedSpec, DSASpec, GQASpec, MLASpec

ONE_M = 1_048_576
# DeepSeek-V3 / V3.2 MLA fields (config.json: 128 heads, q_lora 1536, kv_lora 512,
# qk_nope 128, qk_rope 64, v_head 128).
V3_MLA = {
    "num_heads": 128,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}


def test_deepseek_v3_mla_bf16_bytes_per_token():
    # (kv_lora_rank 512 + rope 64) values x 2 bytes (BF16) x 61 layers = 70,272 bytes.
    assert load_model("deepseek-v3").kv_bytes_per_token == (512 + 64) * 2 * 61 == 70_272
    assert load_model("deepseek-v3").kv_bytes(1000) == 70_272 * 1000


def test_llama_3_1_70b_gqa_bf16_bytes_per_token():
    # K and V: 2 x 80 layers x 8 kv heads x 128 dims x 2 bytes = 327,680 bytes.
    assert load_model("llama-3.1-70b").kv_bytes_per_token == 2 * 80 * 8 * 128 * 2 == 327_680


def test_qwen3_235b_gqa_bf16_bytes_per_token():
    # 2 x 94 layers x 4 kv heads x 128 x 2 bytes = 192,512 bytes.
    assert load_model("qwen3-235b-a22b").kv_bytes_per_token == 192_512


def test_deepseek_v32_fp8_layout():
    # FlashMLA FP8: 512 FP8 bytes + 512/128 = 4 FP32 scales (16 B) + 64 BF16 RoPE (128 B) = 656.
    # Indexer key: 128 FP8 bytes + one FP32 scale = 132.  (656 + 132) x 61 = 48,068 B/token.
    model = load_model("deepseek-v3.2")
    kind = model.attention(0)
    assert kind.entry_bytes == 512 + 16 + 128 == 656
    assert kind.index_key_bytes == 132
    assert model.kv_bytes_per_token == 788 * 61 == 48_068


def test_kv_dtype_override_bf16_for_v32():
    # BF16 latent + RoPE = 1,152 B; indexer keys keep FP8 (132 B): (1152 + 132) x 61 = 78,324.
    assert load_model("deepseek-v3.2", kv_dtype="bf16").kv_bytes_per_token == 78_324


def test_v4_entry_and_index_key_bytes():
    # 448 nope dims FP8 (448 B) + 448/64 = 7 UE8M0 scales + 64 RoPE dims BF16 (128 B) + 1 pad
    # = 584 B.  MXFP4 indexer key: 128 x 4 bits = 64 B + 128/32 = 4 E8M0 scales = 68 B.
    kind = load_model("deepseek-v4-pro").attention(2)
    assert isinstance(kind, CompressedAttention) and kind.label == "CSA"
    assert kind.entry_bytes == 584
    assert kind.index_key_bytes == 68


def test_v4_pro_kv_bytes_at_1m():
    # 1M = 2^20 tokens. CSA (30 layers): 2^20 / 4 = 262,144 entries x (584 + 68) B;
    # HCA (31 layers): 2^20 / 128 = 8,192 entries x 584 B.
    # 30 x 262,144 x 652 + 31 x 8,192 x 584 = 5,127,536,640 + 148,307,968 = 5,275,844,608.
    assert load_model("deepseek-v4-pro").kv_bytes(ONE_M) == 5_275_844_608


def test_v4_pro_state_bytes():
    # Sliding window: 128 x 584 = 74,752 B on every layer.
    # CSA compressor: overlap 2 x ratio 4 = 8 slots x (2 x 2 x 512) FP32 values = 65,536 B,
    #   indexer compressor: 8 slots x (2 x 2 x 128) x 4 B = 16,384 B.
    # HCA compressor: 128 slots x (2 x 1 x 512) x 4 B = 524,288 B.
    # 30 x (74,752 + 65,536 + 16,384) + 31 x (74,752 + 524,288) = 4,700,160 + 18,570,240.
    assert load_model("deepseek-v4-pro").state_bytes() == 23_270_400


def test_v4_flash_swa_layer_has_only_window_state():
    kind = load_model("deepseek-v4-flash").attention(0)
    assert kind.label == "SWA"
    assert kind.kv_bytes(ONE_M) == 0
    assert kind.state_bytes() == 128 * 584


def test_gqa_prefill_flops_is_causal_triangle():
    # 4-token prefill: the queries see 1, 2, 3, 4 tokens = 10 (query, key) pairs.
    # Per pair and head: 2 FLOPs x 128 (score) + 2 x 128 (value) = 512; 64 heads.
    kind = make_attention(GQASpec(num_heads=64, num_kv_heads=8, head_dim=128))
    assert kind.attn_flops(4, 4) == 10 * 64 * 512 == 327_680
    # Decode at L = 4: one query sees 4 tokens.
    assert kind.attn_flops(1, 4) == 4 * 64 * 512


def test_gqa_sliding_window_caps_cache_and_flops():
    kind = make_attention(
        GQASpec(num_heads=8, num_kv_heads=8, head_dim=64, sliding_window_tokens=100)
    )
    # Per token: 2 x 8 heads x 64 x 2 B = 2,048 B; capped at 100 tokens.
    assert kind.kv_bytes(50) == 50 * 2048
    assert kind.kv_bytes(5000) == 100 * 2048
    assert kind.attn_flops(1, 5000) == 100 * 8 * 2 * 128


def test_mla_absorbed_vs_naive_flops():
    spec = MLASpec(**V3_MLA)
    kind = make_attention(spec)
    # Absorbed decode at L = 1000: per head and token 2 x (512 + 64) + 2 x 512 = 2,176 FLOPs.
    assert kind.attn_flops(1, 1000) == 128 * 2176 * 1000
    # Naive prefill of 10 tokens at L = 10: 55 pairs x 128 heads x 2 x (128 + 64 + 128);
    # no cached context to up-project.
    assert kind.attn_flops(10, 10) == 55 * 128 * 640
    # Chunk of 10 queries on 90 cached tokens: pairs = 91 + ... + 100 = 955, plus
    # up-projecting 90 cached latents: 90 x 2 x 512 x 128 x (128 + 128).
    assert kind.attn_flops(10, 100, absorbed=False) == 955 * 128 * 640 + 90 * 2 * 512 * 128 * 256


def test_dsa_flops_at_1m():
    spec = DSASpec(
        **V3_MLA,
        index_n_heads=64,
        index_head_dim=128,
        index_topk=2048,
    )
    kind = make_attention(spec)
    # Main attention over the top 2,048 tokens: 128 heads x 2,176 x 2,048 = 570,425,344.
    assert kind.attn_flops(1, ONE_M) == 570_425_344
    # Indexer scores all 2^20 tokens: 64 heads x (2 x 128 + 2) x 2^20 = 17,314,086,912.
    assert kind.indexer_flops(1, ONE_M) == 17_314_086_912
    # Below top-k the main attention sees everything: L = 1,000.
    assert kind.attn_flops(1, 1000) == 128 * 2176 * 1000
    # Decode reads all index keys but only top-k entries: 2^20 x 132 + 2,048 x 656 (FP8).
    fp8 = make_attention(spec.model_copy(update={"latent_format": "fp8_b128"}))
    assert fp8.read_bytes(ONE_M) == ONE_M * 132 + 2048 * 656


def _v4(kind: str, ratio: int, **extra: object) -> CompressedAttention:
    spec = CompressedSpec(
        kind=kind,
        num_heads=128,
        head_dim=512,
        qk_rope_head_dim=64,
        q_lora_rank=1536,
        o_lora_rank=1024,
        o_groups=16,
        compress_ratio=ratio,
        sliding_window_tokens=128,
        entry_pad_bytes=1,
        **extra,
    )
    attention = make_attention(spec)
    assert isinstance(attention, CompressedAttention)
    return attention


def test_csa_decode_flops_and_read_bytes():
    csa = _v4(
        "csa",
        4,
        compressor_overlap=2,
        index_n_heads=64,
        index_head_dim=128,
        index_topk=1024,
        index_key_format="mxfp4",
    )
    # L = 1,000: 250 compressed entries (< top-k 1,024) + 128 window tokens = 378 attended;
    # each costs 128 heads x 2 x (512 + 512) FLOPs.
    assert csa.attn_flops(1, 1000) == 378 * 128 * 2048
    # L = 1M: top-k caps the compressed part at 1,024: 1,152 attended.
    assert csa.attn_flops(1, ONE_M) == 1152 * 128 * 2048
    # Indexer scores all 2^18 compressed entries: 64 x 258 x 262,144.
    assert csa.indexer_flops(1, ONE_M) == 64 * 258 * 262_144
    # Reads: all 262,144 index keys (68 B) + 1,024 selected entries + 128 window, 584 B each.
    assert csa.read_bytes(ONE_M) == 262_144 * 68 + (1024 + 128) * 584


def test_hca_is_dense_over_compressed_entries():
    hca = _v4("hca", 128)
    # L = 1M: 8,192 entries + 128 window = 8,320 attended, all read.
    assert hca.attn_flops(1, ONE_M) == 8320 * 128 * 2048
    assert hca.read_bytes(ONE_M) == 8320 * 584
    assert hca.indexer_flops(1, ONE_M) == 0


def test_vectorised_over_context():
    model = load_model("deepseek-v4-flash")
    contexts = np.array([0, 1, 4, 128, 131_072, ONE_M])
    values = model.kv_bytes(contexts)
    assert values.shape == contexts.shape
    assert [model.kv_bytes(int(c)) for c in contexts] == pytest.approx(list(values))
