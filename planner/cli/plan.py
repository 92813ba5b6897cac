"""`kvplan plan` and `kvplan frontier`."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from planner import limits as lim
from planner.cli.common import (
    add_calibration_flags,
    add_deployment_flags,
    add_json,
    add_ttft_flags,
    calibration_summary,
    console,
    deployment_from_args,
    float_arg,
    int_arg,
    print_calibration,
    print_json,
    share_arg,
    tokens_arg,
)
from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.frontier import frontier, log_spaced_contexts, max_context_curve
from planner.report.plan_report import plan_report, traffic_report
from planner.units import GIB_BYTES, MAX_TOKEN_COUNT, format_tokens, parse_token_count


def _render_plan(report: dict[str, Any]) -> None:
    mem = report["memory_per_gpu"]
    title = (
        f"{report['model']} on {report['gpus_per_replica']} x {report['gpu']} "
        f"(TP {report['tensor_parallel']}, EP {report['expert_parallel']}, "
        f"attention DP {report['attention_data_parallel']})"
    )
    table = Table(title=title)
    table.add_column("memory per GPU")
    table.add_column("GiB", justify="right")
    for key in (
        "weights_bytes",
        "kv_bytes",
        "activation_bytes",
        "reserved_bytes",
        "free_bytes",
        "total_bytes",
    ):
        table.add_row(key.removesuffix("_bytes"), f"{mem[key] / GIB_BYTES:,.2f}")
    console.print(table)
    fits = report["kernel_fits"]
    console.print(f"operator curves: {escape(fits['source'])}")
    if fits.get("engine_terms"):
        scale = fits.get("step_time_scale", 1.0)
        console.print(
            f"engine terms: {escape(fits['engine_terms'])}"
            + (f" (step times x{scale:.3g})" if scale != 1.0 else "")
        )
    dec, pre, cost = report["decode"], report["prefill"], report["cost"]
    console.print(
        f"fits: {'yes' if report['fits'] else 'NO'}; max concurrent sequences at "
        f"{dec['context_tokens']:,} tokens: {report['max_concurrent_sequences']:,}"
    )
    engine, dp = report["engine"], report["attention_data_parallel"]
    console.print(
        f"{engine['name']} {engine['version']} logs per engine (x{dp} per replica): "
        f"KV cache size {report['kv_pool_tokens']:,} tokens, maximum "
        f"concurrency {report['max_concurrency']:,.2f}x at {dec['context_tokens']:,} tokens"
    )
    console.print(
        f"decode batch {dec['batch']}: step {dec['step_time_s'] * 1e3:,.2f} ms "
        f"({dec['bound']}-bound), TPOT {dec['tpot_s'] * 1e3:,.2f} ms, "
        f"{dec['tokens_per_s']:,.0f} tokens/s per replica "
        f"({dec['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU)"
    )
    cached = (
        f" ({pre['cached_tokens']:,} cached, hit ratio {pre['prefix_hit_ratio']:g})"
        if pre["cached_tokens"]
        else ""
    )
    console.print(
        f"prefill: {pre['tokens_per_s']:,.0f} prompt tokens/s per replica at its full token "
        f"budget, TTFT {pre['ttft_s']:,.3f} s for a {pre['prompt_tokens']:,}-token prompt"
        f"{cached} on an idle replica"
    )
    console.print(
        f"cost at ${cost['usd_per_gpu_hour']:.2f}/GPU-hour: "
        f"${usd_text(cost['usd_per_million_input_tokens'])}/M input, "
        f"${usd_text(cost['usd_per_million_output_tokens'])}/M output, "
        f"${usd_text(cost['usd_per_million_cached_input_tokens'])}/M cached input; "
        f"${cost['usd_per_replica_month']:,.0f} per replica-month"
    )
    traffic = report.get("traffic")
    if traffic:
        console.print(
            f"traffic {traffic['requests_per_s']:g} req/s ({traffic['mean_input_tokens']:,} in / "
            f"{traffic['mean_output_tokens']:,} out, {slo_text(traffic)}): "
            f"{traffic['replicas']} replicas = {traffic['gpus_total']} GPUs, "
            f"${traffic['usd_per_month']:,.0f}/month "
            f"(range ${traffic['usd_per_month_range'][0]:,.0f}-"
            f"${traffic['usd_per_month_range'][1]:,.0f})"
        )
        console.print(f"  expected at this load: {latency_text(traffic)}")
        for api in traffic["api_list_prices"]:
            bill = api["usd_per_month"]
            shown = "n/a (price incomplete)" if bill is None else f"${bill:,.0f}/month"
            console.print(f"  API list price ({escape(api['label'])}): {shown}")


def slo_text(traffic: dict[str, Any]) -> str:
    """'TPOT SLO 50 ms, TTFT SLO p90 2 s' (the TTFT part only when one was set)."""
    text = f"TPOT SLO {traffic['tpot_slo_s'] * 1e3:g} ms"
    if traffic.get("ttft_slo_s") is not None:
        text += f", TTFT SLO p{traffic['ttft_percentile'] * 100:g} {traffic['ttft_slo_s']:g} s"
    return text


def latency_text(traffic: dict[str, Any]) -> str:
    """The TTFT (percentile and mean) and TPOT a sized plan expects at its load."""
    return (
        f"TTFT p{traffic['ttft_percentile'] * 100:g} {traffic['ttft_at_percentile_s']:,.3f} s "
        f"(mean {traffic['ttft_s']:,.3f} s, prefill alone {traffic['prefill_s']:,.3f} s), "
        f"TPOT {traffic['tpot_s'] * 1e3:,.1f} ms, decode batch {traffic['decode_batch']:,} "
        f"per replica, prefill {traffic['prefill_utilisation']:.0%} of its time"
    )


def usd_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4f}"


def cmd_plan(args: argparse.Namespace) -> None:
    deployed = Deployed.build(
        resolve_model(args.model), load_gpu(args.gpu), deployment_from_args(args)
    )
    report = plan_report(
        deployed,
        args.context,
        args.batch,
        args.output_tokens,
        args.input_tokens,
        prefix_hit_ratio=args.prefix_hit_ratio,
    )
    if args.rate is not None:
        prompt = args.input_tokens or args.context
        limit = deployed.model.max_context_tokens
        if prompt + args.output_tokens > limit:
            raise KvplanError(
                f"a request of {prompt:,} prompt + {args.output_tokens:,} output tokens is "
                f"beyond {deployed.model.name}'s maximum context",
                field="--input-tokens + --output-tokens",
                expected=f"at most {limit:,} together",
            )
        report["traffic"] = traffic_report(
            deployed,
            args.rate,
            args.input_tokens or args.context,
            args.output_tokens,
            args.tpot_slo_ms / 1e3,
            prefix_hit_ratio=args.prefix_hit_ratio,
            ttft_slo_s=args.ttft_slo_s,
            ttft_percentile=args.ttft_percentile / 100,
        )
    print_json(report) if args.json else _render_plan(report)


def cmd_frontier(args: argparse.Namespace) -> None:
    if args.contexts is not None:
        items = args.contexts.split(",")
        if len(items) > lim.MAX_FRONTIER_POINTS:
            raise KvplanError(
                f"{len(items):,} contexts",
                field="--contexts",
                expected=f"at most {lim.MAX_FRONTIER_POINTS:,}",
            )
        contexts = np.array(sorted({parse_token_count(c, field="--contexts") for c in items}))
    else:
        if args.min_context > args.max_context:
            raise KvplanError(
                "is above --max-context",
                field="--min-context",
                value=args.min_context,
                expected=f"at most --max-context ({args.max_context:,})",
            )
        contexts = log_spaced_contexts(args.min_context, args.max_context, args.points)
    deployment = deployment_from_args(args)
    models = [resolve_model(m) for m in args.model]
    gpus = [load_gpu(g) for g in args.gpu]
    curves = frontier(
        models,
        gpus,
        deployment,
        contexts,
    )
    data: dict[str, Any] = {
        "gpus_per_replica": deployment.gpus_per_replica,
        "calibration": calibration_summary(deployment),
        "context_tokens": contexts.tolist(),
        "curves": [
            {
                "model": c.model,
                "gpu": c.gpu,
                "fits": c.fits,
                "reason": c.reason,
                "max_concurrent_sequences": c.max_concurrent_sequences.tolist(),
            }
            for c in curves
        ],
    }
    if args.concurrency:
        for curve, (model, gpu) in zip(
            data["curves"], [(m, g) for m in models for g in gpus], strict=True
        ):
            longest = max_context_curve(model, gpu, deployment, args.concurrency)
            curve["max_context_tokens_at_concurrency"] = (
                None
                if longest is None
                else dict(zip(map(str, args.concurrency), longest.tolist(), strict=True))
            )
    if args.json:
        print_json(data)
        return
    table = Table(
        title=f"max concurrent sequences per replica of {deployment.gpus_per_replica} GPUs"
    )
    table.add_column("context (tokens)", justify="right")
    for c in curves:
        table.add_column(f"{c.model}\n{c.gpu}", justify="right")
    for i, ctx in enumerate(contexts):
        table.add_row(
            f"{format_tokens(int(ctx))}",
            *[
                f"{int(c.max_concurrent_sequences[i]):,}" if c.fits else "does not fit"
                for c in curves
            ],
        )
    console.print(table)
    print_calibration(data["calibration"])
    for c in curves:
        if not c.fits:
            console.print(f"{c.model} on {c.gpu}: {c.reason}")
    if args.concurrency:
        inverse = Table(title="longest context (tokens) at which C sequences fit per replica")
        inverse.add_column("C", justify="right")
        for c in curves:
            inverse.add_column(f"{c.model}\n{c.gpu}", justify="right")
        for conc in args.concurrency:
            cells = []
            for curve in data["curves"]:
                at = curve.get("max_context_tokens_at_concurrency")
                cells.append("does not fit" if at is None else f"{at[str(conc)]:,}")
            inverse.add_row(str(conc), *cells)
        console.print(inverse)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="memory, concurrency, speed and cost of one replica")
    p.add_argument("--model", required=True, help="catalog name or config.json path")
    p.add_argument("--gpu", required=True, help="GPU profile name (kvplan gpu list)")
    add_deployment_flags(p)
    add_calibration_flags(p)
    p.add_argument(
        "--context",
        type=tokens_arg(1),
        required=True,
        help="context length in tokens (1 to the model's maximum context)",
    )
    p.add_argument(
        "--batch",
        type=tokens_arg(1),
        default=None,
        help="decode batch (default: as many sequences as fit, up to max_num_seqs)",
    )
    p.add_argument(
        "--output-tokens",
        type=tokens_arg(1),
        default=1024,
        help="mean output tokens per request (default 1024)",
    )
    p.add_argument(
        "--rate",
        type=float_arg(0, lim.MAX_RATE_PER_S),
        default=None,
        help="size replicas for this many requests per second",
    )
    p.add_argument(
        "--input-tokens",
        type=tokens_arg(1),
        default=None,
        help="mean prompt tokens (prefill speed, TTFT, --rate; default: --context)",
    )
    p.add_argument(
        "--prefix-hit-ratio",
        type=share_arg,
        default=0.0,
        help="share of prompt tokens served from the prefix cache (0-1, default 0): "
        "prefill computes the rest while attending to all of it",
    )
    p.add_argument(
        "--tpot-slo-ms",
        type=float_arg(0, lim.MAX_TPOT_SLO_MS),
        default=50.0,
        help="time-per-output-token SLO for --rate (default 50 ms)",
    )
    add_ttft_flags(p)
    add_json(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("frontier", help="max concurrent sequences vs context")
    p.add_argument("--model", nargs="+", required=True, help="one or more models")
    p.add_argument("--gpu", nargs="+", required=True, help="one or more GPU profiles")
    add_deployment_flags(p)
    add_calibration_flags(p)
    p.add_argument("--contexts", default=None, help="comma-separated contexts, e.g. 8K,128K,1M")
    p.add_argument("--min-context", type=tokens_arg(1), default=1024)
    p.add_argument("--max-context", type=tokens_arg(1), default=2**20)
    p.add_argument(
        "--points",
        type=int_arg(1, lim.MAX_FRONTIER_POINTS),
        default=11,
        help=f"log-spaced points (default 11, at most {lim.MAX_FRONTIER_POINTS:,})",
    )
    p.add_argument(
        "--concurrency",
        type=int_arg(1, MAX_TOKEN_COUNT),
        nargs="*",
        default=[],
        help="also report the longest context at which C sequences fit, e.g. 1 16 256",
    )
    add_json(p)
    p.set_defaults(func=cmd_frontier)
