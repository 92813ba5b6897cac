"""Weight formats change memory everywhere but math speed only where the GPU has a tensor-
core path for them: FP8 on Ampere runs at BF16 speed, FP4 on Hopper at FP8 speed, FP4 on
Blackwell at FP4 speed.

Byte counts are worked out by hand from the format definitions (bits per element plus one
scale per block) and the published layer shapes; FLOP rates come from the GPU profiles.
The GPUs here run on their profiles' constant fractions (``analytic``: no fitted kernel
curves), so that rates follow from the profile alone; routing is uniform.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner import load_model
from planner.hardware import GPU, load_gpu
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.plan.memory import weights_per_gpu
from planner.plan.perf import decode_step, prefill_chunk
from planner.schema import Deployment, MoEFFNSpec

TFLOP = 1e12

# Llama-3.1-70B config.json: hidden 8192, 64 query heads, 8 KV heads of 128 dims, SwiGLU
# intermediate 28672, 80 layers.
LLAMA_LAYERS = 80
LLAMA_HIDDEN = 8192
LLAMA_Q_DIM = 64 * 128
LLAMA_KV_DIM = 8 * 128
LLAMA_INTER = 28_672
# q, k, v, o projections: 2 x 8192 x 8192 + 2 x 8192 x 1024 = 150,994,944 per layer.
LLAMA_ATTENTION_PARAMS = LLAMA_LAYERS * (
    2 * LLAMA_HIDDEN * LLAMA_Q_DIM + 2 * LLAMA_HIDDEN * LLAMA_KV_DIM
)
# gate, up, down: 3 x 8192 x 28672 = 704,643,072 per layer.
LLAMA_FFN_PARAMS = LLAMA_LAYERS * 3 * LLAMA_HIDDEN * LLAMA_INTER
LLAMA_GPUS = 4
PREFILL_TOKENS = 8192

# Bytes per element, scales included, for matrices whose sides are multiples of the block:
# mxfp4 = 4 bits + one 1-byte E8M0 scale per 32 elements = 1/2 + 1/32 = 17/32 byte;
# fp8_w128_ue8m0 = 8 bits + one 1-byte UE8M0 scale per 128 x 128 block = 1 + 1/16384 byte.
MXFP4_BYTES_PER_PARAM = 4 / 8 + 1 / 32
FP8_W128_UE8M0_BYTES_PER_PARAM = 1 + 1 / (128 * 128)
V4_GPUS = 8
# Large enough that every routed-expert matmul is compute-bound on H100/H200 (FP8) and on
# B200 (FP4): with 256 experts and 6 per token, each expert sees 65,536 x 6 / 256 = 1,536
# tokens, i.e. ~3,000 FLOPs per FP8 weight byte against a ridge of ~360 on H200.
V4_CHUNK_TOKENS = 65_536


def analytic(name: str) -> GPU:
    """The GPU profile without fitted kernel curves (a name no fit file has)."""
    profile = load_gpu(name).profile
    efficiency = profile.efficiency.model_copy(update={"kernel_fits_from": None})
    return GPU(profile.model_copy(update={"name": f"{name}-analytic", "efficiency": efficiency}))


def llama_on_a100(weight_formats: dict[str, str] | None = None) -> Deployed:
    deployment = Deployment(gpus_per_replica=LLAMA_GPUS, weight_formats=weight_formats or {})
    return Deployed.build(load_model("llama-3.1-70b"), analytic("a100-80gb"), deployment)


def achievable_flop_per_s(gpu: GPU, dtype: str) -> float:
    """Profile peak of a dtype times the profile's flops_fraction (hand-picked dtype)."""
    spec = gpu.profile.compute[dtype]  # type: ignore[index]
    assert spec.native and spec.peak_tflop_per_s is not None
    return spec.peak_tflop_per_s * TFLOP * gpu.profile.efficiency.flops_fraction


# --------------------------------------------------------------------------- FP8 on A100
def test_a100_has_no_fp8_math() -> None:
    assert load_gpu("a100-80gb").math_dtype("fp8") == "bf16"


