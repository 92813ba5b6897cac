"""Run a scenario: load it, build the workload, simulate, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planner.model.resolve import resolve_spec
from planner.schema import Scenario
from planner.sim.cluster import Cluster
from planner.sim.disagg import DisaggCluster
from planner.sim.metrics import RequestArrays, finished_arrays, summarize
from planner.sim.workload import Workload, build_workload
from planner.validation import read_document, validate

Mode = Literal["fast", "exact"]


def _resolve_files(value: Any, folder: Path) -> Any:
    """Make relative file paths inside a raw scenario document relative to its folder
    (trace ``path``, empirical distributions' ``file``)."""
    if isinstance(value, dict):
        out = {k: _resolve_files(v, folder) for k, v in value.items()}
        for key in ("path", "file"):
            if isinstance(out.get(key), str) and not Path(out[key]).is_absolute():
                out[key] = str((folder / out[key]).resolve())
        return out
    if isinstance(value, list):
        return [_resolve_files(v, folder) for v in value]
    return value


def load_scenario(path: str | Path) -> Scenario:
    """A scenario YAML, validated; relative file paths in its workload (trace, empirical
    distributions) and a ``model`` given as a relative ``.json`` path (an exported view's
    uploaded model) resolve against the file's folder, so it runs from any directory."""
    p = Path(path)
    raw = read_document(p)
    if isinstance(raw, dict) and isinstance(raw.get("workload"), dict):
        raw = {**raw, "workload": _resolve_files(raw["workload"], p.parent)}
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, str) and model.endswith(".json") and not Path(model).is_absolute():
        raw = {**raw, "model": str((p.parent / model).resolve())}
    return validate(Scenario, raw, p.name)


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
        max_context_tokens=resolve_spec(scenario.model).max_context_tokens,
    )
    start = time.perf_counter()
    kind = Cluster if scenario.disaggregation is None else DisaggCluster
    cluster = kind(scenario, workload, fast=mode == "fast")
    cluster.run(progress)
    wall_s = time.perf_counter() - start
    summary = summarize(
        cluster.requests,
        workload.class_names,
        workload.slos,
        cluster.end_s,
        gpus_total=cluster.gpus_total,
        usd_per_gpu_hour=cluster.usd_per_hour / cluster.gpus_total,
        preemptions=cluster.preemptions,
    )
    summary["sim_wall_time_s"] = wall_s
    summary["steps"] = sum(r.steps for r in cluster.replicas)
    summary["scheduler_events"] = sum(r.events for r in cluster.replicas)
    return SimResult(scenario, mode, summary, cluster, workload)
