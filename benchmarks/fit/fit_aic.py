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

from gemm import fit_gemm  # noqa: E402
from tables import AIC_PACKAGE, ENGINE_VERSIONS, SYSTEM_TO_GPU, aic_version  # noqa: E402

from planner.hardware import load_gpu  # noqa: E402
from planner.plan.efficiency.load import fits_from_file  # noqa: E402

SECTIONS = [("gemm", fit_gemm)]
SCRIPT = "benchmarks/fit/fit_aic.py"


def fit_one(system: str, engine: str) -> tuple[dict, list[tuple]]:
    gpu = load_gpu(SYSTEM_TO_GPU[system])
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
    quality: list[tuple] = []
    for key, section in SECTIONS:
        entries, rows, version = section(system, engine, gpu)
        if entries:
            doc[key] = entries
            sources[key] = (
                f"fitted by {SCRIPT} to AIConfigurator {aic_version()} {system} {key} tables "
                f"({engine} {version}); per-curve table, rows and held-out error under 'fit'"
            )
            quality += rows
    doc["sources"] = sources
    doc["notes"] = [
        "Efficiencies are fractions of the kvplan GPU profile's dense peaks; fixed times "
        "in microseconds. Fitted on 80% of each table, errors on the other 20%.",
    ]
    return doc, quality


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEM_TO_GPU))
    parser.add_argument("--engines", nargs="+", default=list(ENGINE_VERSIONS))
    parser.add_argument("--out", type=Path, default=REPO / "hardware_profiles" / "fits")
    parser.add_argument("--check", action="store_true", help="print fit quality, write nothing")
    args = parser.parse_args()
    print(
        f"{'gpu':10} {'engine':7} {'curve':26} {'points':>7} {'held':>6} {'median':>7} {'p90':>7}"
    )
    for system in args.systems:
        for engine in args.engines:
            doc, quality = fit_one(system, engine)
            for name, f in quality:
                print(
                    f"{doc['gpu']:10} {engine:7} {name:26} {f.points:7d} {f.held_out:6d} "
                    f"{f.median_rel_err:7.1%} {f.p90_rel_err:7.1%}"
                )
            if args.check or not quality:
                continue
            path = args.out / doc["gpu"] / f"{engine}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = (
                f"# Written by {SCRIPT} from AIConfigurator {aic_version()} measured tables; "
                "do not edit by hand.\n"
            )
            tmp = path.with_suffix(".tmp")
            tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
            tmp.replace(path)
            fits_from_file(path)  # validate what was written
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
