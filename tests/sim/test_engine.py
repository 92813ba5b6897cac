"""Simulator behaviour: a hand-checkable timeline, overload, faults, invalidation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.schema import Scenario
from planner.sim.request import FINISHED, REJECT_QUEUE_TIMEOUT
from planner.sim.run import run_scenario

TOY_GPU = """
name: toy
display_name: toy accelerator for hand-checkable timelines
vendor: test
hbm_gib: 80
hbm_bandwidth_tb_per_s: 1000
compute: {bf16: {native: true, peak_tflop_per_s: 1.0e+6}}
interconnect: {name: none, bandwidth_gb_per_s: 1000}
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
STEP_S = 0.010  # step_overhead_ms 10
# The toy GPU sits at the profile maxima (1,000 TB/s, 10^6 TFLOP/s): a step's roofline
# terms add tens of ns to each 10 ms step (a 1,000-token prefill moves ~26 MB), under
# 1 us over a whole timeline.
TOL_S = 1e-6


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    gpus = tmp_path / "gpus"
    gpus.mkdir()
    (gpus / "toy.yaml").write_text(TOY_GPU)
    monkeypatch.setenv("KVPLAN_HARDWARE_DIR", str(gpus))
    (tmp_path / "config.json").write_text(json.dumps(TOY_CONFIG))
    return tmp_path


def toy_scenario(folder: Path, trace_rows: list[tuple[float, int, int]]) -> Scenario:
    trace = folder / "trace.csv"
    trace.write_text(
        "timestamp_s,input_tokens,output_tokens\n"
        + "".join(f"{t},{i},{o}\n" for t, i, o in trace_rows)
    )
    return Scenario.model_validate(
        {
            "name": "toy",
            "model": str(folder / "config.json"),
            "gpu": "toy",
            "deployment": {
                "gpus_per_replica": 1,
                "step_overhead_ms": STEP_S * 1e3,
                "max_batched_tokens": 1024,
            },
            "duration_s": 1.0,
            "drain_s": 1.0,
            "block_tokens": 16,
            "workload": {"trace": {"path": str(trace), "format": "csv"}},
        }
    )


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_hand_checkable_timeline(toy: Path, mode: str) -> None:
    # Every step takes 10 ms. A (1,000 prompt tokens, 11 output) arrives at 0, B (same)
    # at 5 ms. Step 1 [0, 10 ms]: prefill A (fits the 1,024-token budget) -> A's first
    # token at 10 ms: TTFT_A = 10 ms. B waits for the step boundary. Step 2 [10, 20 ms]:
    # decode A + prefill B (1 + 1,000 tokens) -> B's first token at 20 ms: TTFT_B = 15 ms.
    # Then both decode one token per step: A's tokens 2..11 end at 20..110 ms, B's at
    # 30..120 ms. TPOT = (finish - first token) / 10 = 10 ms for both.
    s = toy_scenario(toy, [(0.0, 1000, 11), (0.005, 1000, 11)])
    result = run_scenario(s, mode=mode)
    a, b = sorted(result.cluster.requests, key=lambda r: r.rid)
    assert a.first_token_s - a.arrival_s == pytest.approx(0.010, abs=TOL_S)
    assert b.first_token_s - b.arrival_s == pytest.approx(0.015, abs=TOL_S)
    assert a.finish_s == pytest.approx(0.110, abs=TOL_S)
    assert b.finish_s == pytest.approx(0.120, abs=TOL_S)
    assert result.summary["tpot_s"]["p50"] == pytest.approx(0.010, abs=TOL_S)
    assert result.summary["requests"] == {
        "arrived": 2,
        "finished": 2,
        "rejected": 0,
        "in_flight": 0,
        "in_flight_past_ttft_slo": 0,
        "in_flight_undecided": 0,
    }
    # 1 + 1 + 10 decode steps for A, one more for B's last token.
    assert result.summary["steps"] == 12


def test_chunked_prefill_timeline(toy: Path) -> None:
    # 2,500-token prompt with a 1,024-token budget: chunks of 1,024, 1,024 and 452 tokens
    # in three 10 ms steps -> first token at 30 ms; then 4 more tokens -> finish at 70 ms.
    s = toy_scenario(toy, [(0.0, 2500, 5)])
    result = run_scenario(s, mode="fast")
    (r,) = result.cluster.requests
    assert r.first_token_s == pytest.approx(0.030, abs=TOL_S)
    assert r.finish_s == pytest.approx(0.070, abs=TOL_S)


def _chat(**overrides: object) -> Scenario:
    doc = {
        "name": "t",
        "model": "deepseek-v4-flash",
        "gpu": "h200",
        "deployment": {"gpus_per_replica": 8},
        "replicas": 2,
        "duration_s": 20,
        "drain_s": 30,
        "seed": 5,
        "block_tokens": 256,
        "workload": {
            "arrival": {"kind": "poisson", "rate_per_s": 4},
            "classes": [
                {
                    "name": "chat",
                    "share": 1,
                    "input_tokens": {"kind": "lognormal", "mean": 2000, "sigma": 0.5},
                    "output_tokens": {"kind": "lognormal", "mean": 200, "sigma": 0.5},
                    "system_prompt_tokens": 4096,
                    "slo": {"ttft_s": 1, "tpot_s": 0.05},
                }
            ],
        },
    }
    doc.update(overrides)
    return Scenario.model_validate(doc)


