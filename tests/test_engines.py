"""Serving engines: data files checked on load, cache formats, admission and defaults, each
against a hand derivation from the engine's code (versions and paths in engines/*.yaml)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from planner import load_model
from planner.engines import DEFAULT_ENGINE_DIR, ENGINE_DIR_ENV, _load, engine_names, load_engine
from planner.errors import ConfigError, UnknownNameError
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import (
    kv_pool_tokens,
    max_concurrency,
    max_concurrent_sequences,
    memory_budget,
)
from planner.report.plan_report import plan_report
from planner.schema import Deployment

GIB = 2**30
ONE_M = 1_048_576


def test_every_engine_file_loads_with_a_version() -> None:
    assert engine_names() == ["sglang", "trtllm", "vllm"]
    assert load_engine("vllm").profile.version == "0.33.0"
    assert load_engine("sglang").profile.version == "0.5.23"


def test_unknown_engine_is_a_named_error() -> None:
    with pytest.raises(UnknownNameError, match="engine"):
        load_engine("tgi")


def test_a_field_without_source_is_refused(tmp_path: Path, monkeypatch) -> None:
    text = (DEFAULT_ENGINE_DIR / "vllm.yaml").read_text()
    broken = text.replace('  version: "vllm==0.33.0', '  versionx: "vllm==0.33.0')
    (tmp_path / "vllm.yaml").write_text(broken)
    monkeypatch.setenv(ENGINE_DIR_ENV, str(tmp_path))
    _load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="sources.versionx"):
            load_engine("vllm")
    finally:
        _load.cache_clear()


def test_engine_name_must_match_its_file(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(DEFAULT_ENGINE_DIR / "vllm.yaml", tmp_path / "other.yaml")
    monkeypatch.setenv(ENGINE_DIR_ENV, str(tmp_path))
    _load.cache_clear()
    try:
        with pytest.raises(ConfigError, match="file name"):
            load_engine("other")
    finally:
        _load.cache_clear()


def _deployed(model: str, gpu: str, **fields: object) -> Deployed:
    return Deployed.build(load_model(model), load_gpu(gpu), Deployment.model_validate(fields))


def test_dense_mla_fp8_is_576_bytes_in_the_engines() -> None:
    # vLLM and SGLang store dense MLA (V3/R1) with --kv-cache-dtype fp8 as 512 + 64 FP8
    # values; the sparse FlashMLA layout (656 B) is V3.2's.
    for engine in ("vllm", "sglang"):
        v3 = _deployed("deepseek-v3", "h200", engine=engine, kv_dtype="fp8")
        ((kind, _),) = v3.model.attention_groups
        assert kind.kv_bytes_per_token == 576
        v32 = _deployed("deepseek-v3.2", "h200", engine=engine, kv_dtype="fp8")
        ((kind, _),) = v32.model.attention_groups
        assert kind.kv_bytes_per_token == 656 + 132


def test_v4_indexer_is_fp8_by_default_in_the_engines() -> None:
    # Catalog (the report's reference stack): MXFP4 indexer key 64 + 4 = 68 B. vLLM 0.33 and
    # SGLang 0.5.23 default to FP8: 128 + 4 B scale = 132 B.
    reference = load_model("deepseek-v4-flash")
    csa = next(k for k, _ in reference.attention_groups if k.label == "CSA")
    assert csa.index_key_bytes == 68
    deployed = _deployed("deepseek-v4-flash", "b200", engine="vllm")
    csa = next(k for k, _ in deployed.model.attention_groups if k.label == "CSA")
    assert csa.index_key_bytes == 132


def test_vllm_defaults_follow_the_gpu_tier() -> None:
    # engine/arg_utils.py get_batch_defaults (OpenAI server): B200 (>= 160 GiB) 16,384 /
    # 1,024; H100 8,192 / 1,024; A100 2,048 / 256.
    cases = {"b200": (16384, 1024), "h100-sxm": (8192, 1024), "a100-80gb": (2048, 256)}
    for gpu, expected in cases.items():
        d = _deployed("llama-3.1-70b", gpu, gpus_per_replica=4).deployment
        assert (d.max_batched_tokens, d.max_num_seqs) == expected
        assert d.gpu_memory_utilization == 0.92
    explicit = _deployed("llama-3.1-70b", "b200", gpus_per_replica=4, max_num_seqs=7)
    assert explicit.deployment.max_num_seqs == 7


def test_vllm_logged_numbers_for_llama_on_4_h100() -> None:
    # Pool per GPU (tests/plan/test_hand_derived.py): 0.92 x 85,523,536,281.6 - 1.8 GiB
    # (non-torch 0.16 + one TP communicator 0.64 + CUDA graphs 1.0) - 35,276,193,792
    # weights - 1,838,678,016 activations = 39,634,046,287.9 B.
    # A block is 16 tokens x 80 layers x (2 of 8 KV heads: 1,024 B per token per layer)
    # = 1,310,720 B -> 30,238 blocks. At max_model_len 8,192 a request needs 512 blocks:
    # concurrency 30,238 / 512 = 59.06x; logged size int(59.06 x 8,192) = 483,808 tokens.
    deployed = _deployed("llama-3.1-70b", "h100-sxm", gpus_per_replica=4)
    budget = memory_budget(deployed)
    assert math.floor(budget.kv_pool_bytes / 1_310_720) == 30_238
    assert max_concurrency(deployed, 8192, budget) == pytest.approx(30_238 / 512)
    assert kv_pool_tokens(deployed, 8192, budget) == 483_808


def test_sglang_pool_for_llama_on_4_h100() -> None:
    # mem_fraction_static (srt/arg_groups/memory_hook.py): reserved = 512 + 1.5 x 8,192
    # chunk + 4 TP x 128 + 2 x 512 graph batch = 14,336 MiB (over the 10 GiB floor);
    # (81,561.6 - 14,336) / 81,561.6 = 0.8242 -> 0.824.
    # Pool = 0.824 x (HBM - 2.3 GiB in use before loading) - 35,276,193,792 weights
    # - 0.2 GiB allocated while loading (engines/sglang.yaml, from a public log);
    # tokens = pool / (80 layers x 1,024 B) per GPU.
    deployed = _deployed("llama-3.1-70b", "h100-sxm", engine="sglang", gpus_per_replica=4)
    assert deployed.deployment.gpu_memory_utilization == 0.824
    hbm = 79.65 * GIB
    pool = 0.824 * (hbm - 2.3 * GIB) - 35_276_193_792 - 0.2 * GIB
    assert kv_pool_tokens(deployed, 8192) == math.floor(pool / 81_920)


def test_vllm_v4_budgets_window_and_state_groups_for_in_flight_chunks() -> None:
    # V4-Flash, 8 x B200 with attention DP 8: max_num_batched_tokens 16,384 and async
    # scheduling (2 batches in flight) -> 32,768 in-flight tokens. One 1M request is
    # budgeted (v1/kv_cache_interface.py SlidingWindowSpec.max_admission_blocks_per_request):
    #   compressed group: 1,048,576 / 256 = 4,096 blocks
    #   2 sliding-window groups (window 128, 64-token blocks): cdiv(127 + 32,768, 64) + 1
    #     = 515 each -> 1,030
    #   CSA compressor state (window 8, 4 slots): cdiv(7 + 32,768, 4) + 1 = 8,195
    #   HCA compressor state (window 128, 8 slots): cdiv(127 + 32,768, 8) + 1 = 4,113
    # = 17,434 blocks of 1,002,240 B; a decoding sequence holds 4,122 of them.
    deployed = _deployed("deepseek-v4-flash", "b200", gpus_per_replica=8, tensor_parallel=1)
    budget = memory_budget(deployed)
    blocks = math.floor(budget.kv_pool_bytes / 1_002_240)
    assert max_concurrency(deployed, ONE_M, budget) == pytest.approx(blocks / 17_434)
    assert max_concurrent_sequences(deployed, ONE_M, budget) == 8 * (blocks // 4_122)


def test_default_batch_caps_max_num_seqs_per_data_parallel_engine() -> None:
    # 8 GPUs with attention DP 8 run 8 engines, each capped at max_num_seqs = 16 sequences
    # (vLLM applies it per DP engine): the replica's default decode batch is 8 x 16 = 128
    # when far more 8K sequences fit (the old cap was 16 for the whole replica).
    deployed = _deployed(
        "deepseek-v4-flash", "h200", gpus_per_replica=8, tensor_parallel=1, max_num_seqs=16
    )
    report = plan_report(deployed, 8192)
    assert report["max_concurrent_sequences"] > 128
    assert report["decode"]["batch"] == 128


def test_sglang_defaults_for_v4_with_dp_attention() -> None:
    # srt/arg_groups/deepseek_v4_hook.py: max_running_requests 256 for V4, split over the 8
    # DP workers -> 32 each. mem_fraction_static (memory_hook.py): chunk max(16,384 / 8,
    # 2,048) x 1.5 = 3,072 MiB; 512 base; 8 TP ranks x 128 = 1,024; CUDA-graph max_bs
    # min(512, 256 running requests) x 2 = 512; DP attention 256 x 8 x 3 = 6,144 ->
    # 11,264 MiB (over the 10,240 floor). B200 179.06 GiB = 183,357.44 MiB:
    # (183,357.44 - 11,264) / 183,357.44 = 0.93857 -> 0.939.
    deployed = _deployed(
        "deepseek-v4-flash", "b200", engine="sglang", gpus_per_replica=8, tensor_parallel=1
    )
    assert deployed.deployment.max_num_seqs == 32
    assert deployed.deployment.gpu_memory_utilization == 0.939


def test_sglang_activation_share_is_the_chunk_its_fraction_was_sized_for() -> None:
    # Qwen3-235B on 8 x B200, TP 4 -> attention DP 2 under SGLang. memory_hook.py sizes
    # mem_fraction_static for a chunk of max(16,384 / 2, 2,048) = 8,192 tokens x 1.5 MiB =
    # 12 GiB of activations; the activation share reported beside it must be the same
    # 12 GiB (it was 16,384 x 1.5 MiB = 24 GiB, which left a negative reserve).
    deployed = _deployed(
        "qwen3-235b-a22b", "b200", engine="sglang", gpus_per_replica=8, tensor_parallel=4
    )
    assert deployed.deployment.attention_dp == 2
    budget = memory_budget(deployed, 8192)
    assert budget.activation_bytes == 8192 * 1.5 * 2**20
    assert budget.reserved_bytes > 0


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        ("  non_torch_gib: 0.16", "  non_torch_gib: .inf"),
        ("  nccl_communicator_gib: 0.64", "  nccl_communicator_gib: -1"),
        ("  fused_moe_chunk_tokens: 16384", "  fused_moe_chunk_tokens: 0"),
        ("  fp8: 576", "  fp8: 0"),
        ("  gqa_tokens: 16", "  gqa_tokens: 1099511627776"),
    ],
)
def test_engine_profile_numbers_are_finite_and_bounded(
    tmp_path: Path, line: str, replacement: str
) -> None:
    from planner.engines import DEFAULT_ENGINE_DIR, profile_from_file
    from planner.errors import ConfigError

    text = (DEFAULT_ENGINE_DIR / "vllm.yaml").read_text()
    assert line in text.splitlines()
    path = tmp_path / "vllm.yaml"
    path.write_text(text.replace(line + "\n", replacement + "\n", 1))
    with pytest.raises(ConfigError, match="vllm.yaml"):
        profile_from_file(path)
