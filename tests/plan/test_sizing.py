"""Replica sizing (planner.plan.throughput): the vectorised decode curve, the sequence cap
per attention-DP engine and the TTFT SLO at a percentile."""

from __future__ import annotations

import math

import pytest

from planner import load_model
from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.perf import decode_step
from planner.plan.throughput import decode_times_s, size_replicas
from planner.report.plan_report import plan_report
from planner.schema import Deployment


def _deployed(name: str, gpu: str, **layout: object) -> Deployed:
    return Deployed.build(load_model(name), load_gpu(gpu), Deployment.model_validate(layout))


@pytest.mark.parametrize(
    ("name", "gpu", "layout"),
    [
        ("deepseek-v3.2", "h200", {"tensor_parallel": 1}),
        ("deepseek-v4-flash", "h200", {"mtp": True}),
        ("llama-3.1-70b", "h100-sxm", {"gpus_per_replica": 4}),
    ],
)
def test_vectorised_decode_times_equal_decode_step(name, gpu, layout):
    deployed = _deployed(name, gpu, **layout)
    batches = [1, 7, 64, 300]
    times = decode_times_s(deployed, batches, 8192)
    for batch, t in zip(batches, times, strict=True):
        assert t == pytest.approx(float(decode_step(deployed, batch, 8192).time_s), rel=1e-12)


def test_max_num_seqs_applies_per_attention_dp_engine():
    # 8 GPUs at TP 1 are 8 engines of max_num_seqs 4 each: the default batch is 4 x 8 = 32
    # (the KV pool of V3.2 on H200 holds hundreds of 8K sequences).
    deployed = _deployed("deepseek-v3.2", "h200", tensor_parallel=1, max_num_seqs=4)
    report = plan_report(deployed, 8192)
    assert report["max_concurrent_sequences"] > 32
    assert report["decode"]["batch"] == 32


def test_ttft_slo_adds_replicas_until_the_percentile_meets_it():
    deployed = _deployed("deepseek-v4-flash", "h200")
    loose = size_replicas(deployed, 14, 8192, 1000, 0.05)
    # The prefill of one 8K prompt alone, and an SLO of 1.3 times it at p90.
    prefill_s = loose.prefill_s
    slo_s = 1.3 * prefill_s
    tight = size_replicas(deployed, 14, 8192, 1000, 0.05, ttft_slo_s=slo_s, ttft_percentile=0.9)
    assert tight.replicas > loose.replicas
    assert tight.ttft_at_percentile_s <= slo_s
    # By hand (Erlang's M/D/1 formula, below one service time): P(W <= x D) =
    # (1 - rho) e^{rho x}; the p90 wait is x = ln(0.9 / (1 - rho)) / rho prefill times when
    # 1 - rho < 0.9 (else no wait). Utilisation rho = rate per replica x prefill time (one
    # attention-DP group per replica here).
    rho = 14 / tight.replicas * prefill_s
    assert rho == pytest.approx(tight.prefill_utilisation)
    # The planner rounds rho up to the next 0.001 before solving the queue (conservative).
    rho_up = math.ceil(rho * 1000) / 1000
    x = max(0.0, math.log(0.9 / (1 - rho_up)) / rho_up)
    assert tight.ttft_at_percentile_s == pytest.approx(prefill_s * (1 + x), rel=1e-6)
    # One replica fewer misses the SLO.
    rho_fewer = 14 / (tight.replicas - 1) * prefill_s
    x_fewer = math.log(0.9 / (1 - rho_fewer)) / rho_fewer
    assert prefill_s * (1 + x_fewer) > slo_s


def test_ttft_slo_below_one_prefill_is_one_clear_error():
    deployed = _deployed("deepseek-v3.2", "h200", tensor_parallel=1)
    with pytest.raises(KvplanError, match=r"ttft_slo_s.*one prompt alone takes"):
        size_replicas(deployed, 20, 32_768, 1024, 0.05, ttft_slo_s=0.5)
