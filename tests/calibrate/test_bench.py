"""Serving-benchmark results: the documented fields of vLLM's and AIPerf's JSON, refused
when the run's batch is unknown, and the step-time correction recovering a known scale
and overhead from synthetic runs."""

from __future__ import annotations

import pytest

from planner.calibrate.bench import BenchRun, RunCheck, fit_correction, run_from_data
from planner.errors import ConfigError

# Field names of vllm/benchmarks/serve.py's result JSON (vllm bench serve --save-result).
VLLM_RESULT = {
    "date": "20261125-120000",
    "backend": "vllm",
    "max_concurrency": 32,
    "request_rate": "inf",
    "duration": 100.0,
    "completed": 200,
    "total_input_tokens": 200 * 1024,
    "total_output_tokens": 200 * 512,
    "request_throughput": 2.0,
    "mean_ttft_ms": 250.0,
    "mean_tpot_ms": 30.0,
    "median_tpot_ms": 29.0,
}


def test_vllm_result_fields() -> None:
    run = run_from_data(VLLM_RESULT, "r.json")
    assert run.concurrency == 32
    assert run.mean_input_tokens == 1024 and run.mean_output_tokens == 512
    assert run.tpot_s == pytest.approx(0.030) and run.ttft_s == pytest.approx(0.250)


def test_open_loop_run_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        run_from_data({**VLLM_RESULT, "max_concurrency": None}, "r.json")


def test_aiperf_export_fields() -> None:
    # docs.nvidia.com/aiperf "profile_export_aiperf.json Schema": one stats block a metric.
    data = {
        "inter_token_latency": {"unit": "ms", "avg": 12.5, "p50": 12.0},
        "time_to_first_token": {"unit": "ms", "avg": 80.0},
        "input_sequence_length": {"unit": "tokens", "avg": 2000.0},
        "output_sequence_length": {"unit": "tokens", "avg": 300.0},
        "request_count": {"unit": "requests", "avg": 100},
        "input_config": {"loadgen": {"concurrency": 16}},
    }
    run = run_from_data(data, "p.json")
    assert (run.concurrency, run.tpot_s, run.mean_input_tokens) == (16, 0.0125, 2000.0)
    with pytest.raises(ConfigError, match="unit"):
        run_from_data({**data, "inter_token_latency": {"unit": "s", "avg": 1.0}}, "p.json")


def test_foreign_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a serving-benchmark result"):
        run_from_data({"results": []}, "x.json")


def _check(batch: int, kernel_s: float, measured_s: float) -> RunCheck:
    run = BenchRun("r", "synthetic", batch, 1000.0, 200.0, measured_s, None, 10)
    return RunCheck(run, batch, 1100, kernel_s, 0.0, measured_s)


def test_correction_recovers_a_known_scale_and_overhead() -> None:
    # Measured = 1.25 x kvplan's kernel time + 2 ms per step, at four batches.
    kernels = {1: 0.010, 8: 0.012, 64: 0.020, 256: 0.045}
    checks = [_check(b, k, 1.25 * k + 0.002) for b, k in kernels.items()]
    corr = fit_correction(checks)
    assert corr.scale == pytest.approx(1.25, rel=1e-3)
    assert corr.overhead_s == pytest.approx(0.002, rel=1e-2)
    # Before: predicted = kernel, so |k / (1.25 k + 0.002) - 1| per run; the median of four.
    before = sorted(abs(k / (1.25 * k + 0.002) - 1) for k in kernels.values())
    assert corr.err_before == pytest.approx((before[1] + before[2]) / 2)
    assert corr.err_after < 1e-3
    assert "leave-one-out" in corr.method


def test_one_batch_gives_a_scale_only_in_sample() -> None:
    corr = fit_correction([_check(32, 0.010, 0.013)])
    assert corr.scale == pytest.approx(1.3) and corr.overhead_s == 0.0
    assert "in-sample" in corr.method and "scale only" in corr.method
