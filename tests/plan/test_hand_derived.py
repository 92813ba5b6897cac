"""Capacity planning checked against hand arithmetic, one configuration per GPU family.

Hardware figures are read from the profiles (they are inputs); everything derived from
them is worked out in the comments and compared with what the planner computes.
"""

from __future__ import annotations

import math

import pytest

from planner import load_model
from planner.hardware import GPU, load_gpu
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.plan.memory import (
    max_concurrent_sequences,
    memory_budget,
    weights_per_gpu,
)
from planner.plan.perf import decode_step, expected_distinct_experts, prefill_chunk
from planner.schema import (
    ComputeSpec,
    DenseFFNSpec,
    Deployment,
    EfficiencySpec,
    GQASpec,
    HardwareProfile,
    InterconnectSpec,
    LayerSpec,
    ModelSpec,
    PriceSpec,
)

GIB = 2**30

# Llama-3.1-70B parameters (config.json): embedding and untied head 128,256 x 8,192 =
# 1,050,673,152 each; per layer q/o 8,192^2 = 67,108,864 each, k/v 8,192 x 1,024 = 8,388,608
# each, FFN 3 x 8,192 x 28,672 = 704,643,072 -> 855,638,016 x 80 layers = 68,451,041,280.
LLAMA_PARAMS = 68_451_041_280 + 2 * 1_050_673_152  # 70,552,387,584
LLAMA_BF16_BYTES = 2 * LLAMA_PARAMS  # 141,104,775,168


# vLLM 0.33.0 defaults per data-parallel engine (engine/arg_utils.py get_batch_defaults,
# OpenAI server): >= 160 GiB devices 16,384 tokens / 1,024 sequences; >= 70 GiB and not an
# A100 8,192 / 1,024; otherwise 2,048 / 256. gpu_memory_utilization 0.92 (config/cache.py).
VLLM_BATCH_DEFAULTS = {
    "h100-sxm": (8192, 1024),  # 79.65 GiB
    "a100-80gb": (2048, 256),  # A100s stay on the small tier
    "mi300x": (16384, 1024),  # 191.69 GiB
    "ascend-910b": (2048, 256),  # 64 GiB
}
VLLM_MEMORY_UTILIZATION = 0.92


def runtime_reserve_gib(gpus: int) -> float:
    """engines/vllm.yaml: non-torch 0.16 GiB, plus 0.64 GiB for the one NCCL communicator
    of a TP group of more than one GPU (Llama is dense: no expert-parallel group; no
    attention DP), plus CUDA graphs 1 GiB."""
    return 0.16 + (0.64 if gpus > 1 else 0.0) + 1.0


