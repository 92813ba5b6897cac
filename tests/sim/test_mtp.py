"""MTP speculative decoding in the simulator: acceptance draws bound the step count, the
step time is the planner's MTP decode step, MTP's KV is held, and runs are reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import sequence_bytes_per_gpu
from planner.plan.mtp import MTPStepTimes
from planner.plan.perf import StepModel, decode_step
from planner.schema import Deployment, Scenario
from planner.sim.run import run_scenario

PROMPT, OUTPUT = 1000, 101  # the prefill emits the first token; 100 more by decoding


def _scenario(
    folder: Path, acceptance: float, rows: list[tuple[float, int, int]], **extra: object
) -> Scenario:
    trace = folder / "trace.csv"
    trace.write_text(
        "timestamp_s,input_tokens,output_tokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows)
    )
    return Scenario.model_validate(
        {
            "name": "mtp",
            "model": "deepseek-v3",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 8, "mtp": True, "mtp_acceptance_rate": acceptance},
            "duration_s": 10,
            "drain_s": 600,
            "block_tokens": 64,
            "prefix_cache": {"enabled": False},
            "workload": {"trace": {"path": str(trace), "format": "csv"}},
            **extra,
        }
    )


@pytest.mark.parametrize(("acceptance", "decode_steps"), [(1.0, 50), (0.0, 100)])
def test_acceptance_bounds_the_step_count(tmp_path: Path, acceptance: float, decode_steps: int):
    # One prefill step, then 100 tokens: two per step when every draft is accepted, one per
    # step when none is.
    result = run_scenario(_scenario(tmp_path, acceptance, [(0.0, PROMPT, OUTPUT)]))
    (request,) = result.cluster.requests
    assert request.state == "finished" and request.generated == OUTPUT
    assert result.summary["steps"] == 1 + decode_steps
    assert request.decode_steps == decode_steps


def test_partial_acceptance_lies_between_and_repeats(tmp_path: Path):
    runs = [run_scenario(_scenario(tmp_path, 0.7, [(0.0, PROMPT, OUTPUT)])) for _ in range(2)]
    steps = [r.summary["steps"] - 1 for r in runs]
    assert 50 < steps[0] < 100
    assert steps[0] == steps[1]  # seeded draws


def test_mtp_step_time_is_the_planners_decode_step():
    deployed = Deployed.build(
        load_model("deepseek-v3"), load_gpu("h200"), Deployment(gpus_per_replica=8, mtp=True)
    )
    times = MTPStepTimes(StepModel(deployed), 64)
    for batch, context in ((1, 2048), (16, 8192)):
        contexts = np.full(batch, context, dtype=np.int64)
        planned = float(decode_step(deployed, batch, context).time_s)
        assert times.step_time_s(contexts, [], 0) == pytest.approx(planned, rel=1e-9)


def test_mtp_layer_keeps_its_own_kv():
    # DeepSeek-V3: 61 MLA layers plus one MTP layer (MLA too): with MTP on, a sequence holds
    # 62/61 of the cache (BF16: 1,152 B per token per layer; 8,192 tokens).
    model, gpu = load_model("deepseek-v3"), load_gpu("h200")
    off = Deployed.build(model, gpu, Deployment(tensor_parallel=1))
    on = Deployed.build(model, gpu, Deployment(tensor_parallel=1, mtp=True))
    assert float(sequence_bytes_per_gpu(off, 8192)) == 8192 * 1152 * 61
    assert float(sequence_bytes_per_gpu(on, 8192)) == 8192 * 1152 * 62


def test_fast_equals_exact_with_mtp(tmp_path: Path):
    rows = [(0.05 * i, 500 + 37 * i, 40 + 7 * i) for i in range(12)]
    scenario = _scenario(tmp_path, 0.8, rows)
    fast = run_scenario(scenario, mode="fast")
    exact = run_scenario(scenario, mode="exact")
    assert [(r.first_token_s, r.finish_s) for r in fast.cluster.requests] == [
        (r.first_token_s, r.finish_s) for r in exact.cluster.requests
    ]
