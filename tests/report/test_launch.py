"""Launch commands parse against the engine flags verified in planner/data/launch_flags.yaml
(each with the engine source it was read from), and carry the planned layout."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest
import yaml

from planner.errors import KvplanError
from planner.report.launch import launch_commands
from planner.schema import Deployment

FLAGS_FILE = Path(__file__).resolve().parents[2] / "planner" / "data" / "launch_flags.yaml"
VERIFIED = yaml.safe_load(FLAGS_FILE.read_text())["engines"]
POSITIONAL_MODEL = {"vllm": True, "sglang": False, "trtllm": True}


def _parser(engine: str) -> argparse.ArgumentParser:
    """An argparse parser that knows only the verified flags of one engine."""
    p = argparse.ArgumentParser(prog=VERIFIED[engine]["program"], exit_on_error=False)
    if POSITIONAL_MODEL[engine]:
        p.add_argument("model")
    for name, spec in VERIFIED[engine]["flags"].items():
        assert spec["source"].strip(), name
        if spec["takes_value"]:
            p.add_argument(name)
        else:
            p.add_argument(name, action="store_true")
    return p


def _parse(engine: str, argv: tuple[str, ...]) -> argparse.Namespace:
    program = shlex.split(VERIFIED[engine]["program"])
    assert list(argv[: len(program)]) == program
    return _parser(engine).parse_args(list(argv[len(program) :]))


def _deployment(**fields: object) -> Deployment:
    return Deployment.model_validate(fields)


LAYOUTS = [
    {"gpus_per_replica": 8, "tensor_parallel": 8},
    {"gpus_per_replica": 8, "tensor_parallel": 1, "mtp": True},
    {"gpus_per_replica": 32, "tensor_parallel": 1, "kv_dtype": "fp8", "eplb": True},
    {"gpus_per_replica": 16, "tensor_parallel": 2, "mtp": True, "overlap_micro_batches": True},
    {"gpus_per_replica": 16, "tensor_parallel": 1, "moe_dispatch": "all_to_all"},
]
# vLLM's DeepEP backends per pool (docs/serving/expert_parallel_deployment.md: low-latency
# kernels for decode, high-throughput for prefill-dominated work).
VLLM_DEEPEP = {
    "replica": "deepep_high_throughput",
    "prefill": "deepep_high_throughput",
    "decode": "deepep_low_latency",
}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("role", ["replica", "prefill", "decode"])
def test_commands_parse_against_verified_flags(engine, layout, role):
    d = _deployment(engine=engine, max_num_seqs=64, max_batched_tokens=8192, **layout)
    commands = launch_commands("deepseek-v3", d, role, moe=True, prefix_caching=True)
    assert len(commands) == -(-d.gpus_per_replica // 8)  # one per node of 8 GPUs
    for c in commands:
        args = _parse(engine, c.argv)
        if engine == "vllm":
            assert int(args.tensor_parallel_size) == d.tp
            assert args.enable_expert_parallel
            assert args.enable_dbo == d.overlap_micro_batches
            assert args.enable_eplb == d.eplb
            deepep = d.moe_dispatch == "all_to_all"
            assert args.all2all_backend == (VLLM_DEEPEP[role] if deepep else None)
            assert int(args.max_num_seqs) == 64  # vLLM: per data-parallel rank
            if d.attention_dp > 1:
                assert int(args.data_parallel_size) == d.attention_dp
            if d.mtp:
                spec = json.loads(args.speculative_config)
                assert spec == {"method": "deepseek_mtp", "num_speculative_tokens": 1}
            if role != "replica":
                config = json.loads(args.kv_transfer_config)
                assert config["kv_role"] == ("kv_producer" if role == "prefill" else "kv_consumer")
        else:
            assert int(args.tp_size) == d.gpus_per_replica
            assert int(args.ep_size) == d.gpus_per_replica
            # SGLang divides --max-running-requests among its DP attention workers.
            assert int(args.max_running_requests) == 64 * d.attention_dp
            assert bool(args.enable_dp_attention) == (d.attention_dp > 1)
            assert args.enable_two_batch_overlap == d.overlap_micro_batches
            assert args.enable_eplb == d.eplb
            deepep = d.moe_dispatch == "all_to_all"
            assert args.moe_a2a_backend == ("deepep" if deepep else None)
            if role != "replica":
                assert args.disaggregation_mode == role


def test_vllm_multi_node_data_parallel():
    # 32 GPUs at TP 1: 32 DP ranks, 8 per node; nodes 2-4 are headless from rank 8, 16, 24.
    d = _deployment(gpus_per_replica=32, tensor_parallel=1)
    commands = launch_commands("deepseek-v3", d, moe=True)
    parsed = [_parse("vllm", c.argv) for c in commands]
    assert [p.headless for p in parsed] == [False, True, True, True]
    assert [p.data_parallel_start_rank for p in parsed] == [None, "8", "16", "24"]
    assert {p.data_parallel_size_local for p in parsed} == {"8"}
    assert "$HEAD_IP" in commands[0].text  # left for the shell to expand


def test_trtllm_command_and_config():
    d = _deployment(engine="trtllm", gpus_per_replica=8, tensor_parallel=1, mtp=True)
    (command,) = launch_commands("deepseek-v3", d, moe=True)
    args = _parse("trtllm", command.argv)
    assert args.model == "deepseek-ai/DeepSeek-V3"
    assert args.tp_size == "8" and args.ep_size == "8"
    config = yaml.safe_load(command.files[args.config])
    assert config["enable_attention_dp"] is True
    assert config["speculative_config"]["decoding_type"] == "MTP"
    # Attention TP between 1 and the GPU count has no TensorRT-LLM equivalent.
    with pytest.raises(KvplanError, match="attention TP 1 only"):
        launch_commands("deepseek-v3", _deployment(engine="trtllm", tensor_parallel=2), moe=True)