def llama_activations(gpus: int, tokens: int = 8192, sequences: int = 1024) -> int:
    """Activation estimate: the larger of the forward pass and the sampler warm-up (14 B
    per sequence and vocabulary entry: BF16 logits, FP32 copy, probabilities, noise) over
    max_num_seqs x 128,256. The forward pass keeps, per token, the MLP block's live BF16
    tensors: residual and normed input (2 x 8,192), gate/up (2 x 28,672 / N), activation
    (28,672 / N) and down_proj's whole output (8,192) - more than the attention block's
    2 x 8,192 + (8,192 + 2 x 1,024) / N + 8,192.
    On 4 H100: max(8,192 x (24,576 + 21,504) x 2, 1,024 x 128,256 x 14) = 1,838,678,016 B."""
    mlp_elements = 3 * 8192 + 3 * (28_672 // gpus)
    return max(tokens * mlp_elements * 2, sequences * 128_256 * 14)


def _llama_on(gpu_name: str, gpus: int) -> Deployed:
    return Deployed.build(
        load_model("llama-3.1-70b"), load_gpu(gpu_name), Deployment(gpus_per_replica=gpus)
    )


@pytest.mark.parametrize(
    ("gpu_name", "gpus"),
    [
        ("h100-sxm", 4),  # NVIDIA Hopper
        ("a100-80gb", 4),  # NVIDIA Ampere
        ("mi300x", 2),  # AMD CDNA3
        ("ascend-910b", 8),
    ],  # Huawei Ascend
)
def test_llama_memory_budget(gpu_name, gpus):
    deployed = _llama_on(gpu_name, gpus)
    total = load_gpu(gpu_name).profile.hbm_gib * GIB
    budget = memory_budget(deployed)
    # Every Llama weight is split over the TP = N GPUs.
    assert budget.weights_bytes == pytest.approx(LLAMA_BF16_BYTES / gpus)
    activations = llama_activations(gpus, *VLLM_BATCH_DEFAULTS[gpu_name])
    assert budget.activation_bytes == activations
    # Reserve: 8% of HBM left by gpu_memory_utilization 0.92, plus the runtime reserve.
    held = (1 - VLLM_MEMORY_UTILIZATION) * total + runtime_reserve_gib(gpus) * GIB
    assert budget.reserved_bytes == pytest.approx(held)
    pool = total - held - LLAMA_BF16_BYTES / gpus - activations
    assert budget.kv_pool_bytes == pytest.approx(pool)
    # One 8,192-token sequence: 327,680 B/token x 8,192 = 2,684,354,560 B, of which each GPU
    # keeps ceil(8 KV heads / N) / 8; 8,192 tokens are 512 whole 16-token blocks, so whole
    # blocks of the pool and whole sequences agree.
    share = math.ceil(8 / gpus) / 8
    per_seq = 327_680 * 8192 * share
    assert max_concurrent_sequences(deployed, 8192) == math.floor(pool / per_seq)


def test_llama_h100_numbers():
    # The case above, written out for 4 x H100: HBM 79.65 GiB = 85,523,536,281.6 B;
    # pool = 0.92 x HBM - 1.8 GiB - 35,276,193,792 - 1,838,678,016 = 39,634,046,287.9 B;
    # each GPU keeps 2 of 8 KV heads: 671,088,640 B per sequence -> 59 sequences.
    assert max_concurrent_sequences(_llama_on("h100-sxm", 4), 8192) == 59


def test_v4_flash_experts_on_b200():
    # NVIDIA Blackwell, MoE: V4-Flash routed experts, 43 layers x 256 experts x 3 matrices
    # of 4,096 x 2,048 = 277,025,390,592 params in MXFP4 (0.5 B + 1 B per 32 elements =
    # 0.53125 B each) = 147,169,738,752 B, split over 8 GPUs = 18,396,217,344 B per GPU.
    deployed = Deployed.build(
        load_model("deepseek-v4-flash"), load_gpu("b200"), Deployment(gpus_per_replica=8)
    )
    assert weights_per_gpu(deployed)["routed_experts"] == 18_396_217_344
    # The MTP module is only loaded with MTP decoding on.
    assert "mtp" not in weights_per_gpu(deployed)


def test_mla_cache_is_replicated_across_tp_ranks():
    # V3.2 keeps one latent per token for all heads: each of 8 TP ranks holds the whole
    # sequence; with attention DP 8 (TP 1) the 8 GPUs hold 8 different sequences.
    model = load_model("deepseek-v3.2")
    gpu = load_gpu("h200")
    tp8 = Deployed.build(model, gpu, Deployment(gpus_per_replica=8))
    dp8 = Deployed.build(model, gpu, Deployment(gpus_per_replica=8, tensor_parallel=1))
    # 131,072 tokens x 48,068 B = 6,300,366,848 B per sequence (block size 64 divides it).
    per_seq = 131_072 * 48_068
    assert max_concurrent_sequences(tp8, 131_072) == math.floor(
        memory_budget(tp8).kv_pool_bytes / per_seq
    )
    assert max_concurrent_sequences(dp8, 131_072) == 8 * math.floor(
        memory_budget(dp8).kv_pool_bytes / per_seq
    )


def test_expected_distinct_experts():
    # One token touches exactly k experts; T tokens at most E.
    assert expected_distinct_experts(256, 8, 1) == pytest.approx(8)
    # Two tokens: 256 x (1 - (248/256)^2) = 256 - 240.25 = 15.75.
    assert expected_distinct_experts(256, 8, 2) == pytest.approx(15.75)
    assert expected_distinct_experts(256, 8, 10_000) == pytest.approx(256)


# --------------------------------------------------------------------------- roofline
def _toy_gpu(bandwidth_tb_per_s: float, kernel_overhead_us: float) -> GPU:
    return GPU(
        HardwareProfile(
            name="toy",
            display_name="toy",
            vendor="test",
            hbm_gib=80,
            hbm_bandwidth_tb_per_s=bandwidth_tb_per_s,
            compute={"bf16": ComputeSpec(native=True, peak_tflop_per_s=100)},
            interconnect=InterconnectSpec(name="none", bandwidth_gb_per_s=100),
            power_watts=1,
            price=PriceSpec(
                default_usd_per_gpu_hour=1,
                low_usd_per_gpu_hour=1,
                high_usd_per_gpu_hour=1,
                as_of="test",
            ),
            efficiency=EfficiencySpec(
                bandwidth_fraction=1,
                flops_fraction=1,
                kernel_overhead_us=kernel_overhead_us,
                kernel_overhead_no_graphs_us=0,
                interconnect_fraction=1,
                collective_latency_us=0,
            ),
            sources={},
        )
    )


def _toy_model() -> Model:
    # One layer: MHA 8 heads x 64 (hidden 512), dense FFN 1,024, vocab 1,000, all BF16.
    layer = LayerSpec(
        attention=GQASpec(num_heads=8, num_kv_heads=8, head_dim=64),
        ffn=DenseFFNSpec(intermediate_size=1024),
    )
    return Model(
        ModelSpec(
            name="toy",
            display_name="toy",
            architecture="test",
            hidden_size=512,
            vocab_size=1000,
            max_context_tokens=4096,
            layers=(layer,),
        )
    )


def _toy(bandwidth_tb_per_s: float, kernel_overhead_us: float = 0.0) -> Deployed:
    return Deployed.build(
        _toy_model(),
        _toy_gpu(bandwidth_tb_per_s, kernel_overhead_us),
        Deployment(gpus_per_replica=1, step_overhead_ms=0),
    )


def test_toy_decode_step_is_memory_bound():
    # Decode, batch 1, L = 100, at 1 TB/s and 100 TFLOP/s (every operator is memory bound:
    # about 1 FLOP per byte against a balance point of 100). The toy GPU has no fitted
    # curves: every operator runs at the profile's fractions (1 here).
    # q, k, v fused (512 -> 1,536): 1,572,864 weight bytes + (512 + 1,536) x 2 B = 1,576,960
    # o: 512 x 512 x 2 B = 524,288 + (512 + 512) x 2 B = 526,336
    # attention: K and V of 100 tokens x 8 heads x 64 x 2 B x 2 = 204,800
    # gate and up fused (512 -> 2,048): 2,097,152 + (512 + 2,048) x 2 = 2,102,272
    # down (1,024 -> 512): 1,048,576 + 1,536 x 2 = 1,051,648
    # head 512 x 1,000: 1,024,000 + 1,512 x 2 = 1,027,024
    # elementwise, read + written: two residual-add + RMSNorm kernels, 4 x 512 x 2 B each
    #   = 8,192; RoPE over 8 query + 8 key heads of 64 = 16 x 64 x 2 B x 2 = 4,096; the new
    #   token's K and V (2,048 B) read and written = 4,096; SiLU x mul 3 x 1,024 x 2 B =
    #   6,144; embedding row 512 x 2 B x 2 = 2,048; sampling reads the 1,000 FP32 logits
    #   twice = 8,000: 32,576
    # total 6,521,616 B at 10^12 B/s = 6.521616 us.
    step = decode_step(_toy(1.0), batch=1, context_tokens=100)
    assert float(step.time_s) == pytest.approx(6.521616e-6)
    assert step.bound == "memory"


def test_toy_kernel_overheads_add():
    # qkv, o, attention, gate_up, down, head = 6 GEMM/attention kernels; 2 norms, RoPE, KV
    # write, activation, embedding, sampler = 7 memory kernels: 13 kernels at 5 us = 65 us
    # on top of the roofline time.
    step = decode_step(_toy(1.0, kernel_overhead_us=5.0), batch=1, context_tokens=100)
    assert float(step.time_s) == pytest.approx(6.521616e-6 + 65e-6)


def test_toy_prefill_is_compute_bound():
    # Prefill of 100 tokens at L = 100 with 1,000 TB/s (the profile bound; every matrix and
    # the attention are compute bound there, the largest, the LM head, by 10x):
    # projections 4 x 100 x 2 x 512 x 512 = 209,715,200 FLOPs
    # attention: 8 heads x 2 x (64 + 64) FLOPs x (1 + ... + 100 = 5,050 pairs) = 10,342,400
    # FFN 3 x 100 x 2 x 512 x 1,024 = 314,572,800; the head computes logits for the one
    # sampled token only: 2 x 512 x 1,000 = 1,024,000
    # total 535,654,400 FLOPs at 10^14 FLOP/s = 5.356544 us; plus the elementwise kernels
    # (bytes per token as in the decode test: norms 8,192 + RoPE 4,096 + KV write 4,096 +
    # activation 6,144 + embedding 2,048 = 24,576, x 100 tokens, and 8,000 B of sampling)
    # 2,465,600 B at 10^15 B/s = 2.4656 ns.
    step = prefill_chunk(_toy(1e3), chunk_tokens=100, context_tokens=100)
    assert float(step.flops_per_gpu) == 535_654_400
    assert float(step.time_s) == pytest.approx(5.356544e-6 + 2.4656e-9, rel=1e-9)
    assert step.bound == "compute"


@pytest.mark.parametrize(
    ("name", "gpu", "tp"),
    [
        ("deepseek-v4-flash", "h200", None),
        ("deepseek-v3.2", "h200", 1),
        ("llama-3.1-70b", "h100-sxm", None),
    ],
)
def test_table_decode_time_equals_full_decode_step(name, gpu, tp):
    # The sizing fast path (cached lookup tables) gives the same step time as the full
    # operator-by-operator decode step.
    from planner.plan.perf import decode_time_s

    deployed = Deployed.build(
        load_model(name),
        load_gpu(gpu),
        Deployment(gpus_per_replica=8 if tp else 4, tensor_parallel=tp),
    )
    for batch, context in ((1, 1024), (37, 8192), (256, 65_536)):
        full = float(decode_step(deployed, batch, context).time_s)
        assert decode_time_s(deployed, batch, context) == pytest.approx(full, rel=1e-9)


def test_vllm_moe_profile_run_and_communicators():
    # Qwen3-235B-A22B-FP8 on 4 x H100 under vLLM, experts split over the 4 GPUs (EP 4,
    # whole experts), 8,192 batched tokens, one sequence (so the sampler warm-up, 151,936 x 14 B,
    # stays small). Per token, in BF16:
    # - fused-MoE workspace (vLLM TritonExperts.workspace_shapes): top_k 8 x (max(N, K) +
    #   N / 2) with N = 2 x 1,536, K = 4,096: 8 x (4,096 + 1,536) x 2 B = 90,112 B;
    # - the MoE block around it: residual and normed input 2 x 4,096 + routed output 4,096
    #   = 12,288 elements = 24,576 B;
    # - the attention block: 2 x 4,096 + q 8,192 / 4 + k and v 512 / 4 each + o 4,096 =
    #   14,592 elements = 29,184 B (less than the MoE block's 114,688 B).
    # Forward = 8,192 x (24,576 + 90,112) = 939,524,096 B.
    deployed = Deployed.build(
        load_model("qwen3-235b-a22b"),
        load_gpu("h100-sxm"),
        Deployment(
            gpus_per_replica=4,
            max_num_seqs=1,
            weight_formats={"attention": "fp8_w128", "routed_experts": "fp8_w128"},
        ),
    )
    assert memory_budget(deployed).activation_bytes == 939_524_096
    # Runtime reserve: non-torch 0.16 GiB + 2 NCCL communicators (TP group and, for an MoE
    # model, the EP group) x 0.64 GiB + CUDA graphs 1 GiB = 2.44 GiB.
    assert deployed.deployment.runtime_reserve_gib == pytest.approx(2.44)
