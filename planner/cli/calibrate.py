"""`kvplan calibrate`: fit kvplan to the user's own GPU and engine.

- ``--gpu NAME --out PROFILE.json``: microbenchmarks on this machine's GPU (PyTorch needed:
  ``pip install -e ".[calibrate]"``), or ``--from-raw RAW.json`` measured elsewhere with
  ``python -m planner.calibrate.measure`` (or a calibrated profile, refitted from its own
  measurements); writes the calibrated GPU profile and prints each curve's error on
  measurements its fit did not see, and all curves' held-out points pooled.
- ``--from-log LOG --gpu NAME --out TERMS.yaml``: the engine's memory terms from its
  start-up log; with ``--model`` (and the deployment's flags) it shows the KV pool kvplan
  plans with and without them against the log's.
- ``--from-bench RESULT.json ... --model M --gpu G``: serving-benchmark runs against
  kvplan's step times and a fitted correction, added to the terms file.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner.calibrate.bench import Correction, fit_correction, load_run, predict
from planner.calibrate.kernels import WITHIN, KernelCalibration
from planner.calibrate.profile import build_profile, load_measurements, write_profile
from planner.calibrate.raw import RawDocument, raw_from_data
from planner.calibrate.terms import (
    LAYOUT_FIELDS,
    load_terms,
    read_log,
    terms_from_data,
    terms_from_log,
    write_terms,
)
from planner.cli.common import (
    add_deployment_flags,
    add_json,
    console,
    deployment_from_args,
    print_json,
    token_arg,
)
from planner.errors import ConfigError, KvplanError
from planner.hardware import GPU, load_gpu
from planner.io import check_writable, write_text_atomic
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.memory import kv_pool_tokens, memory_budget
from planner.schema import Deployment
from planner.validation import validate


# --------------------------------------------------------------------------- GPU profile
def _measure(args: argparse.Namespace) -> RawDocument:
    try:
        from planner.calibrate import measure
    except ImportError as err:
        raise KvplanError(
            f"measuring needs PyTorch ({err.name or 'torch'} is not installed): "
            'pip install -e ".[calibrate]", or measure elsewhere with python -m '
            "planner.calibrate.measure and pass --from-raw"
        ) from None
    settings = measure.settings_from(args.quick, args.time_budget_s)
    raw = measure.measure(settings, progress=not args.json)
    if args.raw_out:
        import json

        write_text_atomic(args.raw_out, json.dumps(raw, indent=1) + "\n", field="--raw-out")
    return raw_from_data(raw, "measurements")


def _fit_table(gpu: GPU, calibration: KernelCalibration, device: str) -> Table:
    table = Table(title=f"fit quality on {device} (kvplan profile {gpu.name})")
    for col in ("curve", "points", "held out", "median err", "p90 err", "kernels"):
        table.add_column(col, justify="left" if col in ("curve", "kernels") else "right")
    for c in calibration.curves:
        r = c.result
        held = f"{r.held_out} ({r.folds}-fold CV)" if r.folds else str(r.held_out)
        table.add_row(
            c.name,
            str(r.points),
            held,
            f"{r.median_rel_err:.1%}",
            f"{r.p90_rel_err:.1%}",
            escape("; ".join(c.kernels))[:80],
        )
    pooled = calibration.held_out()
    if pooled is not None:
        table.add_section()
        table.add_row(
            "all curves, pooled",
            "",
            str(pooled.points),
            f"{pooled.median_rel_err:.1%}",
            f"{pooled.p90_rel_err:.1%}",
            f"{pooled.curves_within} of {pooled.curves} curves within {WITHIN:.0%} median",
        )
    return table


def _fit_summary(calibration: KernelCalibration) -> dict[str, Any]:
    curves = [
        {
            "curve": c.name,
            "points": c.result.points,
            "held_out": c.result.held_out,
            "cross_validation_folds": c.result.folds,
            "median_rel_err": round(c.result.median_rel_err, 4),
            "p90_rel_err": round(c.result.p90_rel_err, 4),
        }
        for c in calibration.curves
    ]
    pooled = calibration.held_out()
    held_out = None
    if pooled is not None:
        held_out = {
            "points": pooled.points,
            "median_rel_err": round(pooled.median_rel_err, 4),
            "p90_rel_err": round(pooled.p90_rel_err, 4),
            "curves_within_10pct": pooled.curves_within,
            "curves": pooled.curves,
        }
    return {
        "curves": curves,
        "held_out_pooled": held_out,
        "checks": [c.as_dict() for c in calibration.checks],
    }


def cmd_profile(args: argparse.Namespace) -> None:
    if not args.gpu or not args.out:
        raise ConfigError(
            "calibrating a GPU needs --gpu (the kvplan GPU profile of this GPU) and --out",
            field="--gpu" if not args.gpu else "--out",
        )
    gpu = load_gpu(args.gpu)
    check_writable(args.out, field="--out")
    if args.raw_out:
        check_writable(args.raw_out, field="--raw-out")
    raw = load_measurements(args.from_raw) if args.from_raw else _measure(args)
    doc, calibration = build_profile(raw, gpu, args.engine or "vllm")
    write_profile(args.out, doc)
    summary = {
        "profile": str(args.out),
        "gpu": gpu.name,
        "measured_device": raw.device_name,
        "measurements": len(raw.measurements),
        "skipped": len(raw.skipped),
        "collectives_measured": raw.collectives.measured,
        **_fit_summary(calibration),
        "notes": doc["notes"],
    }
    if args.json:
        print_json(summary)
        return
    console.print(_fit_table(gpu, calibration, raw.device_name))
    for check in calibration.checks:
        console.print(
            f"not fitted, {escape(check.curve)}: {escape(check.what)}: measured / curve "
            f"median {check.median_ratio:.2f} (p10 {check.p10_ratio:.2f}, p90 "
            f"{check.p90_ratio:.2f}); {escape(check.reason)}"
        )
    for note in doc["notes"]:
        console.print(escape(note))
    console.print(
        f"{len(raw.measurements)} measurements ({len(raw.skipped)} skipped) -> "
        f"{escape(str(args.out))}"
    )


# --------------------------------------------------------------------------- engine terms
def _log_check(args: argparse.Namespace, doc: dict[str, Any], gpu: GPU) -> dict[str, Any]:
    """kvplan's KV pool for the deployment with and without the terms, against the log."""
    model = resolve_model(args.model)
    base = deployment_from_args(args)
    given = base.model_dump(exclude_unset=True)
    setup = {k: v for k, v in doc["deployment"].items() if k in LAYOUT_FIELDS}
    without = validate(Deployment, {**setup, **given}, "command line")
    with_terms = validate(Deployment, {**doc["deployment"], **given}, "command line")
    logged = doc["logged"]
    context = args.context or logged.get("max_model_len")
    if not context:
        raise ConfigError(
            "the log does not give max_model_len: pass --context to compare the KV pool",
            field="--context",
        )
    out: dict[str, Any] = {"context_tokens": int(context)}
    for label, d in (("without_terms", without), ("with_terms", with_terms)):
        deployed = Deployed.build(model, gpu, d)
        budget = memory_budget(deployed)
        out[label] = {
            "kv_pool_gib": round(budget.kv_pool_bytes / 2**30, 4),
            "kv_pool_tokens": int(kv_pool_tokens(deployed, int(context), budget)),
            "weights_gib": round(budget.weights_bytes / 2**30, 4),
        }
    log_tokens = logged.get("kv_pool_tokens")
    deployed = Deployed.build(model, gpu, with_terms)
    all_gqa = all(kind.label in ("GQA", "MHA") for kind, _ in deployed.model.attention_groups)
    if log_tokens is None and logged.get("kv_blocks") and all_gqa:
        # vLLM V0 logs blocks; a GQA block holds the engine's block size in tokens.
        log_tokens = int(logged["kv_blocks"]) * deployed.engine.blocks.gqa_tokens
    out["log_kv_pool_tokens"] = log_tokens
    out["log_kv_gib"] = logged.get("available_kv_gib", logged.get("kv_gib"))
    if log_tokens:
        for label in ("without_terms", "with_terms"):
            out[label]["ratio_to_log"] = round(out[label]["kv_pool_tokens"] / log_tokens, 4)
    return out


