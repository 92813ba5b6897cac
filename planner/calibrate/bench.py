"""Serving-benchmark results against kvplan's step times, and a per-deployment correction.

Formats read (one run per file):
- vLLM's ``vllm bench serve --save-result`` / ``benchmarks/benchmark_serving.py`` JSON
  (vllm/benchmarks/serve.py): ``completed``, ``total_input_tokens``,
  ``total_output_tokens``, ``max_concurrency``, ``mean_tpot_ms``, ``median_tpot_ms``,
  ``mean_ttft_ms``, ``request_throughput``, ``duration``;
- NVIDIA AIPerf's ``profile_export_aiperf.json`` (docs.nvidia.com/aiperf, "JSON Export
  Schema": one stats block per metric, ``avg`` / ``p50`` with a ``unit``):
  ``inter_token_latency``, ``time_to_first_token``, ``input_sequence_length``,
  ``output_sequence_length``, ``request_count``; the concurrency from its
  ``input_config.loadgen.concurrency``.
GuideLLM's reports are not read (their per-benchmark layout changed between releases).

Model: a closed-loop run at concurrency C keeps about C requests in flight, nearly all
decoding when outputs are long, so its time per output token is one decode step of
batch C at the mean context (prompt + half the output) plus the host overhead per step.
kvplan predicts that step (``planner.plan.perf.decode_step``, split into kernel time K
and its step overhead h); the correction fits measured = s x K + o over the runs
(``step_time_scale`` = s, ``step_overhead_ms`` = o), by least squares on relative error.
With three runs or more the error after the correction is judged leave-one-out (each run
predicted by a fit that did not see it); with fewer, in-sample, and the output says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from planner.errors import ConfigError
from planner.io import read_document
from planner.plan.deployed import Deployed
from planner.plan.perf import decode_step, step_model

LEAVE_ONE_OUT_FROM = 3
MIN_SCALE, MAX_SCALE = 0.1, 10.0
MAX_OVERHEAD_S = 1.0


@dataclass(frozen=True)
class BenchRun:
    """One benchmark run, reduced to what the correction needs."""

    source: str
    format: str
    concurrency: int
    mean_input_tokens: float
    mean_output_tokens: float
    tpot_s: float  # mean time per output token after the first
    ttft_s: float | None
    completed: int


def _positive(data: dict[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError("missing or not a number", where=where, field=key, value=value)
    if value <= 0:
        raise ConfigError("must be positive", where=where, field=key, value=value)
    return float(value)


def _whole(data: dict[str, Any], key: str, where: str) -> int:
    """A positive whole number (requests, concurrency): 0.5 is not rounded to 0 or 1."""
    value = _positive(data, key, where)
    if not value.is_integer():
        raise ConfigError("must be a whole number", where=where, field=key, value=value)
    return int(value)


def _vllm_run(data: dict[str, Any], where: str) -> BenchRun:
    completed = _whole(data, "completed", where)
    concurrency = data.get("max_concurrency")
    if concurrency is None:
        raise ConfigError(
            "the run has no max_concurrency (an open-loop --request-rate run): its batch "
            "is not known; run vllm bench serve with --max-concurrency",
            where=where,
            field="max_concurrency",
        )
    return BenchRun(
        source=where,
        format="vllm bench serve",
        concurrency=_whole(data, "max_concurrency", where),
        mean_input_tokens=_positive(data, "total_input_tokens", where) / completed,
        mean_output_tokens=_positive(data, "total_output_tokens", where) / completed,
        tpot_s=_positive(data, "mean_tpot_ms", where) / 1e3,
        ttft_s=_positive(data, "mean_ttft_ms", where) / 1e3
        if data.get("mean_ttft_ms") is not None
        else None,
        completed=completed,
    )


def _aiperf_stat(data: dict[str, Any], metric: str, where: str, unit: str | None) -> float:
    block = data.get(metric)
    if not isinstance(block, dict):
        raise ConfigError("missing metric", where=where, field=metric)
    if unit is not None and block.get("unit") != unit:
        raise ConfigError(
            "unexpected unit",
            where=where,
            field=f"{metric}.unit",
            value=block.get("unit"),
            expected=unit,
        )
    return _positive(block, "avg", where)


def _aiperf_run(data: dict[str, Any], where: str) -> BenchRun:
    config = data.get("input_config") or {}
    loadgen = config.get("loadgen") if isinstance(config, dict) else None
    concurrency = loadgen.get("concurrency") if isinstance(loadgen, dict) else None
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            "the AIPerf export has no input_config.loadgen.concurrency: the batch of the run "
            "is not known",
            where=where,
            field="input_config.loadgen.concurrency",
            value=concurrency,
        )
    requests = data.get("request_count")
    count = int(requests.get("avg", 0)) if isinstance(requests, dict) else 0
    return BenchRun(
        source=where,
        format="aiperf",
        concurrency=concurrency,
        mean_input_tokens=_aiperf_stat(data, "input_sequence_length", where, None),
        mean_output_tokens=_aiperf_stat(data, "output_sequence_length", where, None),
        tpot_s=_aiperf_stat(data, "inter_token_latency", where, "ms") / 1e3,
        ttft_s=_aiperf_stat(data, "time_to_first_token", where, "ms") / 1e3,
        completed=max(count, 1),
    )


def run_from_data(data: Any, where: str) -> BenchRun:
    if not isinstance(data, dict):
        raise ConfigError("a benchmark result must be a JSON object", where=where)
    if "mean_tpot_ms" in data and "completed" in data:
        return _vllm_run(data, where)
    if "inter_token_latency" in data and "time_to_first_token" in data:
        return _aiperf_run(data, where)
    raise ConfigError(
        "not a serving-benchmark result kvplan reads",
        where=where,
        expected="vllm bench serve --save-result JSON (mean_tpot_ms, completed, ...) or "
        "AIPerf profile_export_aiperf.json",
    )


def load_run(path: str | Path) -> BenchRun:
    return run_from_data(read_document(path), Path(path).name)


# --------------------------------------------------------------------------- correction
@dataclass(frozen=True)
class RunCheck:
    run: BenchRun
    batch: int
    context_tokens: int
    kernel_s: float  # kvplan's kernel and collective time of the step
    overhead_s: float  # kvplan's host overhead of the step
    measured_s: float

    @property
    def predicted_s(self) -> float:
        return self.kernel_s + self.overhead_s


def predict(deployed: Deployed, runs: list[BenchRun]) -> list[RunCheck]:
    """kvplan's decode step for each run's batch and mean context."""
    model = step_model(deployed)
    out = []
    for run in runs:
        batch = max(1, run.concurrency)
        context = max(1, round(run.mean_input_tokens + run.mean_output_tokens / 2))
        deployed.check_context(context)
        step = float(decode_step(deployed, batch, context).time_s)
        per_token = step / deployed.tokens_per_step_per_sequence
        overhead = model.step_overhead_s / deployed.tokens_per_step_per_sequence
        out.append(RunCheck(run, batch, context, per_token - overhead, overhead, run.tpot_s))
    return out


@dataclass(frozen=True)
class Correction:
    scale: float
    overhead_s: float
    err_before: float  # median |predicted / measured - 1|
    err_after: float
    method: str
    checks: list[RunCheck]
    after_s: list[float]


def _fit(kernel: np.ndarray, measured: np.ndarray, with_overhead: bool) -> tuple[float, float]:
    def residual(p: np.ndarray) -> np.ndarray:
        o = p[1] if with_overhead else 0.0
        return np.asarray(np.log((p[0] * kernel + o) / measured))

    x0 = [1.0, 0.0] if with_overhead else [1.0]
    lower = [MIN_SCALE, 0.0] if with_overhead else [MIN_SCALE]
    upper = [MAX_SCALE, MAX_OVERHEAD_S] if with_overhead else [MAX_SCALE]
    p = least_squares(residual, x0, bounds=(lower, upper)).x
    return float(p[0]), float(p[1]) if with_overhead else 0.0


def fit_correction(checks: list[RunCheck]) -> Correction:
    """The correction over the runs (see the module docstring)."""
    kernel = np.array([c.kernel_s for c in checks])
    measured = np.array([c.measured_s for c in checks])
    predicted = np.array([c.predicted_s for c in checks])
    before = float(np.median(np.abs(predicted / measured - 1.0)))
    with_overhead = len(checks) >= 2 and len({c.batch for c in checks}) >= 2
    scale, overhead = _fit(kernel, measured, with_overhead)
    if len(checks) >= LEAVE_ONE_OUT_FROM:
        after_s = []
        for i in range(len(checks)):
            keep = np.arange(len(checks)) != i
            s, o = _fit(kernel[keep], measured[keep], with_overhead)
            after_s.append(s * kernel[i] + o)
        method = f"leave-one-out over {len(checks)} runs"
    else:
        after_s = list(scale * kernel + overhead)
        method = f"in-sample over {len(checks)} run(s): too few runs to hold any out"
    if not with_overhead:
        method += "; scale only (the runs do not vary the batch, so an overhead is not "
        method += "separable)"
    after = float(np.median(np.abs(np.array(after_s) / measured - 1.0)))
    return Correction(scale, overhead, before, after, method, checks, [float(x) for x in after_s])
