"""Disaggregated prefill/decode in the simulator, checked by hand on a toy accelerator:
the KV transfer is bytes over the link, and a prefill pool that is the bottleneck queues
prompts like an M/D/1 queue (Pollaczek-Khinchine mean, Erlang's median) and an M/D/c one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.disagg import kv_transfer_s, size_prefill_pool
from planner.plan.prefill import prefill_time_s
from planner.plan.throughput import replica_times
from planner.schema import Deployment, Scenario
from planner.sim.run import run_scenario

# A toy accelerator whose steps are the 10 ms host overhead (roofline terms are ns), with
# an 8-GPU scale-up domain (1,000 GB/s both ways: 500 GB/s one way) and 1 GB/s per GPU
# across nodes.
TOY_GPU = """
name: toy
display_name: toy accelerator
vendor: test
hbm_gib: 80
hbm_bandwidth_tb_per_s: 1000
compute: {bf16: {native: true, peak_tflop_per_s: 1.0e+6}}
interconnect: {name: none, bandwidth_gb_per_s: 1000, scale_up_domain_gpus: 8,
               scale_out_gb_per_s: 1}
power_watts: 1
price: {default_usd_per_gpu_hour: 1, low_usd_per_gpu_hour: 1, high_usd_per_gpu_hour: 1,
        as_of: test}
efficiency: {bandwidth_fraction: 1, flops_fraction: 1, kernel_overhead_us: 0,
             kernel_overhead_no_graphs_us: 0, interconnect_fraction: 1,
             collective_latency_us: 0}
sources: {vendor: test, hbm_gib: test, hbm_bandwidth_tb_per_s: test, compute: test,
          interconnect: test, power_watts: test, price: test, efficiency: test}