def _bench(
    args: argparse.Namespace, doc: dict[str, Any] | None, gpu: GPU
) -> tuple[Correction, Deployed]:
    if not args.model:
        raise ConfigError(
            "--from-bench needs --model (and the deployment's flags)", field="--model"
        )
    runs = [load_run(path) for path in args.from_bench]
    deployment = deployment_from_args(args)
    if doc is not None:
        given = deployment.model_dump(exclude_unset=True)
        fields = {k: v for k, v in doc["deployment"].items() if k not in ("step_time_scale",)}
        fields.pop("step_overhead_ms", None)
        deployment = validate(Deployment, {**fields, **given}, "command line")
    deployed = Deployed.build(resolve_model(args.model), gpu, deployment)
    return fit_correction(predict(deployed, runs)), deployed


def _correction_entry(
    corr: Correction, tokens_per_step: float, benches: list[str]
) -> dict[str, Any]:
    return {
        "step_time_scale": round(corr.scale, 4),
        "step_overhead_ms": round(corr.overhead_s * tokens_per_step * 1e3, 4),
        "runs": len(corr.checks),
        "median_abs_err_before": round(corr.err_before, 4),
        "median_abs_err_after": round(corr.err_after, 4),
        "error_method": corr.method,
        "benchmark": ", ".join(benches)[:300],
    }