def test_fp8_weights_on_a100_halve_memory() -> None:
    bf16 = weights_per_gpu(llama_on_a100())
    fp8 = weights_per_gpu(llama_on_a100({"attention": "fp8", "dense_ffn": "fp8"}))
    # Every GPU holds 1/4 of each group: 2 bytes per parameter in BF16, 1 in FP8.
    assert bf16["attention"] == LLAMA_ATTENTION_PARAMS * 2 / LLAMA_GPUS
    assert bf16["dense_ffn"] == LLAMA_FFN_PARAMS * 2 / LLAMA_GPUS
    assert fp8["attention"] == LLAMA_ATTENTION_PARAMS * 1 / LLAMA_GPUS
    assert fp8["dense_ffn"] == LLAMA_FFN_PARAMS * 1 / LLAMA_GPUS
    for group in ("embedding", "head"):  # not overridden: unchanged
        assert fp8[group] == bf16[group]


def test_fp8_weights_on_a100_do_not_speed_up_compute_bound_prefill() -> None:
    a100 = analytic("a100-80gb")
    bf16 = prefill_chunk(llama_on_a100(), PREFILL_TOKENS, PREFILL_TOKENS)
    fp8 = prefill_chunk(
        llama_on_a100({"attention": "fp8", "dense_ffn": "fp8"}), PREFILL_TOKENS, PREFILL_TOKENS
    )
    assert bf16.bound == fp8.bound == "compute"
    np.testing.assert_array_equal(fp8.flops_per_gpu, bf16.flops_per_gpu)
    np.testing.assert_array_equal(fp8.compute_bound_s, bf16.compute_bound_s)
    # Every matrix but the LM head is compute-bound and runs at the BF16 rate. The head
    # computes one row of logits per chunk (the only sampled token): 2 x 8,192 x 128,256 / 4
    # GPUs = 525,336,576 FLOPs, memory-bound (it reads its whole weight shard for one row).
    head_flops = 2 * 8192 * 128_256 / LLAMA_GPUS
    expected = (float(fp8.flops_per_gpu) - head_flops) / achievable_flop_per_s(a100, "bf16")
    assert float(fp8.compute_bound_s) == pytest.approx(expected, rel=1e-9)
    # Memory-bound: the head (its 8,192 x 128,256 BF16 shard, 525,336,576 B, plus one row in
    # and out, (8,192 + 32,064) x 2 B) and the elementwise kernels, bytes read + written for
    # 8,192 tokens on one of 4 GPUs, per layer: two residual-add + RMSNorms 2 x 4 x 8,192 x
    # 2 B; RoPE on 16 query + 2 key heads of 128, 18 x 128 x 2 B x 2; the new K and V of
    # this GPU's 2 KV heads, 2 x 2 x 2 x 128 x 2 B; SiLU x mul 3 x 7,168 x 2 B; then the
    # embedding rows 8,192 x 2 B x 2 and the sampler's two reads of 32,064 FP32 logits.
    per_token_layer = 2 * 4 * 8192 * 2 + 18 * 128 * 2 * 2 + 2 * 2 * 2 * 128 * 2 + 3 * 7168 * 2
    elementwise = PREFILL_TOKENS * (LLAMA_LAYERS * per_token_layer + 8192 * 2 * 2)
    elementwise += 32_064 * 4 * 2
    head_bytes = 525_336_576 + (8192 + 32_064) * 2
    bandwidth = a100.hbm_bandwidth_bytes_per_s * a100.profile.efficiency.bandwidth_fraction
    assert float(fp8.memory_bound_s) == pytest.approx(
        (elementwise + head_bytes) / bandwidth, rel=1e-9
    )
    assert float(fp8.memory_bound_s) < 0.06 * float(fp8.time_s)


