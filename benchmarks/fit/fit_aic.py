"""Fit kvplan's kernel-efficiency curves to AIConfigurator's silicon-measured tables.

Runs in its own environment (AIConfigurator pins its own dependencies):

    python3.11 -m venv .venv-aic && .venv-aic/bin/pip install aiconfigurator==0.12.0
    .venv-aic/bin/pip install -e . --no-deps    # kvplan itself, for its curve forms
    .venv-aic/bin/python benchmarks/fit/fit_aic.py            # writes hardware_profiles/fits
    .venv-aic/bin/python benchmarks/fit/fit_aic.py --check    # prints fit quality only

For each system (H100, H200, B200) and engine (TensorRT-LLM, vLLM, SGLang) it fits every
curve kvplan has data for on 80% of the table's rows and prints the median and 90th
percentile relative error on the held-out 20%. The result files
(``hardware_profiles/fits/<gpu>/<engine>.yaml``) record the table, the rows used, the
package and engine versions and the fit quality of every curve. ``planner/`` never imports
this script.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from attention import fit_attention, fit_attention_by_kv_cache  # noqa: E402
from comm import fit_collectives, fit_elementwise  # noqa: E402
from gemm import fit_gemm  # noqa: E402
from moe import fit_moe, fit_moe_shapes  # noqa: E402
from tables import AIC_PACKAGE, ENGINE_VERSIONS, SYSTEM_TO_GPU, aic_version  # noqa: E402

from planner.hardware import load_gpu  # noqa: E402
from planner.plan.efficiency import load as fit_files  # noqa: E402
from planner.plan.efficiency.load import fits_from_file  # noqa: E402

# Stage 1 curves are fitted to kernel tables alone; stage 2 (attention) also reads module
# tables, where kvplan's stage-1 curves time the projections inside the module.
STAGES = [
    [
        ("gemm", fit_gemm),
        ("grouped_gemm", fit_moe),
        ("grouped_gemm_by_shape", fit_moe_shapes),
        ("elementwise", fit_elementwise),
        ("collectives", fit_collectives),
    ],
    [("attention", fit_attention), ("attention_by_kv_cache", fit_attention_by_kv_cache)],
]
SCRIPT = "benchmarks/fit/fit_aic.py"


def _header() -> str:
    return (
        f"# Written by {SCRIPT} from AIConfigurator {aic_version()} measured tables; "
        "do not edit by hand.\n"
    )


def _in_order_of(new: dict, old: dict) -> dict:
    """``new`` with the keys ``old`` has first, in its order."""
    return {**{k: new[k] for k in old if k in new}, **new}


def write(doc: dict, out: Path, kept: dict | None = None) -> Path:
    """Write one fit file (keys in the order of ``kept``, the file as it was, so refitting
    a few sections leaves the rest of the file where it was)."""
    if kept:
        doc = _in_order_of(doc, kept)
        doc["sources"] = _in_order_of(doc["sources"], kept.get("sources", {}))
    path = out / doc["gpu"] / f"{doc['engine']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_header() + yaml.safe_dump(doc, sort_keys=False, width=100))
    tmp.replace(path)
    fits_from_file(path)  # validate what was written
    return path


def reload_fits(gpu: object) -> None:
    """Forget loaded fit files so the next stage sees the ones just written."""
    fit_files._load.cache_clear()
    gpu.__dict__.pop("_kvplan_efficiency", None)


def fit_one(
    system: str, engine: str, out: Path, check: bool, only: set[str] | None = None
) -> tuple[dict, list[tuple]]:
    gpu = load_gpu(SYSTEM_TO_GPU[system])
    existing = out / gpu.name / f"{engine}.yaml"
    kept: dict = {}
    if only and existing.is_file():
        kept = yaml.safe_load(existing.read_text())
    doc: dict = {
        "gpu": gpu.name,
        "engine": engine,
        "provenance": {
            "package": AIC_PACKAGE,
            "package_version": aic_version(),
            "system": system,
            "engine_version": ENGINE_VERSIONS[engine],
            "fitted_on": datetime.date.today().isoformat(),
            "script": SCRIPT,
        },
    }
    sources: dict[str, str] = {
        "gpu": "kvplan GPU profile the measured system corresponds to",
        "engine": "serving engine the tables were measured under",
        "provenance": f"AIConfigurator {aic_version()} (pip {AIC_PACKAGE}), measured tables "
        f"aiconfigurator_core/systems/data/{system}/",
    }
    for key in (
        "gemm",
        "grouped_gemm",
        "grouped_gemm_by_shape",
        "elementwise",
        "collectives",
        "attention",
        "attention_by_kv_cache",
    ):
        if only and key not in only and key in kept:  # refit only some sections
            doc[key] = kept[key]
            sources[key] = kept["sources"][key]
    doc["sources"] = sources
    doc["notes"] = [
        "Efficiencies are fractions of the kvplan GPU profile's dense peaks; fixed times "
        "in microseconds. Fitted on 80% of each table, errors on the other 20%.",
    ]
    quality: list[tuple] = []
    original = out / gpu.name / f"{engine}.yaml"
    saved = original.read_text() if original.is_file() else None
    try:
        for stage in STAGES:
            for key, section in stage:
                if only and key not in only:
                    continue
                entries, rows, version = section(system, engine, gpu)
                if entries:
                    doc[key] = entries
                    sources[key] = (
                        f"fitted by {SCRIPT} to AIConfigurator {aic_version()} {system} {key} "
                        f"tables ({engine} {version}); per-curve table, rows and held-out "
                        "error under 'fit'"
                    )
                    quality += rows
            if "gemm" in doc:
                write(doc, out, kept)
                reload_fits(gpu)
    finally:
        if check:  # leave the shipped file as it was
            if saved is None:
                original.unlink(missing_ok=True)
            else:
                original.write_text(saved)
            reload_fits(gpu)
    return doc, quality


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEM_TO_GPU))
    parser.add_argument("--engines", nargs="+", default=list(ENGINE_VERSIONS))
    parser.add_argument("--out", type=Path, default=REPO / "hardware_profiles" / "fits")
    parser.add_argument("--check", action="store_true", help="print fit quality, write nothing")
    parser.add_argument(
        "--only", nargs="+", help="refit these sections, keep the others from the files"
    )
    args = parser.parse_args()
    print(
        f"{'gpu':10} {'engine':7} {'curve':26} {'points':>7} {'held':>6} {'median':>7} {'p90':>7}"
    )
    for system in args.systems:
        for engine in args.engines:
            only = set(args.only) if args.only else None
            doc, quality = fit_one(system, engine, args.out, args.check, only)
            for name, f in quality:
                print(
                    f"{doc['gpu']:10} {engine:7} {name:34} {f.points:7d} {f.held_out:6d} "
                    f"{f.median_rel_err:7.1%} {f.p90_rel_err:7.1%}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
