"""`kvplan simulate` and `kvplan cache-curve`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner import limits as lim
from planner.cli.common import (
    LazyProgress,
    add_calibration_flags,
    add_json,
    calibration_summary,
    console,
    int_arg,
    print_calibration,
    print_json,
    seed_arg,
    with_calibration,
)
from planner.errors import KvplanError
from planner.io import check_writable, write_text_atomic
from planner.sim.cache_curve import cache_curve
from planner.sim.run import load_scenario, run_scenario
from planner.sim.workload import load_mooncake
from planner.units import format_tokens, parse_token_count


def _render_simulation(result: dict[str, Any]) -> None:
    req = result["requests"]
    console.print(
        f"scenario {escape(result['scenario'])} ({result['mode']} mode): "
        f"{req['arrived']:,} arrived, {req['finished']:,} finished, "
        f"{req['rejected']:,} rejected, {req['in_flight']:,} in flight"
    )
    table = Table(title="latency (seconds)")
    for col in ("metric", "p50", "p90", "p99"):
        table.add_column(col, justify="right")
    for key, label in (("ttft_s", "TTFT s"), ("tpot_s", "TPOT s"), ("e2e_s", "end-to-end s")):
        row = result[key]
        table.add_row(
            label, *["n/a" if row[p] is None else f"{row[p]:.4f}" for p in ("p50", "p90", "p99")]
        )
    console.print(table)
    goodput = result["goodput"]
    cost = result["cost"]
    console.print(
        f"goodput {'n/a' if goodput is None else f'{goodput:.1%}'}, prefix hit ratio "
        f"{result['prefix_hit_ratio']:.1%} (token-weighted), preemptions "
        f"{result['preemptions']:,}, re-routed {result['reroutes']:,}"
    )
    console.print(
        f"throughput {result['throughput']['output_tokens_per_s']:,.0f} output tokens/s; "
        f"{cost['gpu_hours']:,.2f} GPU-hours = ${cost['usd']:,.2f}"
        + (
            ""
            if cost["usd_per_million_output_tokens"] is None
            else f" (${cost['usd_per_million_output_tokens']:,.3f} per million output tokens)"
        )
    )
    if result["rejections_by_reason"]:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in result["rejections_by_reason"].items())
        console.print(f"rejections: {reasons}")
    for cls in result["per_class"]:
        g = cls["goodput"]
        console.print(
            f"  class {escape(cls['name'])}: {cls['finished']:,} finished, goodput "
            f"{'n/a' if g is None else f'{g:.1%}'}"
        )
    console.print(
        f"simulated {result['sim_time_s']:,.0f} s in {result['sim_wall_time_s']:.2f} s wall time"
    )


def cmd_simulate(args: argparse.Namespace) -> None:
    # Prove the output can be written before simulating, so no result is ever lost.
    out = None if args.json in (None, "-") else check_writable(args.json, field="--json")
    scenario = with_calibration(load_scenario(args.scenario), args)
    bar = LazyProgress(f"simulating {scenario.name}")
    try:
        result = run_scenario(
            scenario, mode=args.mode, seed=args.seed, trace_path=args.trace, progress=bar
        )
    finally:
        bar.close()
    data = result.to_json()
    data["calibration"] = calibration_summary(scenario.deployment)
    if args.json == "-":
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
        return
    if out is not None:
        write_text_atomic(out, json.dumps(data, indent=2, allow_nan=False) + "\n", field="--json")
    _render_simulation(data)
    print_calibration(data["calibration"])
    if out is not None:
        console.print(f"summary written to {escape(str(out))}")


def cmd_cache_curve(args: argparse.Namespace) -> None:
    requests = load_mooncake(args.trace, block_tokens=args.block_size)
    if len(args.capacity_tokens) > lim.MAX_CACHE_CURVE_POINTS:
        raise KvplanError(
            f"{len(args.capacity_tokens):,} capacities",
            field="--capacity-tokens",
            expected=f"at most {lim.MAX_CACHE_CURVE_POINTS:,}",
        )
    capacities = [parse_token_count(c, field="--capacity-tokens") for c in args.capacity_tokens]
    curve = cache_curve(requests, args.block_size, capacities)
    if args.json:
        print_json(curve)
        return
    table = Table(title=f"prefix-cache hit ratio ({len(requests):,} requests, token-weighted)")
    table.add_column("cache capacity", justify="right")
    table.add_column("hit ratio", justify="right")
    for point in curve["points"]:
        table.add_row(
            f"{format_tokens(point['capacity_tokens'])} tokens", f"{point['hit_ratio']:.1%}"
        )
    table.add_row("unbounded", f"{curve['hit_ratio_unbounded']:.1%}")
    console.print(table)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="discrete-event simulation of a scenario")
    p.add_argument("scenario", help="scenario YAML (see scenarios/)")
    p.add_argument(
        "--trace",
        default=None,
        help="replay this trace instead (Mooncake JSONL "
        "or CSV timestamp_s,input_tokens,output_tokens)",
    )
    p.add_argument(
        "--mode",
        choices=("fast", "exact"),
        default="fast",
        help="fast jumps over identical decode steps; exact steps every iteration",
    )
    p.add_argument(
        "--seed", type=seed_arg, default=None, help="override the scenario's seed (0 to 2^63-1)"
    )
    p.add_argument(
        "--json", default=None, metavar="OUT", help="write the summary JSON to OUT ('-' for stdout)"
    )
    add_calibration_flags(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("cache-curve", help="prefix-cache hit ratio vs capacity for a trace")
    p.add_argument("--trace", required=True, help="Mooncake JSONL trace")
    p.add_argument(
        "--block-size",
        type=int_arg(1, lim.MAX_BLOCK_TOKENS),
        default=512,
        help="tokens per hashed block (Mooncake: 512)",
    )
    p.add_argument(
        "--capacity-tokens",
        nargs="*",
        default=[],
        help="cache capacities in tokens, e.g. 1M 10M 100M",
    )
    add_json(p)
    p.set_defaults(func=cmd_cache_curve)