"""
TOY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 1,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
}
PROMPT = 1024  # = the token budget: every prompt is one prefill step, served alone
DEPLOYMENT = {"gpus_per_replica": 1, "step_overhead_ms": 10, "max_batched_tokens": PROMPT}


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    gpus = tmp_path / "gpus"
    gpus.mkdir()
    (gpus / "toy.yaml").write_text(TOY_GPU)
    monkeypatch.setenv("KVPLAN_HARDWARE_DIR", str(gpus))
    (tmp_path / "config.json").write_text(json.dumps(TOY_CONFIG))
    return tmp_path


def _deployed(folder: Path) -> Deployed:
    return Deployed.build(
        resolve_model(str(folder / "config.json")),
        load_gpu("toy"),
        Deployment.model_validate(DEPLOYMENT),
    )


def _scenario(
    folder: Path, prefill: int, decode: int, workload: dict[str, object], **kw: object
) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "pd",
            "model": str(folder / "config.json"),
            "gpu": "toy",
            "block_tokens": 16,
            "prefix_cache": {"enabled": False},
            "disaggregation": {
                "prefill": {"replicas": prefill, "deployment": DEPLOYMENT},
                "decode": {"replicas": decode, "deployment": DEPLOYMENT},
            },
            "workload": workload,
            **kw,
        }
    )


def _trace(folder: Path, rows: list[tuple[float, int, int]]) -> dict[str, object]:
    path = folder / "trace.csv"
    path.write_text(
        "timestamp_s,input_tokens,output_tokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows)
    )
    return {"trace": {"path": str(path), "format": "csv"}}


def test_kv_transfer_is_bytes_over_the_network(toy: Path):
    # 1 prefill + 8 decode GPUs exceed the 8-GPU domain: the cache crosses the 1 GB/s
    # network. 1,024 tokens x 2 x 8 heads x 64 x 2 B = 2,097,152 B -> 2.097152 ms.
    s = _scenario(toy, 1, 8, _trace(toy, [(0.0, PROMPT, 3)]), duration_s=1, drain_s=1)
    result = run_scenario(s)
    (r,) = result.cluster.requests
    prefill_s = prefill_time_s(_deployed(toy), PROMPT)
    transfer_s = 1024 * 2 * 8 * 64 * 2 / 1e9
    assert kv_transfer_s(_deployed(toy), _deployed(toy), PROMPT, 1e9) == pytest.approx(transfer_s)
    assert r.first_token_s - r.arrival_s == pytest.approx(prefill_s + transfer_s, rel=1e-9)
    # Then two decode steps of 10 ms for the remaining two tokens.
    assert r.state == "finished"
    assert r.finish_s - r.first_token_s == pytest.approx(0.020, rel=1e-3)


def _poisson(rate: float, duration_s: float, seed: int) -> dict[str, object]:
    return {
        "arrival": {"kind": "poisson", "rate_per_s": rate},
        "classes": [
            {
                "name": "c",
                "share": 1,
                "input_tokens": {"kind": "constant", "value": PROMPT},
                "output_tokens": {"kind": "constant", "value": 2},
                "slo": {"ttft_s": 10, "tpot_s": 1},
            }
        ],
    }


def _waits(toy: Path, prefill: int, rho: float) -> tuple[np.ndarray, float]:
    """Simulated waits in the prefill queue (in service times) at utilisation rho."""
    service_s = prefill_time_s(_deployed(toy), PROMPT)
    rate = rho * prefill / service_s
    duration = 6000 / rate
    s = _scenario(
        toy, prefill, 4, _poisson(rate, duration, 3), duration_s=duration, drain_s=5, seed=3
    )
    result = run_scenario(s)
    link = 500e9  # 1 + ... GPUs within the domain: NVLink one way
    transfer_s = kv_transfer_s(_deployed(toy), _deployed(toy), PROMPT, link)
    done = [
        r for r in result.cluster.requests if r.arrival_s > duration / 5 and r.state == "finished"
    ]
    waits = np.array([r.first_token_s - r.arrival_s - service_s - transfer_s for r in done])
    return waits / service_s, service_s


def test_bottleneck_prefill_pool_is_an_md1_queue(toy: Path):
    # One prefill engine at rho = 0.7; the decode pool has room to spare. By hand:
    # mean wait rho / (2 (1 - rho)) = 1.1667 service times (Pollaczek-Khinchine);
    # median: (1 - rho) e^{rho x} = 0.5 -> x = ln(0.5 / 0.3) / 0.7 = 0.7297 (Erlang).
    waits, _ = _waits(toy, 1, 0.7)
    assert float(np.mean(waits)) == pytest.approx(0.7 / (2 * 0.3), rel=0.12)
    assert float(np.median(waits)) == pytest.approx(math.log(0.5 / 0.3) / 0.7, rel=0.12)
    assert float(np.mean(waits < 1e-6)) == pytest.approx(0.3, abs=0.04)  # P(no wait) = 1 - rho


def test_bottleneck_prefill_pool_of_two_is_the_planners_mdc_queue(toy: Path):
    # Two prefill engines fed from one queue at rho = 0.8: the planner's M/D/2 mean and
    # p90 (Crommelin; checked against an independent simulation in tests/plan).
    waits, service_s = _waits(toy, 2, 0.8)
    times = replica_times(_deployed(toy), PROMPT, 2)
    rate = 0.8 * 2 / service_s
    pool = size_prefill_pool(times, rate, 0.0, None, 0.9, min_replicas=2)
    assert pool.engines == 2
    assert float(np.mean(waits)) * service_s == pytest.approx(pool.ttft_s - service_s, rel=0.15)
    p90 = float(np.quantile(waits, 0.9)) * service_s
    assert p90 == pytest.approx(pool.ttft_at_percentile_s - service_s, rel=0.15)


@pytest.mark.parametrize("prefill", [1, 2])
def test_fast_equals_exact_disaggregated(toy: Path, prefill: int):
    rows = [(0.003 * i, 300 + 91 * i, 5 + 3 * i) for i in range(15)]
    s = _scenario(toy, prefill, 2, _trace(toy, rows), duration_s=1, drain_s=2)
    fast, exact = run_scenario(s, mode="fast"), run_scenario(s, mode="exact")
    key = [(r.rid, r.first_token_s, r.finish_s) for r in fast.cluster.requests]
    assert key == [(r.rid, r.first_token_s, r.finish_s) for r in exact.cluster.requests]
    assert fast.summary["requests"]["finished"] == 15


def test_disaggregation_refuses_top_level_layout(toy: Path):
    with pytest.raises(ValueError, match="per pool"):
        _scenario(toy, 1, 1, _trace(toy, [(0.0, 10, 2)]), duration_s=1, replicas=2)
