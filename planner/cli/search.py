"""`kvplan search`: the cheapest deployment meeting the SLOs, the top N, the Pareto front,
the launch command, and with --verify the simulator's check of the best plans."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner import limits as lim
from planner.cli.common import (
    ENGINE_CHOICES,
    KV_DTYPE_CHOICES,
    LazyProgress,
    add_calibration_flags,
    add_ttft_flags,
    console,
    float_arg,
    gpu_calibration,
    gpu_count_arg,
    int_arg,
    share_arg,
    tokens_arg,
)
from planner.io import check_writable, write_text_atomic
from planner.report.search_report import csv_rows, search_report
from planner.report.views import rows_to_csv
from planner.search.run import run_search
from planner.search.spec import DEFAULT_GPU_COUNTS, DEFAULT_TP_SIZES, SearchSpec
from planner.search.verify import verify
from planner.validation import validate

BOTH = "both"
MAX_TOP_ROWS = 10_000
MAX_VERIFY_RUNS = 100  # each is a full simulation


def _options(choice: str, on: str = "on") -> tuple[bool, ...]:
    return {BOTH: (False, True), on: (True,)}.get(choice, (False,))


def spec_from_args(args: argparse.Namespace) -> SearchSpec:
    fields: dict[str, Any] = {
        "models": tuple(args.model),
        "gpus": tuple(args.gpu),
        "engines": tuple(args.engine),
        "requests_per_s": args.rate,
        "input_tokens": args.input_tokens,
        "output_tokens": args.output_tokens,
        "prefix_hit_ratio": args.prefix_hit_ratio,
        "tpot_slo_s": args.tpot_slo_ms / 1e3,
        "ttft_slo_s": args.ttft_slo_s,
        "ttft_percentile": args.ttft_percentile / 100,
        "gpus_per_replica": tuple(args.gpus),
        "tensor_parallel": tuple(args.tp),
        "mtp": _options(args.mtp),
        "mtp_acceptance_rate": args.mtp_acceptance,
        "disaggregated": _options(args.mode, "disaggregated"),
        "kv_dtype": args.kv_dtype,
        "top": args.top,
        "gpu_calibration": gpu_calibration(args.gpu_profile, args.gpu)
        if args.gpu_profile
        else None,
    }
    return validate(SearchSpec, fields, "command line")


def _render(data: dict[str, Any]) -> None:
    best = data["best"]
    traffic, slo = data["traffic"], data["slo"]
    ttft_slo = (
        f", TTFT SLO p{slo['ttft_percentile'] * 100:g} {slo['ttft_s']:g} s"
        if slo["ttft_s"] is not None
        else ""
    )
    console.print(
        f"traffic {traffic['requests_per_s']:g} req/s, {traffic['mean_input_tokens']:,} in / "
        f"{traffic['mean_output_tokens']:,} out, prefix hits {traffic['prefix_hit_ratio']:.0%}; "
        f"TPOT SLO {slo['tpot_s'] * 1e3:g} ms{ttft_slo}"
    )
    console.print(f"[bold]cheapest:[/bold] {escape(best['label'])}")
    console.print(
        f"  {best['gpus_total']:,} GPUs, ${best['usd_per_month']:,.0f}/month "
        f"(${best['usd_per_month_range'][0]:,.0f}-${best['usd_per_month_range'][1]:,.0f}), "
        f"${best['usd_per_million_tokens']:.4f} per million tokens "
        f"(${best['usd_per_million_output_tokens']:.4f} per million output tokens)"
    )
    transfer = (
        f", KV transfer {best['kv_transfer_s'] * 1e3:,.1f} ms"
        if best["kv_transfer_s"] is not None
        else ""
    )
    console.print(
        f"  expected at this load: TTFT p{slo['ttft_percentile'] * 100:g} "
        f"{best['ttft_at_percentile_s']:,.3f} s (mean {best['ttft_s']:,.3f} s{transfer}), "
        f"TPOT {best['tpot_s'] * 1e3:,.1f} ms; "
        f"{best['output_tokens_per_s_per_gpu']:,.0f} output tokens/s per GPU, "
        f"{best['output_tokens_per_s_per_user']:,.1f} per user"
    )
    for pool in best["pools"]:
        mtp = f", MTP acceptance {pool['mtp_acceptance_rate']:g}" if pool["mtp"] else ""
        batch = (
            f", decode batch {pool['decode_batch']:,} per replica"
            if pool["decode_batch"] is not None
            else ""
        )
        util = (
            f", prefill {pool['prefill_utilisation']:.0%} busy"
            if pool["prefill_utilisation"]
            else ""
        )
        console.print(
            f"  {pool['role']}: {pool['replicas']} x {pool['gpus_per_replica']} "
            f"{escape(pool['gpu'])} ({pool['engine']}, TP {pool['tensor_parallel']}, attention "
            f"DP {pool['attention_data_parallel']}, EP {pool['expert_parallel']}{mtp}; "
            f"max_num_seqs {pool['max_num_seqs']}, max_batched_tokens "
            f"{pool['max_batched_tokens']:,}{batch}{util})"
        )
    for mode, other in data["best_by_mode"].items():
        if other["label"] != best["label"]:
            console.print(
                f"  cheapest {mode}: {escape(other['label'])}, {other['gpus_total']:,} GPUs, "
                f"${other['usd_per_month']:,.0f}/month"
            )
    table = Table(title=f"top {len(data['top'])} deployments")
    for column in ("#", "deployment", "GPUs", "$/month", "$/M tokens", "TTFT p", "TPOT ms"):
        table.add_column(column, justify="left" if column == "deployment" else "right")
    for rank, row in enumerate(data["top"], start=1):
        table.add_row(
            str(rank),
            escape(row["label"]),
            f"{row['gpus_total']:,}",
            f"{row['usd_per_month']:,.0f}",
            f"{row['usd_per_million_tokens']:.4f}",
            f"{row['ttft_at_percentile_s']:,.2f}",
            f"{row['tpot_s'] * 1e3:,.1f}",
        )
    console.print(table)
    fronts: dict[tuple[str, str], int] = {}
    for p in data["pareto"]:
        fronts[(p["model"], p["gpu"])] = fronts.get((p["model"], p["gpu"]), 0) + 1
    for (model, gpu), count in fronts.items():
        console.print(f"Pareto front {model} on {gpu}: {count} points (--json for all)")
    ev = data["evaluated"]
    console.print(
        f"evaluated {ev['layouts']:,} layouts, {ev['deployments']:,} deployments "
        f"in {ev['elapsed_s']:.2f} s"
    )
    verified = data.get("verify")
    if verified:
        vt = Table(title="--verify: simulated vs planned")
        for column in ("#", "TTFT p plan", "TTFT p sim", "TPOT plan", "TPOT sim p50", "goodput"):
            vt.add_column(column, justify="right")
        for v in verified:
            vt.add_row(
                str(v["rank"]),
                f"{v['plan']['ttft_at_percentile_s']:,.3f}",
                _num(v["simulated"]["ttft_at_percentile_s"], "{:,.3f}"),
                f"{v['plan']['tpot_s'] * 1e3:,.1f} ms",
                _num(v["simulated"]["tpot_p50_s"], "{:,.4f}"),
                _num(v["simulated"]["goodput"], "{:.1%}"),
            )
        console.print(vt)
    console.print("launch (one replica of each pool; the script also in --json):")
    for command in best["launch"]["commands"]:
        console.print(f"  [{escape(command['pool'])}] {escape(command['command'])}", soft_wrap=True)


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def cmd_search(args: argparse.Namespace) -> None:
    spec = spec_from_args(args)
    csv_out = check_writable(args.csv, field="--csv") if args.csv else None
    bar = LazyProgress("searching deployments")
    try:
        result = run_search(spec, progress=bar)
    finally:
        bar.close()
    data = search_report(result)
    if args.verify:
        vbar = LazyProgress(f"simulating the top {args.verify}")
        try:
            data["verify"] = verify(
                result,
                args.verify,
                scheduler=args.scheduler,
                duration_s=args.verify_duration_s,
                progress=vbar,
            )
        finally:
            vbar.close()
    if csv_out is not None:
        write_text_atomic(csv_out, rows_to_csv(csv_rows(result)), field="--csv")
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
        return
    _render(data)
    if csv_out is not None:
        console.print(f"top {len(result.top)} written to {escape(str(csv_out))}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "search",
        help="cheapest deployment meeting TTFT/TPOT SLOs over layouts, MTP and disaggregation",
    )
    p.add_argument("--model", nargs="+", required=True, help="one or more catalog models")
    p.add_argument("--gpu", nargs="+", required=True, help="one or more GPU profiles")
    p.add_argument(
        "--engine", nargs="+", choices=ENGINE_CHOICES, default=["vllm"], help="default vllm"
    )
    p.add_argument(
        "--rate",
        type=float_arg(0, lim.MAX_RATE_PER_S),
        required=True,
        help="requests per second",
    )
    p.add_argument("--input-tokens", type=tokens_arg(1), required=True, help="mean prompt tokens")
    p.add_argument("--output-tokens", type=tokens_arg(1), required=True, help="mean answer tokens")
    p.add_argument(
        "--prefix-hit-ratio",
        type=share_arg,
        default=0.0,
        help="share of prompt tokens served from the prefix cache (0-1, default 0)",
    )
    p.add_argument(
        "--tpot-slo-ms",
        type=float_arg(0, lim.MAX_TPOT_SLO_MS),
        default=50.0,
        help="TPOT SLO (default 50 ms)",
    )
    add_ttft_flags(p)
    p.add_argument(
        "--gpus",
        type=gpu_count_arg,
        nargs="+",
        default=list(DEFAULT_GPU_COUNTS),
        help="GPUs per replica to try (default: " + " ".join(map(str, DEFAULT_GPU_COUNTS)) + ")",
    )
    p.add_argument(
        "--tp",
        type=gpu_count_arg,
        nargs="+",
        default=list(DEFAULT_TP_SIZES),
        help="attention tensor-parallel sizes to try (default 1 2 4 8)",
    )
    p.add_argument(
        "--mtp", choices=("on", "off", BOTH), default=BOTH, help="MTP speculative decoding"
    )
    p.add_argument(
        "--mtp-acceptance",
        type=share_arg,
        default=0.85,
        help="MTP draft acceptance rate (default 0.85)",
    )
    p.add_argument(
        "--mode",
        choices=("aggregated", "disaggregated", BOTH),
        default=BOTH,
        help="prefill and decode on the same replicas, on separate pools, or both",
    )
    p.add_argument("--kv-dtype", choices=KV_DTYPE_CHOICES, default=None)
    p.add_argument("--top", type=int_arg(1, MAX_TOP_ROWS), default=10, help="rows in the top table")
    p.add_argument("--csv", default=None, metavar="OUT", help="write the top table as CSV")
    p.add_argument(
        "--verify",
        type=int_arg(0, MAX_VERIFY_RUNS),
        default=0,
        metavar="K",
        help="simulate the top K plans and report simulated vs planned TTFT/TPOT",
    )
    p.add_argument(
        "--verify-duration-s",
        type=float_arg(0, lim.MAX_DURATION_S),
        default=120.0,
        help="simulated seconds of arrivals per --verify run (default 120)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler for --verify: 'serial', or an address (default: a local cluster)",
    )
    add_calibration_flags(p, engine_terms=False)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_search)