def _empty_terms(engine: str, gpu: GPU) -> dict[str, Any]:
    day = datetime.date.today().isoformat()
    source = f"serving benchmark (imported {day})"
    return {
        "kind": "kvplan-engine-terms",
        "engine": engine,
        "gpu": gpu.name,
        "source": source,
        "deployment": {"engine": engine, "terms_source": source},
        "sources": {
            "kind": "kvplan engine-terms format (planner/calibrate/terms.py)",
            "engine": "the --engine of the benchmarked deployment",
            "gpu": "the --gpu argument",
            "source": "the benchmark files and the import date",
            "deployment": "fitted by kvplan calibrate --from-bench (planner/calibrate/bench.py)",
        },
    }


def cmd_terms(args: argparse.Namespace) -> None:
    if not args.gpu:
        raise ConfigError(
            "--from-log / --from-bench need --gpu (the GPU the engine ran on)", field="--gpu"
        )
    gpu = load_gpu(args.gpu)
    if args.out:
        check_writable(args.out, field="--out")
    doc: dict[str, Any] | None = None
    if args.from_log:
        doc = terms_from_log(
            read_log(args.from_log), Path(args.from_log).name, gpu, engine_name=args.engine
        )
    elif args.engine_terms:
        doc = load_terms(args.engine_terms).model_dump(mode="json", exclude_none=True)
    result: dict[str, Any] = {}
    if args.from_log and args.model:
        result["kv_pool_check"] = _log_check(args, doc or {}, gpu)
    if args.from_bench:
        corr, deployed = _bench(args, doc, gpu)
        if doc is None:
            doc = _empty_terms(deployed.deployment.engine, gpu)
        entry = _correction_entry(
            corr, deployed.tokens_per_step_per_sequence, [Path(p).name for p in args.from_bench]
        )
        doc["step_correction"] = entry
        doc["sources"]["step_correction"] = (
            "fitted by kvplan calibrate --from-bench to the runs' mean time per output token "
            "(planner/calibrate/bench.py)"
        )
        doc["deployment"]["step_time_scale"] = entry["step_time_scale"]
        doc["deployment"]["step_overhead_ms"] = entry["step_overhead_ms"]
        result["benchmark"] = {
            **entry,
            "runs_detail": [
                {
                    "run": c.run.source,
                    "concurrency": c.batch,
                    "context_tokens": c.context_tokens,
                    "measured_tpot_ms": round(c.measured_s * 1e3, 3),
                    "kvplan_tpot_ms": round(c.predicted_s * 1e3, 3),
                    "corrected_tpot_ms": round(after * 1e3, 3),
                }
                for c, after in zip(corr.checks, corr.after_s, strict=True)
            ],
        }
    assert doc is not None
    terms_from_data(doc, "engine terms")  # what is written is valid
    if args.out:
        write_terms(args.out, doc)
    result["terms"] = doc
    if args.json:
        print_json(result)
        return
    _render_terms(result, args.out)


