"""`kvplan migrate`: simulate a V3.2 -> V4 style migration and print its timeline and answers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner.cli.common import LazyProgress, add_calibration_flags, console, gpu_calibration
from planner.io import check_writable, write_text_atomic
from planner.migrate.calibration import calibration_record, fleet_gpus, with_calibrations
from planner.migrate.checks import WARN_S, check_work, estimate_work
from planner.migrate.load import load_migration
from planner.migrate.run import run_migration, window_spans
from planner.migrate.schema import MigrationScenario
from planner.parallel import check_scheduler, default_workers
from planner.report.migration import csv_text, to_json


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.0f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _render(data: dict[str, Any]) -> None:
    table = Table(title=f"migration {escape(data['scenario'])}: hourly timeline")
    for col in (
        "hour",
        "phase",
        "src repl",
        "tgt repl",
        "$/h",
        "src req",
        "tgt req",
        "src hit",
        "tgt hit",
        "TTFT p99 s",
        "SLO",
    ):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for row in data["timeline"]:
        table.add_row(
            str(row["hour"]) + ("" if row["simulated"] else "*"),
            escape(row["phase"]),
            _num(row["source_replicas"], ".1f"),
            _num(row["target_replicas"], ".1f"),
            f"{row['usd']:,.0f}",
            f"{row['source_requests']:,}",
            f"{row['target_requests']:,}",
            _pct(row["source_hit_ratio"]),
            _pct(row["target_hit_ratio"]),
            _num(row["ttft_p99_s_worst_class"], ".3f"),
            _pct(row["slo_attainment"]),
        )
    console.print(table)
    summary = data["summary"]
    days = Table(title="cost per day (self-hosted, both fleets)")
    for col in ("day", "hours", "source $", "target $", "total $"):
        days.add_column(col, justify="right")
    for d in summary["days"]:
        days.add_row(
            str(d["day"]),
            str(d["hours"]),
            _money(d["source_usd"]),
            _money(d["target_usd"]),
            _money(d["total_usd"]),
        )
    console.print(days)
    before, after = summary["steady_before"], summary["steady_after"]
    console.print(
        f"steady state before (source alone): {_money(before['usd_per_day'])}/day; "
        f"after (target alone): {_money(after['usd_per_day'])}/day"
    )
    cuts = Table(title="cut-overs")
    for col in (
        "class",
        "at h",
        "src hit before",
        "tgt hit 10 min",
        "tgt hit steady",
        "re-warm h",
        "API bill x (10 min / 1 h / 1 day)",
        "API extra $",
        "tgt $/h peak/steady",
        "tgt replicas re-warm/after",
    ):
        cuts.add_column(col, justify="right")
    for c in summary["cutovers"]:
        ratios = " / ".join(
            _num(c.get(k))
            for k in (
                "api_bill_ratio_first_10_min",
                "api_bill_ratio_first_hour",
                "api_bill_ratio_first_day",
            )
        )
        cuts.add_row(
            escape(c["class"]),
            f"{c['at_h']:g}",
            _pct(c["source_hit_ratio_before"]),
            _pct(c["target_hit_ratio_first_10_min"]),
            _pct(c["target_hit_ratio_steady"]),
            _num(c["rewarm_h"], ".2f"),
            ratios,
            _num(c.get("api_extra_usd"), ",.2f"),
            _num(c["target_usd_spike_ratio"]),
            f"{c.get('target_replicas_rewarm', 'n/a')}/{c.get('target_replicas_after', 'n/a')}",
        )
    console.print(cuts)
    m = summary["migration"]
    be = m["break_even_h"]
    console.print(
        f"migration (hours {m['from_h']}-{m['to_h']}): both fleets {_money(m['actual_usd'])} vs "
        f"{_money(m['source_only_usd'])} on the source alone: extra {_money(m['extra_usd'])}; "
        + (
            f"saving after it {_money(m['monthly_saving_usd'])}/month; break-even "
            if m["monthly_saving_usd"] >= 0
            else f"the target costs {_money(-m['monthly_saving_usd'])}/month more; break-even "
        )
        + ("never (no saving)" if be is None else f"at hour {be:,.1f} (day {be / 24 + 1:.1f})")
        + (f", {m['break_even_date']}" if m["break_even_date"] else "")
    )
    req = summary["requests"]
    stats = data["stats"]
    console.print(
        f"{req['arrived']:,} requests ({req['finished']:,} finished, {req['rejected']:,} "
        f"rejected, {req['in_flight']:,} in flight); {stats['simulated_requests']:,} simulated "
        f"in {stats['windows']} window(s), {stats['wall_s']:.1f} s wall"
        + ("; * = hour computed, not simulated" if data["mode"] == "hybrid" else "")
    )


def with_gpu_profiles(
    scenario: MigrationScenario, paths: list[str]
) -> tuple[MigrationScenario, dict[str, str | None]]:
    """The scenario with each --gpu-profile's curves in the fleets on its GPU, and which
    calibration each fleet uses (``planner.migrate.calibration``)."""
    gpus = list(fleet_gpus(scenario).values())
    calibrations = [(gpu_calibration(path, gpus), path) for path in paths]
    return with_calibrations(scenario, calibrations, "--gpu-profile")


def cmd_migrate(args: argparse.Namespace) -> None:
    out_json = None if args.json in (None, "-") else check_writable(args.json, field="--json")
    out_csv = None if args.csv is None else check_writable(args.csv, field="--csv")
    scheduler = check_scheduler(None if args.scheduler == "local" else args.scheduler)
    scenario = load_migration(args.scenario)
    scenario, calibrations = with_gpu_profiles(scenario, args.gpu_profile or [])
    if args.mode is not None:
        scenario = scenario.model_copy(
            update={"simulation": scenario.simulation.model_copy(update={"mode": args.mode})}
        )
    windows = window_spans(scenario)
    workers = 1 if scheduler == "serial" else default_workers(len(windows))
    estimate = estimate_work(scenario, [(a - lead, b) for _, a, b, lead in windows], workers)
    check_work(estimate, args.scenario)
    if estimate.wall_s > WARN_S:
        console.print(
            f"about {estimate.requests:,.0f} requests to simulate: roughly "
            f"{estimate.wall_s / 60:,.0f} min on {workers} worker(s)",
            style="yellow",
        )
    bar = LazyProgress(f"migrating {scenario.name}")
    try:
        result = run_migration(scenario, scheduler=scheduler, progress=bar)
    finally:
        bar.close()
    data = to_json(result)
    data["calibration"] = calibration_record(
        calibrations, "the engine's fitted curves (no --gpu-profile for this GPU)"
    )
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
        return
    if out_json is not None:
        write_text_atomic(out_json, text, field="--json")
    if out_csv is not None:
        write_text_atomic(out_csv, csv_text(result), field="--csv")
    _render(data)
    for role, label in data["calibration"]["kernel_curves"].items():
        console.print(f"{role} fleet kernel curves: {escape(label)}")
    for out in (out_json, out_csv):
        if out is not None:
            console.print(f"written to {escape(str(out))}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate", help="simulate a migration between two fleets (timeline, cost, break-even)"
    )
    p.add_argument("scenario", help="migration scenario YAML (see scenarios/migration-*.yaml)")
    p.add_argument(
        "--mode",
        choices=("full", "hybrid"),
        default=None,
        help="override simulation.mode: full simulates every request; hybrid simulates the "
        "cut-overs and computes the steady hours",
    )
    p.add_argument(
        "--scheduler",
        default="local",
        help="where the fleets' windows run: 'local' (a Dask LocalCluster on this machine, "
        "default), 'serial' (this process) or a Dask scheduler address tcp://HOST:8786",
    )
    p.add_argument(
        "--json", default=None, metavar="OUT", help="write everything as JSON ('-': stdout)"
    )
    p.add_argument("--csv", default=None, metavar="OUT", help="write the hourly rows as CSV")
    add_calibration_flags(p, engine_terms=False, several=True)
    p.set_defaults(func=cmd_migrate)