def test_overload_rejects_with_reason_and_stays_bounded() -> None:
    # Llama-3.1-70B on 4 x H100 at 40 requests/s of 8K-token prompts is far beyond one
    # replica: the queue grows, requests time out after 2 s with a reason, and the queue
    # never holds more than what arrives within a timeout (40/s x ~2 s, with slack).
    s = Scenario.model_validate(
        yaml.safe_load("""
name: overload
model: llama-3.1-70b
gpu: h100-sxm
deployment: {gpus_per_replica: 4}
duration_s: 30
queue_timeout_s: 2
workload:
  arrival: {kind: poisson, rate_per_s: 40}
  classes:
    - name: long
      share: 1
      input_tokens: {kind: constant, value: 8192}
      output_tokens: {kind: constant, value: 256}
      slo: {ttft_s: 2, tpot_s: 0.1}
""")
    )
    result = run_scenario(s, mode="fast")
    summary = result.summary
    rejected = summary["requests"]["rejected"]
    assert rejected > 0
    assert summary["rejections_by_reason"] == {REJECT_QUEUE_TIMEOUT: rejected}
    queued = result.cluster.series.queued
    assert max(queued) > 20  # the queue really built up
    assert max(queued) <= 40 * 2.0 * 1.5
    req = summary["requests"]
    assert req["arrived"] == req["finished"] + req["rejected"] + req["in_flight"]
    assert summary["goodput"] < 0.5


def test_fault_reroutes_and_loses_nothing() -> None:
    s = _chat(faults=[{"replica": 0, "at_s": 5.0, "duration_s": 5.0}])
    result = run_scenario(s, mode="fast")
    requests = result.cluster.requests
    assert result.summary["reroutes"] > 0
    assert all(r.state == FINISHED for r in requests)  # drained: every request finished
    # Nothing finished on replica 0 while it was down.
    assert not any(r.replica == 0 and 5.0 < r.finish_s < 10.0 for r in requests)


def test_invalidation_empties_the_cache_then_rewarms() -> None:
    # The 4,096-token system prompt (16 blocks) is cached after the first request on each
    # replica; a cut-over at 10 s drops it, so the first request on each replica after 10 s
    # hits nothing. Blocks enter the cache when their request finishes, and only blocks
    # computed after the cut-over (a request still running at 10 s computed its blocks
    # under the old keys): once the first request after 10 s has finished on a replica,
    # later ones there hit again.
    result = run_scenario(_chat(prefix_cache={"invalidate_at_s": [10.0]}), mode="fast")
    admitted = sorted(
        (r for r in result.cluster.requests if r.admitted_once), key=lambda r: r.arrival_s
    )
    before = [r for r in admitted if 5.0 < r.arrival_s < 10.0]
    after = [r for r in admitted if r.arrival_s > 10.0]
    assert all(r.cached_tokens >= 4096 for r in before)
    first_after: dict[int, object] = {}
    for r in after:
        first_after.setdefault(r.replica, r)
    assert all(r.cached_tokens == 0 for r in first_after.values())  # type: ignore[attr-defined]
    rewarmed = [
        r
        for r in after
        if r.arrival_s > first_after[r.replica].finish_s  # type: ignore[attr-defined]
    ]
    assert len(rewarmed) >= 4
    assert all(r.cached_tokens >= 4096 for r in rewarmed)
    # Until then, nothing on that replica hits the invalidated prefix.
    cold = [r for r in after if r not in rewarmed]
    assert all(r.cached_tokens == 0 for r in cold)


def test_same_seed_same_result_different_seed_differs() -> None:
    a = run_scenario(_chat(), mode="fast").summary
    b = run_scenario(_chat(), mode="fast").summary
    c = run_scenario(_chat(seed=6), mode="fast").summary
    assert a["ttft_s"] == b["ttft_s"] and a["requests"] == b["requests"]
    assert a["ttft_s"] != c["ttft_s"]


def test_overloaded_run_without_timeouts_reports_low_goodput() -> None:
    # V4-Flash on one 4 x H200 replica at 40 requests/s of 4K-token prompts needs about
    # 160K prefill tokens/s, about twice what it can do; with a 60 s queue timeout nobody is
    # rejected in a 30 s run, so most requests are still queued at the end. They have
    # missed their 2 s TTFT SLO and must count against goodput (not be ignored).
    s = Scenario.model_validate(
        yaml.safe_load("""
name: overload-no-timeout
model: deepseek-v4-flash
gpu: h200
deployment: {gpus_per_replica: 4}
duration_s: 30
queue_timeout_s: 60
prefix_cache: {enabled: false}
workload:
  arrival: {kind: poisson, rate_per_s: 40}
  classes:
    - name: chat
      share: 1
      input_tokens: {kind: constant, value: 4000}
      output_tokens: {kind: constant, value: 300}
      slo: {ttft_s: 2, tpot_s: 0.1}
""")
    )
    summary = run_scenario(s, mode="fast").summary
    req = summary["requests"]
    assert req["rejected"] == 0 and req["in_flight"] > req["finished"]
    assert req["in_flight_past_ttft_slo"] > 0
    assert summary["goodput"] < 0.5