def _render_terms(result: dict[str, Any], out: str | None) -> None:
    doc = result["terms"]
    console.print(f"[bold]{escape(doc['source'])}[/bold]")
    if doc.get("logged"):
        table = Table(title="read from the log")
        table.add_column("term")
        table.add_column("value", justify="right")
        table.add_column("line")
        for key, value in doc["logged"].items():
            table.add_row(
                key,
                f"{value:g}" if isinstance(value, float) else str(value),
                escape(doc.get("lines", {}).get(key, ""))[:90],
            )
        console.print(table)
    console.print(
        "deployment fields: "
        + escape(", ".join(f"{k}={v}" for k, v in doc["deployment"].items() if k != "terms_source"))
    )
    for note in doc.get("assumed", []) + list(doc.get("notes", [])):
        console.print(f"  note: {escape(note)}")
    check = result.get("kv_pool_check")
    if check:
        log = check["log_kv_pool_tokens"]
        for label in ("without_terms", "with_terms"):
            row = check[label]
            ratio = f" ({row['ratio_to_log']:.1%} of the log)" if "ratio_to_log" in row else ""
            console.print(
                f"KV pool {label.replace('_', ' ')}: {row['kv_pool_tokens']:,} tokens, "
                f"{row['kv_pool_gib']:.2f} GiB per GPU{ratio}"
            )
        if log:
            console.print(f"the log: {log:,} tokens at max_model_len {check['context_tokens']:,}")
    bench = result.get("benchmark")
    if bench:
        table = Table(title="time per output token: benchmark vs kvplan")
        for col in ("run", "concurrency", "context", "measured ms", "kvplan ms", "corrected ms"):
            table.add_column(col, justify="left" if col == "run" else "right")
        for r in bench["runs_detail"]:
            table.add_row(
                escape(r["run"]),
                str(r["concurrency"]),
                f"{r['context_tokens']:,}",
                f"{r['measured_tpot_ms']:.2f}",
                f"{r['kvplan_tpot_ms']:.2f}",
                f"{r['corrected_tpot_ms']:.2f}",
            )
        console.print(table)
        console.print(
            f"correction: step times x{bench['step_time_scale']:.3f} + "
            f"{bench['step_overhead_ms']:.3f} ms per step; median error "
            f"{bench['median_abs_err_before']:.1%} before, {bench['median_abs_err_after']:.1%} "
            f"after ({escape(bench['error_method'])})"
        )
    if out:
        console.print(f"-> {escape(out)} (use it with --engine-terms)")


def cmd_calibrate(args: argparse.Namespace) -> None:
    if args.from_log or args.from_bench:
        cmd_terms(args)
    else:
        cmd_profile(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit kvplan to your GPU (microbenchmarks) or your engine (start-up log, benchmark)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--gpu", default=None, help="kvplan GPU profile of the GPU measured / logged")
    p.add_argument("--out", default=None, help="file to write (profile .json/.yaml, terms .yaml)")
    g = p.add_argument_group("GPU profile")
    g.add_argument("--quick", action="store_true", help="a smaller grid (about a minute)")
    g.add_argument("--time-budget-s", type=float, default=None, help="bound on measuring time")
    g.add_argument(
        "--from-raw",
        default=None,
        metavar="RAW.json",
        help="fit measurements taken with python -m planner.calibrate.measure instead of "
        "measuring here, or refit a calibrated profile's own measurements (prints the "
        "error on the points each fit did not see)",
    )
    g.add_argument("--raw-out", default=None, metavar="RAW.json", help="also keep the raw JSON")
    e = p.add_argument_group("engine terms")
    e.add_argument("--from-log", default=None, metavar="LOG", help="vLLM or SGLang start-up log")
    e.add_argument(
        "--from-bench",
        nargs="+",
        default=None,
        metavar="RESULT.json",
        help="serving-benchmark results (vllm bench serve --save-result, AIPerf)",
    )
    e.add_argument(
        "--engine-terms",
        default=None,
        metavar="FILE",
        help="with --from-bench: start from these terms",
    )
    e.add_argument("--model", default=None, help="model of the deployment (catalog or config)")
    e.add_argument(
        "--context",
        type=token_arg,
        default=None,
        help="max_model_len for the KV-pool check (default: the log's)",
    )
    add_deployment_flags(p)
    add_json(p)
    p.set_defaults(func=cmd_calibrate)
