"""The example scenarios validate, fit their GPUs and generate their workloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import memory_budget
from planner.schema import Scenario
from planner.sim.workload import build_workload
from planner.validation import read_document, validate

ROOT = Path(__file__).resolve().parents[2]
# Migration scenarios (two fleets) have their own schema: tests/migrate.
SCENARIOS = sorted(
    p for p in (ROOT / "scenarios").glob("*.yaml") if not p.name.startswith("migration-")
)


def test_the_examples_are_there() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {
        "chat-shared-prompt",
        "long-context-agents",
        "bursty-mixed-reasoning",
        "mooncake-replay",
    } <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_validates_fits_and_builds(path: Path) -> None:
    scenario = validate(Scenario, read_document(path), str(path))
    assert scenario.name == path.stem
    assert path.read_text().startswith("#")  # a comment header explains the scenario
    deployed = Deployed.build(
        load_model(scenario.model), load_gpu(scenario.gpu), scenario.deployment
    )
    assert memory_budget(deployed).kv_pool_bytes > 0
    trace_path = None
    if scenario.workload.trace is not None:
        # A relative trace path is taken from the scenario file's folder (as
        # planner.sim.run.load_scenario does).
        trace = (path.parent / scenario.workload.trace.path).resolve()
        if not trace.exists():
            pytest.skip(f"{trace} not present")
        trace_path = str(trace)
    workload = build_workload(
        scenario.workload,
        duration_s=scenario.duration_s,
        block_tokens=scenario.block_tokens,
        seed=scenario.seed,
        trace_path=trace_path,
    )
    requests = list(workload.requests())
    assert 10 <= len(requests) <= 20_000
    longest = max(r.input_tokens + r.output_tokens for r in requests)
    assert longest <= deployed.model.max_context_tokens
