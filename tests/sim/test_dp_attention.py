"""Data-parallel attention in the simulator: each DP group of a replica is its own engine
(own KV pool, queue and token budget), timed as if every busy group ran the same load."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import max_concurrent_sequences
from planner.plan.prefill import prefill_time_s
from planner.schema import Deployment, Scenario
from planner.sim.request import REJECT_TOO_LONG_FOR_KV
from planner.sim.run import run_scenario
from tests.sim.test_fast_exact import assert_same


def _single_request(
    tmp_path: Path, model: str, gpu: str, tp: int, prompt: int, gpus: int = 8
) -> Scenario:
    trace = tmp_path / "one.csv"
    trace.write_text(f"timestamp_s,input_tokens,output_tokens\n0,{prompt},20\n")
    return Scenario.model_validate(
        {
            "name": "dp",
            "model": model,
            "gpu": gpu,
            "deployment": {"gpus_per_replica": gpus, "tensor_parallel": tp},
            "duration_s": 1,
            "drain_s": 120,
            "block_tokens": 64,
            "workload": {"trace": {"path": str(trace), "format": "csv"}},
        }
    )


@pytest.mark.parametrize(("tp", "prompt"), [(8, 131_072), (1, 131_072), (1, 32_768)])
def test_single_prompt_ttft_matches_the_plan(tmp_path, tp, prompt):
    # One 128K- (or 32K-) token prompt on V3.2, 8 x H200: the simulator's TTFT is the plan layer's
    # chunked prefill time on an idle replica, with plain TP 8 and with DP attention (TP 1,
    # 8 groups: the prompt's group prefills while the 7 others idle, so its experts see one
    # group's tokens, in the plan and in the simulator). The plan charges the LM head on
    # every chunk, the simulator only on the last: <0.5% apart.
    deployed = Deployed.build(
        load_model("deepseek-v3.2"),
        load_gpu("h200"),
        Deployment(gpus_per_replica=8, tensor_parallel=tp),
    )
    expected = prefill_time_s(deployed, prompt)
    result = run_scenario(_single_request(tmp_path, "deepseek-v3.2", "h200", tp, prompt))
    (r,) = result.cluster.requests
    assert r.first_token_s - r.arrival_s == pytest.approx(expected, rel=0.005)


def test_a_sequence_must_fit_one_group(tmp_path):
    # Llama-3.1-70B on 8 x H20 with TP 2 (4 DP groups): each GPU's KV pool holds about
    # 113K tokens of a sequence (half the KV heads per rank), so one 125K-token prompt fits
    # no group, though it would fit the four groups' pools added together. The plan says
    # it does not fit; the simulator must not serve it either.
    deployed = Deployed.build(
        load_model("llama-3.1-70b"),
        load_gpu("h20"),
        Deployment(gpus_per_replica=8, tensor_parallel=2),
    )
    assert int(max_concurrent_sequences(deployed, 125_020)) == 0
    assert int(max_concurrent_sequences(deployed, 100_000)) >= 4  # while shorter ones fit
    result = run_scenario(_single_request(tmp_path, "llama-3.1-70b", "h20", 2, 125_000))
    (r,) = result.cluster.requests
    assert r.reject_reason == REJECT_TOO_LONG_FOR_KV


def test_fast_equals_exact_with_dp_attention_faults_and_overload():
    s = Scenario.model_validate(
        {
            "name": "dp-stress",
            "model": "deepseek-v4-flash",
            "gpu": "h200",
            "deployment": {
                "gpus_per_replica": 8,
                "tensor_parallel": 2,
                "max_num_seqs": 32,
                "gpu_memory_utilization": 0.5,
            },
            "replicas": 2,
            "router": "prefix_affinity",
            "duration_s": 20,
            "drain_s": 10,
            "seed": 9,
            "queue_timeout_s": 5,
            "block_tokens": 256,
            "prefix_cache": {"invalidate_at_s": [8.0]},
            "faults": [{"replica": 1, "at_s": 6.0, "duration_s": 4.0}],
            "workload": {
                "arrival": {"kind": "gamma", "rate_per_s": 20, "cv": 2.0},
                "classes": [
                    {
                        "name": "long",
                        "share": 1,
                        "input_tokens": {
                            "kind": "lognormal",
                            "mean": 30000,
                            "sigma": 1.0,
                            "max": 200000,
                        },
                        "output_tokens": {"kind": "lognormal", "mean": 300, "sigma": 0.8},
                        "system_prompt_tokens": 4096,
                        "reasoning_mode": "think-high",
                        "slo": {"ttft_s": 3, "tpot_s": 0.05},
                    }
                ],
            },
        }
    )
    summary = run_scenario(s, mode="exact").summary
    assert summary["reroutes"] > 0
    assert_same(s)
