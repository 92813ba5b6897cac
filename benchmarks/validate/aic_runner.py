"""Run NVIDIA AIConfigurator's static estimates for a list of cases (runs in AIC's own env).

    <aic-python> benchmarks/validate/aic_runner.py CASES.json OUT.json

CASES.json: a list of {"key", "model_path", "system", "engine", "mode" (static_gen |
static_ctx), "tp", "dp", "ep", "batch" (per attention-DP rank), "isl", "osl"}. OUT.json
gets {"aiconfigurator_version", "cases": {key: result}} where a result holds the TPOT or
TTFT in ms, the quantisation AIConfigurator chose, its per-operation latencies (ms per
step, all layers) and any warning, or {"error": message}. Existing results in OUT.json are
kept (the run resumes). Only AIConfigurator's public API (aiconfigurator.cli.api) is called.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

SAVE_EVERY = 5


def estimate(case: dict[str, Any]) -> dict[str, Any]:
    from aiconfigurator.cli.api import cli_estimate

    moe = {} if case["ep"] is None else {"moe_tp_size": 1, "moe_ep_size": case["ep"]}
    result = cli_estimate(
        case["model_path"],
        case["system"],
        mode=case["mode"],
        backend_name=case["engine"],
        tp_size=case["tp"],
        attention_dp_size=case["dp"],
        batch_size=case["batch"],
        isl=case["isl"],
        osl=case["osl"],
        **moe,
    )
    summary = result.summary
    if case["mode"] == "static_gen":
        ops = summary.get_generation_latency_dict()
    else:
        ops = summary.get_context_latency_dict()
    raw = result.raw
    return {
        "tpot_ms": float(result.tpot),
        "ttft_ms": float(result.ttft),
        "backend_version": result.backend_version,
        "quant": {k: str(raw.get(k)) for k in ("gemm", "kvcache", "fmha", "moe", "comm")},
        "ops_ms": {k: float(v) for k, v in ops.items()},
        "warning": result.kv_cache_warning,
    }


def main() -> int:
    cases = json.loads(Path(sys.argv[1]).read_text())
    out_path = Path(sys.argv[2])
    logging.disable(logging.WARNING)
    doc: dict[str, Any] = {"cases": {}}
    if out_path.is_file():
        doc = json.loads(out_path.read_text())
    doc["aiconfigurator_version"] = metadata.version("aiconfigurator")
    done = 0
    for case in cases:
        if case["key"] in doc["cases"]:
            continue
        try:
            doc["cases"][case["key"]] = estimate(case)
        except Exception as err:
            doc["cases"][case["key"]] = {"error": str(err).splitlines()[0][:300]}
        done += 1
        print(f"{done:4d} {case['key']}", flush=True)
        if done % SAVE_EVERY == 0:
            _save(out_path, doc)
    _save(out_path, doc)
    return 0


def _save(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
