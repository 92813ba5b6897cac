"""Disaggregated prefill/decode sizing (planner.plan.disagg), checked by hand on a toy model.

Toy: one MHA layer of 8 heads x 64 (hidden 512) with a BF16 cache: K and V are
2 x 8 x 64 x 2 B = 2,048 B per token; a 1,024-token prompt holds 2,097,152 B on its one GPU.
"""

from __future__ import annotations

import math

import pytest

from planner.plan.deployed import Deployed
from planner.plan.disagg import (
    kv_transfer_s,
    link_bytes_per_s,
    size_decode_pool,
    size_prefill_pool,
)
from planner.plan.throughput import replica_times
from planner.schema import Deployment
from tests.plan.test_hand_derived import _toy_gpu, _toy_model

PROMPT = 1024
PROMPT_BYTES = 1024 * 2048


def _toy(gpus: int = 1) -> Deployed:
    return Deployed.build(
        _toy_model(),
        _toy_gpu(1.0, 0.0),
        Deployment(gpus_per_replica=gpus, step_overhead_ms=0),
    )


def test_kv_transfer_is_bytes_over_link_bandwidth():
    # The toy's scale-up link: 100 GB/s both directions, 50 GB/s one way, fraction 1.
    link = link_bytes_per_s(_toy(), same_scale_up_domain=True)
    assert link == 50e9
    assert kv_transfer_s(_toy(), _toy(), PROMPT, link) == pytest.approx(PROMPT_BYTES / 50e9)
    # Over a 25 GB/s network link: twice as long.
    assert kv_transfer_s(_toy(), _toy(), PROMPT, 25e9) == pytest.approx(PROMPT_BYTES / 25e9)


def test_prefill_pool_is_an_md1_queue_by_hand():
    # One prefill engine (the bottleneck of the split): each prompt takes D seconds alone;
    # at lambda requests/s the utilisation is rho = lambda D, the mean wait
    # rho D / (2 (1 - rho)) (Pollaczek-Khinchine) and, below one service time, the p-th
    # percentile wait x D with x = ln(p / (1 - rho)) / rho (Erlang).
    times = replica_times(_toy(), PROMPT, 64)
    service_s = times.prefill_s
    rate = 0.6 / service_s  # rho = 0.6
    transfer_s = 1e-6
    pool = size_prefill_pool(times, rate, transfer_s, ttft_slo_s=None, ttft_percentile=0.5)
    assert pool.replicas == 1 and pool.engines == 1
    assert pool.utilisation == pytest.approx(0.6)
    mean_wait = 0.6 * service_s / (2 * 0.4)
    assert pool.ttft_s == pytest.approx(service_s + mean_wait + transfer_s)
    x = math.log(0.5 / 0.4) / 0.6  # median wait in service times (rho rounded: exact here)
    assert pool.ttft_at_percentile_s == pytest.approx(service_s * (1 + x) + transfer_s, rel=1e-6)


def test_prefill_pool_grows_until_the_percentile_meets_the_slo():
    times = replica_times(_toy(), PROMPT, 64)
    service_s = times.prefill_s
    rate = 3.0 / service_s  # needs >= 4 engines at the 80% utilisation limit
    loose = size_prefill_pool(times, rate, 0.0)
    assert loose.replicas == 4
    tight = size_prefill_pool(times, rate, 0.0, ttft_slo_s=1.2 * service_s, ttft_percentile=0.99)
    assert tight.replicas > loose.replicas
    assert tight.ttft_at_percentile_s <= 1.2 * service_s


def test_decode_pool_has_no_prefill_interference():
    # Decode replicas never prefill: TPOT is the bare step time of the batch.
    times = replica_times(_toy(), PROMPT, 64)
    pool = size_decode_pool(times, 100.0, 0.05)
    step_s = float(times.curve.step_s[pool.batch - 1])
    assert pool.tpot_s == pytest.approx(step_s)
    # Little's law: the batch holds the requests in flight, rate x output x TPOT.
    assert pool.batch == math.ceil(pool.requests_per_s_per_replica * 64 * pool.tpot_s)
