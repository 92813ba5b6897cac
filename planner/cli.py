"""The `kvplan` command line: parse, call planner, print. No formulas here.

Every command prints a table by default and JSON with --json. User errors print one line
to stderr and exit 2; --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from planner.errors import KvplanError
from planner.model.catalog import catalog_names, load_spec
from planner.model.hf_import import spec_from_hf_file
from planner.model.model import Model
from planner.model.resolve import resolve_model
from planner.model.transform import with_model_kv_dtype
from planner.report.compare import compare_models
from planner.report.model_summary import model_summary
from planner.units import format_bytes, format_tokens, parse_token_count

EXIT_USER_ERROR = 2
KV_DTYPE_CHOICES = ("bf16", "fp8")
GFLOP = 1e9

# Tables keep their columns readable when piped (rich falls back to 80 columns otherwise).
PIPED_CONSOLE_WIDTH = 160
console = Console() if sys.stdout.isatty() else Console(width=PIPED_CONSOLE_WIDTH)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


def _tokens(text: str) -> int:
    try:
        return parse_token_count(text)
    except KvplanError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------- model
def cmd_model_list(args: argparse.Namespace) -> None:
    rows = []
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
