"""The `kvplan` command line: parse, call planner, print. No formulas here.

Every command prints a table by default and JSON with --json. User errors print one line
to stderr and exit 2; --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from planner.errors import ConfigError, KvplanError
from planner.hardware import gpu_names, load_gpu
from planner.model.catalog import catalog_names, load_spec
from planner.model.hf_import import spec_from_hf_file
from planner.model.model import Model
from planner.model.resolve import resolve_model
from planner.model.transform import with_model_kv_dtype
from planner.plan.deployed import Deployed
from planner.plan.frontier import frontier, log_spaced_contexts, max_context_curve
from planner.report.compare import compare_models
from planner.report.model_summary import model_summary
from planner.report.plan_report import plan_report, traffic_report
from planner.schema import Deployment
from planner.sim.cache_curve import cache_curve
from planner.sim.run import load_scenario, run_scenario
from planner.sim.workload import load_mooncake
from planner.units import (
    GIB_BYTES,
    MAX_TOKEN_COUNT,
    format_bytes,
    format_tokens,
    parse_token_count,
)
from planner.validation import read_document, validate

EXIT_USER_ERROR = 2
KV_DTYPE_CHOICES = ("bf16", "fp8")
GFLOP = 1e9

# Tables keep their columns readable when piped (rich falls back to 80 columns otherwise).
PIPED_CONSOLE_WIDTH = 160
console = Console() if sys.stdout.isatty() else Console(width=PIPED_CONSOLE_WIDTH)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= MAX_TOKEN_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOKEN_COUNT:,}, got {value}")
    return value


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


def _tokens(text: str) -> int:
    try:
        return parse_token_count(text)
    except KvplanError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------- model
def cmd_model_list(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    for name in catalog_names():
        model = Model(load_spec(name))
        rows.append(
            {
                "name": name,
                "display_name": model.spec.display_name,
                "layers_by_kind": model.layer_counts_by_kind,
                "max_context_tokens": model.max_context_tokens,
                "total_params": model.total_params,
                "active_params": model.active_params,
                "kv_bytes_per_token": model.kv_bytes_per_token,
            }
        )
    if args.json:
        _print_json({"models": rows})
        return
    table = Table(title="kvplan model catalog")
    for col in ("name", "layers", "max context", "params (total / active)", "KV per token"):
        table.add_column(col)
    for r in rows:
        kinds = ", ".join(f"{n} {k}" for k, n in r["layers_by_kind"].items())
        table.add_row(
            r["name"],
            kinds,
            f"{format_tokens(r['max_context_tokens'])} tokens",
            f"{r['total_params'] / 1e9:,.1f}B / {r['active_params'] / 1e9:,.1f}B",
            f"{r['kv_bytes_per_token']:,.0f} B/token",
        )
    console.print(table)


def _render_model(summary: dict[str, Any]) -> None:
    has_context = "context_tokens" in summary
    title = f"{summary['display_name']} ({summary['architecture']}), per layer"
    table = Table(title=title)
    cols = ["layer", "kind", "ratio", "KV B/token", "state B/seq", "FFN"]
    if has_context:
        cols.append(f"KV at {format_tokens(summary['context_tokens'])}")
    for col in cols:
        table.add_column(col, justify="right")
    for row in summary["layers"]:
        cells = [
            str(row["layer"]),
            row["kind"],
            str(row["compress_ratio"]),
            f"{row['kv_bytes_per_token']:,.2f}",
            f"{row['state_bytes']:,.0f}",
            row["ffn"],
        ]
        if has_context:
            cells.append(format_bytes(row["kv_bytes_at_context"]))
        table.add_row(*cells)
    console.print(table)
    weights = Table(title="weights by component")
    for col in ("component", "params", "bytes"):
        weights.add_column(col, justify="right")
    for comp, line in summary["weights"].items():
        weights.add_row(comp, f"{line['params'] / 1e9:,.3f}B", format_bytes(line["bytes"]))
    console.print(weights)
    console.print(
        f"total {summary['total_params'] / 1e9:,.1f}B params "
        f"({summary['active_params'] / 1e9:,.2f}B active per token), "
        f"weights {format_bytes(summary['weight_bytes'])}; "
        f"KV {summary['kv_bytes_per_token']:,.0f} B/token + "
        f"{format_bytes(summary['state_bytes_per_sequence'])} fixed state per sequence"
    )
    if has_context:
        flops = summary["decode_flops_breakdown"]
        parts = ", ".join(f"{k} {v / GFLOP:,.2f}" for k, v in flops.items())
        console.print(
            f"decode GFLOP/token at {format_tokens(summary['context_tokens'])}: "
            f"{sum(flops.values()) / GFLOP:,.2f} ({parts})"
        )
    for note in summary["notes"]:
        console.print(f"note: {note}")


def cmd_model_show(args: argparse.Namespace) -> None:
    model = resolve_model(args.name, args.kv_dtype)
    summary = model_summary(model, args.context)
    _print_json(summary) if args.json else _render_model(summary)


def cmd_model_import(args: argparse.Namespace) -> None:
    spec = spec_from_hf_file(args.config, name=args.name)
    if args.kv_dtype:
        spec = with_model_kv_dtype(spec, args.kv_dtype)
    model = Model(spec)
    if args.json:
        _print_json(
            {"spec": spec.model_dump(mode="json"), "summary": model_summary(model, args.context)}
        )
    else:
        _render_model(model_summary(model, args.context))


# --------------------------------------------------------------------------- compare
def cmd_compare(args: argparse.Namespace) -> None:
    models = [resolve_model(name, args.kv_dtype) for name in args.models]
    result = compare_models(models, args.context)
    if args.json:
        _print_json(result)
        return
    ctx = format_tokens(result["context_tokens"])
    table = Table(title=f"per sequence at {ctx} tokens ({result['context_tokens']:,})")
    for col in (
        "model",
        "KV cache",
        "fixed state",
        "KV vs first",
        "decode GFLOP/token",
        "FLOPs vs first",
        "weights",
    ):
        table.add_column(col, justify="right")
    notes = []
    for r in result["models"]:
        name = r["name"]
        if r["beyond_max_context"]:
            name += " *"
            notes.append(
                f"* {r['name']}: {ctx} is beyond its maximum context of "
                f"{format_tokens(r['max_context_tokens'])} tokens; shown hypothetically"
            )
        table.add_row(
            name,
            format_bytes(r["kv_bytes_per_sequence"]),
            format_bytes(r["state_bytes_per_sequence"]),
            _percent(r["kv_ratio_vs_first"]),
            f"{r['decode_flops_per_token'] / GFLOP:,.1f}",
            _percent(r["flops_ratio_vs_first"]),
            format_bytes(r["weight_bytes"]),
        )
    console.print(table)
    for note in notes:
        console.print(note)
    console.print(f"[dim]{result['ratio_basis']}[/dim]")


# --------------------------------------------------------------------------- plan
def _deployment(args: argparse.Namespace) -> Deployment:
    base: dict[str, Any] = {}
    if args.deployment:
        raw = read_document(args.deployment)
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(
                "a deployment file must be a mapping of Deployment fields", where=args.deployment
            )
        base = raw or {}
    flags = {
        "gpus_per_replica": args.gpus,
        "tensor_parallel": args.tp,
        "expert_parallel": args.ep,
        "kv_dtype": args.kv_dtype,
        "mtp": True if args.mtp else None,
    }
    merged = {**base, **{k: v for k, v in flags.items() if v is not None}}
    return validate(Deployment, merged, args.deployment or "command line")


def cmd_gpu_list(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    for name in gpu_names():
        p = load_gpu(name).profile
        rows.append(
            {
                "name": name,
                "display_name": p.display_name,
                "hbm_gib": p.hbm_gib,
                "hbm_bandwidth_tb_per_s": p.hbm_bandwidth_tb_per_s,
                "peak_tflop_per_s": {
                    k: v.peak_tflop_per_s for k, v in p.compute.items() if v.native
                },
                "usd_per_gpu_hour": p.price.default_usd_per_gpu_hour,
            }
        )
    if args.json:
        _print_json({"gpus": rows})
        return
    table = Table(title="GPU profiles (dense peaks)")
    for col in ("name", "HBM", "bandwidth", "peak TFLOP/s (native)", "price"):
        table.add_column(col)
    for r in rows:
        peaks = ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_tflop_per_s"].items())
        table.add_row(
            r["name"],
            f"{r['hbm_gib']:.1f} GiB",
            f"{r['hbm_bandwidth_tb_per_s']} TB/s",
            peaks,
            f"${r['usd_per_gpu_hour']:.2f}/GPU-hour",
        )
    console.print(table)


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
    dec, pre, cost = report["decode"], report["prefill"], report["cost"]
    console.print(
        f"fits: {'yes' if report['fits'] else 'NO'}; max concurrent sequences at "
        f"{dec['context_tokens']:,} tokens: {report['max_concurrent_sequences']:,}"
    )
    console.print(
        f"decode batch {dec['batch']}: step {dec['step_time_s'] * 1e3:,.2f} ms "
        f"({dec['bound']}-bound), TPOT {dec['tpot_s'] * 1e3:,.2f} ms, "
        f"{dec['tokens_per_s']:,.0f} tokens/s per replica "
        f"({dec['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU)"
    )
    console.print(
        f"prefill: {pre['tokens_per_s']:,.0f} tokens/s per replica, "
        f"TTFT {pre['ttft_s']:,.3f} s for a {pre['prompt_tokens']:,}-token prompt"
    )
    console.print(
        f"cost at ${cost['usd_per_gpu_hour']:.2f}/GPU-hour: "
        f"${_usd(cost['usd_per_million_input_tokens'])}/M input, "
        f"${_usd(cost['usd_per_million_output_tokens'])}/M output, "
        f"${_usd(cost['usd_per_million_cached_input_tokens'])}/M cached input; "
        f"${cost['usd_per_replica_month']:,.0f} per replica-month"
    )
    traffic = report.get("traffic")
    if traffic:
        console.print(
            f"traffic {traffic['requests_per_s']:g} req/s ({traffic['mean_input_tokens']:,} in / "
            f"{traffic['mean_output_tokens']:,} out, TPOT SLO {traffic['tpot_slo_s'] * 1e3:g} ms): "
            f"{traffic['replicas']} replicas = {traffic['gpus_total']} GPUs, "
            f"${traffic['usd_per_month']:,.0f}/month "
            f"(range ${traffic['usd_per_month_range'][0]:,.0f}-"
            f"${traffic['usd_per_month_range'][1]:,.0f})"
        )
        for api in traffic["api_list_prices"]:
            bill = api["usd_per_month"]
            shown = "n/a (price incomplete)" if bill is None else f"${bill:,.0f}/month"
            console.print(f"  API list price ({escape(api['label'])}): {shown}")


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4f}"


def cmd_plan(args: argparse.Namespace) -> None:
    deployed = Deployed.build(resolve_model(args.model), load_gpu(args.gpu), _deployment(args))
    report = plan_report(deployed, args.context, args.batch, args.output_tokens)
    if args.rate is not None:
        report["traffic"] = traffic_report(
            deployed,
            args.rate,
            args.input_tokens or args.context,
            args.output_tokens,
            args.tpot_slo_ms / 1e3,
        )
    _print_json(report) if args.json else _render_plan(report)


def cmd_frontier(args: argparse.Namespace) -> None:
    if args.contexts:
        contexts = np.array(
            sorted({parse_token_count(c, field="contexts") for c in args.contexts.split(",")})
        )
    else:
        contexts = log_spaced_contexts(args.min_context, args.max_context, args.points)
    deployment = _deployment(args)
    models = [resolve_model(m) for m in args.model]
    gpus = [load_gpu(g) for g in args.gpu]
    curves = frontier(
        models,
        gpus,
        deployment,
        contexts,
    )
    data = {
        "gpus_per_replica": deployment.gpus_per_replica,
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
        _print_json(data)
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


# --------------------------------------------------------------------------- simulate
class _LazyProgress:
    """A progress bar that appears only once a run has taken longer than a second."""

    SHOW_AFTER_S = 1.0

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, fraction: float) -> None:
        if self.progress is None:
            if time.perf_counter() - self.start < self.SHOW_AFTER_S:
                return
            self.progress = Progress(
                *Progress.get_default_columns(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=1.0)
        self.progress.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


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
    scenario = load_scenario(args.scenario)
    bar = _LazyProgress(f"simulating {scenario.name}")
    try:
        result = run_scenario(
            scenario, mode=args.mode, seed=args.seed, trace_path=args.trace, progress=bar
        )
    finally:
        bar.close()
    data = result.to_json()
    if args.json:
        text = json.dumps(data, indent=2, allow_nan=False)
        if args.json == "-":
            sys.stdout.write(text + "\n")
            return
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    _render_simulation(data)
    if args.json:
        console.print(f"summary written to {escape(args.json)}")


def cmd_cache_curve(args: argparse.Namespace) -> None:
    requests = load_mooncake(args.trace, block_tokens=args.block_size)
    capacities = [parse_token_count(c, field="capacity_tokens") for c in args.capacity_tokens]
    curve = cache_curve(requests, args.block_size, capacities)
    if args.json:
        _print_json(curve)
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


# --------------------------------------------------------------------------- parser
def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_kv_dtype(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kv-dtype",
        choices=KV_DTYPE_CHOICES,
        default=None,
        help="store the main attention cache in this dtype (default: the model's "
        "reference serving stack)",
    )


def _add_deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=None, help="GPUs per replica (default 8)")
    p.add_argument("--tp", type=int, default=None, help="attention tensor parallel size")
    p.add_argument("--ep", type=int, default=None, help="expert parallel size")
    p.add_argument("--mtp", action="store_true", help="MTP speculative decoding on")
    p.add_argument(
        "--deployment", default=None, help="YAML file with Deployment fields (flags override it)"
    )
    _add_kv_dtype(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvplan", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    model = sub.add_parser("model", help="inspect catalog models and import configs")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    p = model_sub.add_parser("list", help="list catalog models")
    _add_json(p)
    p.set_defaults(func=cmd_model_list)
    p = model_sub.add_parser("show", help="per-layer table of one model")
    p.add_argument("name", help="catalog name or path to a config.json")
    p.add_argument("--context", type=_tokens, default=None, help="also show KV at this context")
    _add_kv_dtype(p)
    _add_json(p)
    p.set_defaults(func=cmd_model_show)
    p = model_sub.add_parser("import", help="build a spec from a Hugging Face config.json")
    p.add_argument("config", help="path to config.json")
    p.add_argument("--name", default=None, help="name for the imported model")
    p.add_argument("--context", type=_tokens, default=None, help="also show KV at this context")
    _add_kv_dtype(p)
    _add_json(p)
    p.set_defaults(func=cmd_model_import)

    p = sub.add_parser("gpu", help="GPU profiles")
    gpu_sub = p.add_subparsers(dest="gpu_command", required=True)
    p = gpu_sub.add_parser("list", help="list GPU profiles")
    _add_json(p)
    p.set_defaults(func=cmd_gpu_list)

    p = sub.add_parser("plan", help="memory, concurrency, speed and cost of one replica")
    p.add_argument("--model", required=True, help="catalog name or config.json path")
    p.add_argument("--gpu", required=True, help="GPU profile name (kvplan gpu list)")
    _add_deployment_flags(p)
    p.add_argument("--context", type=_tokens, required=True, help="context length in tokens")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="decode batch (default: as many sequences as fit, up to max_num_seqs)",
    )
    p.add_argument(
        "--output-tokens",
        type=int,
        default=1024,
        help="mean output tokens per request (default 1024)",
    )
    p.add_argument(
        "--rate", type=float, default=None, help="size replicas for this many requests per second"
    )
    p.add_argument(
        "--input-tokens",
        type=_tokens,
        default=None,
        help="mean prompt tokens for --rate (default: --context)",
    )
    p.add_argument(
        "--tpot-slo-ms",
        type=float,
        default=50.0,
        help="time-per-output-token SLO for --rate (default 50 ms)",
    )
    _add_json(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("frontier", help="max concurrent sequences vs context")
    p.add_argument("--model", nargs="+", required=True, help="one or more models")
    p.add_argument("--gpu", nargs="+", required=True, help="one or more GPU profiles")
    _add_deployment_flags(p)
    p.add_argument("--contexts", default=None, help="comma-separated contexts, e.g. 8K,128K,1M")
    p.add_argument("--min-context", type=_tokens, default=1024)
    p.add_argument("--max-context", type=_tokens, default=2**20)
    p.add_argument(
        "--points", type=_positive_int, default=11, help="log-spaced points (default 11)"
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        nargs="*",
        default=[],
        help="also report the longest context at which C sequences fit, e.g. 1 16 256",
    )
    _add_json(p)
    p.set_defaults(func=cmd_frontier)

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
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--json", default=None, metavar="OUT", help="write the summary JSON to OUT ('-' for stdout)"
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("cache-curve", help="prefix-cache hit ratio vs capacity for a trace")
    p.add_argument("--trace", required=True, help="Mooncake JSONL trace")
    p.add_argument(
        "--block-size",
        type=_positive_int,
        default=512,
        help="tokens per hashed block (Mooncake: 512)",
    )
    p.add_argument(
        "--capacity-tokens",
        nargs="*",
        default=[],
        help="cache capacities in tokens, e.g. 1M 10M 100M",
    )
    _add_json(p)
    p.set_defaults(func=cmd_cache_curve)

    p = sub.add_parser("compare", help="KV, FLOPs and weights of models at one context")
    p.add_argument("models", nargs="+", help="catalog names or config.json paths")
    p.add_argument(
        "--context",
        type=_tokens,
        required=True,
        help="context length in tokens (128K = 131072, 1M = 1048576)",
    )
    _add_kv_dtype(p)
    _add_json(p)
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except KvplanError as err:
        if args.debug:
            raise
        print(f"kvplan: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
