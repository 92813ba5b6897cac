"""`kvplan model list|show|import`, `kvplan compare` and `kvplan gpu list`."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from planner.cli.common import (
    GFLOP,
    add_json,
    add_kv_dtype,
    console,
    percent,
    print_json,
    token_arg,
)
from planner.hardware import gpu_names, load_gpu
from planner.model.catalog import catalog_names, load_spec
from planner.model.hf_import import spec_from_hf_file
from planner.model.model import Model
from planner.model.resolve import resolve_model
from planner.model.transform import with_model_kv_dtype
from planner.report.compare import compare_models
from planner.report.model_summary import model_summary
from planner.units import format_bytes, format_tokens


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
        print_json({"models": rows})
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
    if summary.get("beyond_max_context"):
        console.print(
            f"note: {format_tokens(summary['context_tokens'])} is beyond the model's maximum "
            f"context of {format_tokens(summary['max_context_tokens'])} tokens; shown "
            "hypothetically"
        )
    for note in summary["notes"]:
        console.print(f"note: {note}")


def cmd_model_show(args: argparse.Namespace) -> None:
    model = resolve_model(args.name, args.kv_dtype)
    summary = model_summary(model, args.context)
    print_json(summary) if args.json else _render_model(summary)


def cmd_model_import(args: argparse.Namespace) -> None:
    spec = spec_from_hf_file(args.config, name=args.name)
    if args.kv_dtype:
        spec = with_model_kv_dtype(spec, args.kv_dtype)
    model = Model(spec)
    if args.json:
        print_json(
            {"spec": spec.model_dump(mode="json"), "summary": model_summary(model, args.context)}
        )
    else:
        _render_model(model_summary(model, args.context))


# --------------------------------------------------------------------------- compare
def cmd_compare(args: argparse.Namespace) -> None:
    models = [resolve_model(name, args.kv_dtype) for name in args.models]
    result = compare_models(models, args.context)
    if args.json:
        print_json(result)
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
            percent(r["kv_ratio_vs_first"]),
            f"{r['decode_flops_per_token'] / GFLOP:,.1f}",
            percent(r["flops_ratio_vs_first"]),
            format_bytes(r["weight_bytes"]),
        )
    console.print(table)
    for note in notes:
        console.print(note)
    console.print(f"[dim]{result['ratio_basis']}[/dim]")


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
        print_json({"gpus": rows})
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = sub.add_parser("model", help="inspect catalog models and import configs")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    p = model_sub.add_parser("list", help="list catalog models")
    add_json(p)
    p.set_defaults(func=cmd_model_list)
    p = model_sub.add_parser("show", help="per-layer table of one model")
    p.add_argument("name", help="catalog name or path to a config.json")
    p.add_argument("--context", type=token_arg, default=None, help="also show KV at this context")
    add_kv_dtype(p)
    add_json(p)
    p.set_defaults(func=cmd_model_show)
    p = model_sub.add_parser("import", help="build a spec from a Hugging Face config.json")
    p.add_argument("config", help="path to config.json")
    p.add_argument("--name", default=None, help="name for the imported model")
    p.add_argument("--context", type=token_arg, default=None, help="also show KV at this context")
    add_kv_dtype(p)
    add_json(p)
    p.set_defaults(func=cmd_model_import)

    p = sub.add_parser("gpu", help="GPU profiles")
    gpu_sub = p.add_subparsers(dest="gpu_command", required=True)
    p = gpu_sub.add_parser("list", help="list GPU profiles")
    add_json(p)
    p.set_defaults(func=cmd_gpu_list)

    p = sub.add_parser("compare", help="KV, FLOPs and weights of models at one context")
    p.add_argument("models", nargs="+", help="catalog names or config.json paths")
    p.add_argument(
        "--context",
        type=token_arg,
        required=True,
        help="context length in tokens (128K = 131072, 1M = 1048576)",
    )
    add_kv_dtype(p)
    add_json(p)
    p.set_defaults(func=cmd_compare)
