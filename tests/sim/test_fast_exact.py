"""fast mode == exact mode: same seed, same per-request outcomes, same metrics.

The scenarios are small but exercise everything that can end or cut a fast-mode jump:
preemption under KV pressure, queue timeouts, a host cache tier, a cache invalidation, a
replica fault with re-routing, multi-turn sessions, and all three routers.
"""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.schema import Scenario
from planner.sim.run import run_scenario

REL_TOL = 1e-9  # sums of the same step times in a different association


def scenario(
    seed: int, rate: float, router: str, faults: bool, invalidate: bool, host: bool, sessions: bool
) -> Scenario:
    doc = {
        "name": "fast-vs-exact",
        "model": "llama-3.1-70b",
        "gpu": "h100-sxm",
        # A small KV pool (utilisation 0.62) so long prompts force preemptions.
        "deployment": {"gpus_per_replica": 4, "gpu_memory_utilization": 0.62, "max_num_seqs": 32},
        "replicas": 3,
        "router": router,
        "duration_s": 20,
        "drain_s": 10,
        "seed": seed,
        "queue_timeout_s": 5,
        "block_tokens": 256,
        "prefix_cache": {"invalidate_at_s": [8.0] if invalidate else []},
        "faults": [{"replica": 1, "at_s": 6.0, "duration_s": 5.0}] if faults else [],
        "workload": {
            "arrival": {"kind": "gamma", "rate_per_s": rate, "cv": 2.0},
            "classes": [
                {
                    "name": "chat",
                    "share": 2,
                    "input_tokens": {"kind": "lognormal", "mean": 6000, "sigma": 1.0, "max": 60000},
                    "output_tokens": {"kind": "lognormal", "mean": 150, "sigma": 0.8, "max": 1500},
                    "system_prompt_tokens": 2048,
                    "system_prompt_variants": 3,
                    "reasoning_mode": "think-high",
                    "slo": {"ttft_s": 2, "tpot_s": 0.05},
                }
            ],
        },
    }
    if host:
        doc["prefix_cache"]["host_tier"] = {"capacity_gib": 20, "bandwidth_gb_per_s": 20}
    if sessions:
        doc["workload"]["classes"].append(
            {
                "name": "agent",
                "share": 1,
                "input_tokens": {"kind": "lognormal", "mean": 2000, "sigma": 0.5},
                "output_tokens": {"kind": "constant", "value": 80},
                "session": {
                    "turns": {"kind": "constant", "value": 3},
                    "think_time_s": {"kind": "constant", "value": 1},
                    "new_user_tokens": {"kind": "constant", "value": 400},
                    "keep_reasoning": True,
                },
                "slo": {"ttft_s": 2, "tpot_s": 0.05},
            }
        )
    return Scenario.model_validate(doc)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def assert_same(s: Scenario) -> None:
    exact = run_scenario(s, mode="exact")
    fast = run_scenario(s, mode="fast")
    a = sorted(exact.cluster.requests, key=lambda r: r.rid)
    b = sorted(fast.cluster.requests, key=lambda r: r.rid)
    assert [r.rid for r in a] == [r.rid for r in b]
    for x, y in zip(a, b, strict=True):
        assert (
            x.state,
            x.reject_reason,
            x.replica,
            x.generated,
            x.preemptions,
            x.reroutes,
            x.cached_tokens,
        ) == (
            y.state,
            y.reject_reason,
            y.replica,
            y.generated,
            y.preemptions,
            y.reroutes,
            y.cached_tokens,
        ), x.rid
        assert _close(x.first_token_s, y.first_token_s), x.rid
        assert _close(x.finish_s, y.finish_s), x.rid
    for key in ("requests", "preemptions", "rejections_by_reason", "reroutes"):
        assert exact.summary[key] == fast.summary[key]
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        for p, value in exact.summary[key].items():
            assert value is None or _close(value, fast.summary[key][p])
    assert _close(exact.summary["prefix_hit_ratio"], fast.summary["prefix_hit_ratio"])
    assert exact.cluster.series.queued == fast.cluster.series.queued
    assert all(
        _close(u, v)
        for u, v in zip(
            exact.cluster.series.kv_utilization, fast.cluster.series.kv_utilization, strict=True
        )
    )
    # fast mode really did jump: fewer scheduler events for the same steps
    assert fast.summary["steps"] == exact.summary["steps"]
    assert fast.summary["scheduler_events"] <= exact.summary["scheduler_events"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rate=st.sampled_from([1.0, 3.0, 8.0]),
    router=st.sampled_from(
        ["round_robin", "least_outstanding_tokens", "prefix_affinity", "cache_aware"]
    ),
    faults=st.booleans(),
    invalidate=st.booleans(),
    host=st.booleans(),
    sessions=st.booleans(),
)
def test_fast_equals_exact(seed, rate, router, faults, invalidate, host, sessions):
    assert_same(scenario(seed, rate, router, faults, invalidate, host, sessions))


def test_fast_equals_exact_everything_on_under_overload():
    # Rate 8/s of ~6K-token prompts on three small replicas: preemptions and timeouts.
    s = scenario(3, 8.0, "least_outstanding_tokens", True, True, True, True)
    exact = run_scenario(s, mode="exact")
    assert exact.summary["preemptions"] > 0
    assert exact.summary["rejections_by_reason"].get("queue_timeout", 0) > 0
    assert exact.summary["reroutes"] > 0
    assert_same(s)


@pytest.mark.parametrize("name", ["chat-shared-prompt", "bursty-mixed-reasoning"])
def test_example_scenarios_fast_equals_exact(name):
    from pathlib import Path

    from planner.sim.run import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.yaml"
    s = load_scenario(path)
    short = s.model_copy(update={"duration_s": min(s.duration_s, 30.0), "drain_s": 10.0})
    assert_same(short)

    # Bit for bit, too: a jump's end times are the same sequential sums of the same step
    # times as exact mode's clock (a cut may move SimPy's clock by an ulp, hence the
    # tolerance above; these runs have none that does).
    def times(mode: str) -> list[tuple[int, str, str]]:
        # repr is the shortest string that reads back as the same double (nan included)
        requests = run_scenario(short, mode=mode).cluster.requests
        return [(r.rid, repr(r.first_token_s), repr(r.finish_s)) for r in requests]

    assert times("fast") == times("exact")


def test_yaml_round_trip_of_test_scenario():
    s = scenario(1, 3.0, "round_robin", True, True, True, True)
    doc = s.model_dump(exclude_unset=True)
    assert Scenario.model_validate(yaml.safe_load(yaml.safe_dump(doc))) == s