def test_fp8_weights_on_a100_speed_up_memory_bound_decode() -> None:
    # The other half of the story: fewer bytes to stream does help a batch-1 decode.
    bf16 = decode_step(llama_on_a100(), 1, 1024)
    fp8 = decode_step(llama_on_a100({"attention": "fp8", "dense_ffn": "fp8"}), 1, 1024)
    assert bf16.bound == fp8.bound == "memory"
    assert float(fp8.time_s) < float(bf16.time_s)


# --------------------------------------------------------------------------- V4 experts
def v4_flash(gpu: str, routed_format: str) -> Deployed:
    deployment = Deployment(
        gpus_per_replica=V4_GPUS,
        weight_formats={"routed_experts": routed_format},
        moe_routing_alpha=None,
    )
    return Deployed.build(load_model("deepseek-v4-flash"), analytic(gpu), deployment)


def moe_layers(model: Model) -> list[MoEFFNSpec]:
    return [layer.ffn for layer in model.spec.layers if isinstance(layer.ffn, MoEFFNSpec)]


def routed_params(model: Model) -> tuple[int, int, int]:
    """(stored, active per token, matrices): gate/up/down of hidden x inter per expert."""
    hidden = model.spec.hidden_size
    stored = active = matrices = 0
    for ffn in moe_layers(model):
        per_expert = 3 * hidden * ffn.expert_intermediate_size
        stored += per_expert * ffn.num_routed_experts
        active += per_expert * ffn.experts_per_token
        matrices += 3
    return stored, active, matrices


def test_v4_flash_expert_shapes_are_whole_blocks() -> None:
    # The per-parameter byte counts above hold exactly only for whole scale blocks.
    model = load_model("deepseek-v4-flash")
    assert model.spec.weight_formats.routed_experts == "mxfp4"  # the default compared below
    assert model.spec.hidden_size % 128 == 0
    assert moe_layers(model)
    for ffn in moe_layers(model):
        assert ffn.expert_intermediate_size % 128 == 0


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200", "b200"])
def test_fp4_experts_take_17_32_of_the_fp8_bytes(gpu: str) -> None:
    mxfp4 = weights_per_gpu(v4_flash(gpu, "mxfp4"))["routed_experts"]
    fp8 = weights_per_gpu(v4_flash(gpu, "fp8_w128_ue8m0"))["routed_experts"]
    ratio = MXFP4_BYTES_PER_PARAM / FP8_W128_UE8M0_BYTES_PER_PARAM
    assert mxfp4 / fp8 == pytest.approx(ratio, rel=1e-3)
    stored, _, _ = routed_params(load_model("deepseek-v4-flash"))
    assert mxfp4 == pytest.approx(stored * MXFP4_BYTES_PER_PARAM / V4_GPUS, rel=1e-9)
    assert fp8 == pytest.approx(stored * FP8_W128_UE8M0_BYTES_PER_PARAM / V4_GPUS, rel=1e-9)


