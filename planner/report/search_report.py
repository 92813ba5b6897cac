"""The `kvplan search` result as JSON-ready dicts, CSV rows and launch scripts (shared by
the CLI and the dashboard's Search page)."""

from __future__ import annotations

from typing import Any

from planner.plan.disagg import scale_up_domain_gpus
from planner.report.launch import LaunchCommand, launch_commands, launch_script
from planner.schema import MoEFFNSpec
from planner.search.run import Candidate, SearchResult, candidate_dict, result_dict

CSV_COLUMNS = (
    "rank",
    "mode",
    "model",
    "label",
    "gpus_total",
    "usd_per_month",
    "usd_per_million_tokens",
    "usd_per_million_output_tokens",
    "ttft_s",
    "ttft_at_percentile_s",
    "tpot_s",
    "kv_transfer_s",
    "output_tokens_per_s_per_gpu",
    "output_tokens_per_s_per_user",
)


def _is_moe(candidate: Candidate) -> bool:
    model = candidate.pools[0].deployed.model
    return any(isinstance(layer.ffn, MoEFFNSpec) for layer, _ in model.distinct_layers)


def candidate_launch(
    candidate: Candidate, prefix_caching: bool
) -> list[tuple[str, int, list[LaunchCommand]]]:
    """Per pool: (title, replicas, the commands that start one replica)."""
    moe = _is_moe(candidate)
    out = []
    for pool in candidate.pools:
        commands = launch_commands(
            candidate.model,
            pool.deployed.deployment,
            pool.role,
            moe=moe,
            prefix_caching=prefix_caching,
            # A profile that names no scale-up domain: one node per replica.
            node_gpus=scale_up_domain_gpus(pool.deployed) or pool.deployed.gpus,
        )
        title = f"{pool.role} pool [{pool.layout.label}]"
        out.append((title, pool.replicas, commands))
    return out


def search_report(result: SearchResult) -> dict[str, Any]:
    """The JSON contract: result_dict plus the best plan's launch commands."""
    data = result_dict(result)
    calibration = result.spec.gpu_calibration
    data["calibration"] = calibration.label if calibration is not None else None
    caching = result.spec.prefix_hit_ratio > 0
    pools = candidate_launch(result.best, caching)
    data["best"]["launch"] = {
        "commands": [
            {
                "pool": title,
                "replicas": replicas,
                "role": c.role,
                "engine": c.engine,
                "node": c.node,
                "nodes": c.nodes,
                "argv": list(c.argv),
                "command": c.text,
                "files": c.files,
            }
            for title, replicas, commands in pools
            for c in commands
        ],
        "script": launch_script(pools),
    }
    return data


def csv_rows(result: SearchResult) -> list[dict[str, Any]]:
    rows = []
    for rank, candidate in enumerate(result.top, start=1):
        d = candidate_dict(candidate, result.spec)
        rows.append({"rank": rank, **{k: d[k] for k in CSV_COLUMNS if k != "rank"}})
    return rows
