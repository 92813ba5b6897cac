"""Run a scenario: load it, build the workload, simulate, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planner.schema import Scenario
from planner.sim.cluster import Cluster
from planner.sim.metrics import RequestArrays, finished_arrays, summarize
from planner.sim.workload import Workload, build_workload
from planner.validation import read_document, validate

Mode = Literal["fast", "exact"]


def load_scenario(path: str | Path) -> Scenario:
    """A scenario YAML, validated; relative trace paths resolve against the file's folder."""
    p = Path(path)
    raw = read_document(p)
    scenario = validate(Scenario, raw, p.name)
    trace = scenario.workload.trace
    if trace is not None and not Path(trace.path).is_absolute():
        resolved = str((p.parent / trace.path).resolve())
        workload = scenario.workload.model_copy(
            update={"trace": trace.model_copy(update={"path": resolved})}
        )
        scenario = scenario.model_copy(update={"workload": workload})
    return scenario


@dataclass
class SimResult:
    scenario: Scenario
    mode: Mode
    summary: dict[str, Any]
    cluster: Cluster
    workload: Workload

    @property
    def arrays(self) -> RequestArrays:
        return finished_arrays(self.cluster.requests)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "mode": self.mode,
            **self.summary,
            "time_series": self.cluster.series.as_dict(),
        }


def run_scenario(
    scenario: Scenario,
    *,
    mode: Mode = "fast",
    seed: int | None = None,
    trace_path: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Simulate ``scenario`` (seed and trace may be overridden) and summarise it."""
    seed = scenario.seed if seed is None else seed
    workload = build_workload(
        scenario.workload,
        duration_s=scenario.duration_s,
        block_tokens=scenario.block_tokens,
        seed=seed,
        trace_path=trace_path,
    )
    start = time.perf_counter()
    cluster = Cluster(scenario, workload, fast=mode == "fast")
    cluster.run(progress)
    wall_s = time.perf_counter() - start
    d = cluster.deployed
    summary = summarize(
        cluster.requests,
        workload.class_names,
        workload.slos,
        cluster.end_s,
        gpus_total=scenario.replicas * d.gpus,
        usd_per_gpu_hour=d.gpu.price_usd_per_hour,
        preemptions=cluster.preemptions,
    )
    summary["sim_wall_time_s"] = wall_s
    summary["steps"] = sum(r.steps for r in cluster.replicas)
    summary["scheduler_events"] = sum(r.events for r in cluster.replicas)
    return SimResult(scenario, mode, summary, cluster, workload)