def routed_expert_times(
    gpu_name: str, math_dtype: str, bytes_per_param: float
) -> tuple[float, float, float]:
    """Hand roofline of the routed experts for one chunk, weight math in ``math_dtype``:
    (compute s, upper bound on memory s, fixed s: kernel launches and the routing pass).
    Uniform routing: each of the 8 ranks gets 1/8 of the token-expert pairs; one fused MoE
    kernel per layer."""
    gpu = analytic(gpu_name)
    model = load_model("deepseek-v4-flash")
    stored, active, matrices = routed_params(model)
    tokens = V4_CHUNK_TOKENS  # one attention-DP group: all of it goes through the experts
    flops_per_gpu = tokens * 2 * active / V4_GPUS
    compute_s = flops_per_gpu / achievable_flop_per_s(gpu, math_dtype)
    # Upper bound on bytes: every expert of this GPU (a 64K-token chunk touches them all),
    # plus, per matrix, the BF16 input of every token and this GPU's share of the output
    # (gate, up: h -> inter; down: inter -> h).
    hidden = model.spec.hidden_size
    activations = sum(
        tokens * 2 * (2 * (hidden + inter / V4_GPUS) + inter + hidden / V4_GPUS)
        for inter in (ffn.expert_intermediate_size for ffn in moe_layers(model))
    )
    weight_bytes = stored * bytes_per_param / V4_GPUS
    memory_s = (weight_bytes + activations) / (
        gpu.hbm_bandwidth_bytes_per_s * gpu.profile.efficiency.bandwidth_fraction
    )
    launch_s = matrices / 3 * gpu.profile.efficiency.kernel_overhead_us * 1e-6
    # Plus the routing pass: without DP attention every rank is handed all T x k token-
    # expert pairs and moves each pair's BF16 hidden vector (hidden x 2 B) once.
    layers = len(moe_layers(model))
    experts_per_token = moe_layers(model)[0].experts_per_token
    pair_bytes = layers * tokens * experts_per_token * hidden * 2
    routing_s = pair_bytes / (
        gpu.hbm_bandwidth_bytes_per_s * gpu.profile.efficiency.bandwidth_fraction
    )
    return compute_s, memory_s, launch_s + routing_s


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_fp4_experts_on_hopper_change_memory_not_flops(gpu: str) -> None:
    hopper = analytic(gpu)
    assert hopper.math_dtype("fp4") == "fp8"
    assert hopper.math_dtype("fp8") == "fp8"
    mxfp4 = prefill_chunk(v4_flash(gpu, "mxfp4"), V4_CHUNK_TOKENS, V4_CHUNK_TOKENS)
    fp8 = prefill_chunk(v4_flash(gpu, "fp8_w128_ue8m0"), V4_CHUNK_TOKENS, V4_CHUNK_TOKENS)
    np.testing.assert_array_equal(mxfp4.flops_per_gpu, fp8.flops_per_gpu)
    t_fp4 = float(mxfp4.by_operator_s["routed_experts"])
    t_fp8 = float(fp8.by_operator_s["routed_experts"])
    assert t_fp4 == pytest.approx(t_fp8, rel=1e-12)
    compute_s, memory_s, launch_s = routed_expert_times(gpu, "fp8", FP8_W128_UE8M0_BYTES_PER_PARAM)
    assert memory_s < compute_s  # compute-bound with FP8 weights, so with FP4 too
    assert t_fp8 == pytest.approx(compute_s + launch_s, rel=1e-6)


def test_fp4_is_native_on_b200() -> None:
    b200 = analytic("b200")
    assert b200.math_dtype("fp4") == "fp4"
    assert b200.peak_flop_per_s("fp4") == 2 * b200.peak_flop_per_s("fp8")


def test_fp4_experts_on_b200_halve_compute_time() -> None:
    mxfp4 = prefill_chunk(v4_flash("b200", "mxfp4"), V4_CHUNK_TOKENS, V4_CHUNK_TOKENS)
    fp8 = prefill_chunk(v4_flash("b200", "fp8_w128_ue8m0"), V4_CHUNK_TOKENS, V4_CHUNK_TOKENS)
    np.testing.assert_array_equal(mxfp4.flops_per_gpu, fp8.flops_per_gpu)
    t_fp4 = float(mxfp4.by_operator_s["routed_experts"])
    t_fp8 = float(fp8.by_operator_s["routed_experts"])
    fp4_compute, fp4_memory, launch_s = routed_expert_times("b200", "fp4", MXFP4_BYTES_PER_PARAM)
    fp8_compute, fp8_memory, _ = routed_expert_times("b200", "fp8", FP8_W128_UE8M0_BYTES_PER_PARAM)
    # Both compute-bound, FP4 at twice the FP8 rate included.
    assert fp4_memory < fp4_compute and fp8_memory < fp8_compute
    assert t_fp4 < t_fp8
    assert t_fp4 == pytest.approx(fp4_compute + launch_s, rel=1e-6)
    assert t_fp8 == pytest.approx(fp8_compute + launch_s, rel=1e-6)
    assert (t_fp8 - launch_s) / (t_fp4 - launch_s) == pytest.approx(2.0, rel=1e-9)
