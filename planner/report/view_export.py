"""The dashboard view as scenarios for the simulator: one scenario per (model, GPU) of the
view, each with the replica count the plan chose for the view's traffic.

What a scenario carries, so that simulating it reproduces the view:
- the deployment: GPUs per replica, attention TP, expert parallel, engine, KV dtype;
- ``replicas``: the plan's replica count for that model and GPU (``traffic_report``);
- Poisson arrivals at the view's rate; one class per reasoning mode with a non-zero share,
  each with the view's typed prompt and answer tokens as constants and the SLOs;
- the reasoning modes' token distributions written out (kvplan's defaults, so the file
  does not change meaning if the defaults do);
- a prefix hit ratio R as a shared system prompt of R x the prompt, rounded down to whole
  ``block_tokens`` blocks (the part of a prompt the simulator can find in its prefix cache);
- the paged-KV block size of the plan (``Deployment.kv_block_tokens``), so the simulator
  admits the sequences the plan counted.

The download is a zip (whatever the number of pairs, so it always has the same shape):
``kvplan-view/<model>-on-<gpu>.yaml`` for each pair, the uploaded models' config.json under
``kvplan-view/models/`` (a scenario names its model by that relative path), and a
README.txt with the plan of each pair (and why a pair has none). Every scenario runs with
``kvplan simulate kvplan-view/<file>.yaml``; the Simulate page takes the zip as it is.

What it cannot carry: a $/GPU-hour typed in the dashboard (a scenario prices GPUs from the
profile), said in each file's header.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner.report.views import ViewConfig, best_plan
from planner.schema import DEFAULT_REASONING_MODES, Deployment, Scenario
from planner.units import format_tokens

EXPORT_TARGET_ARRIVALS = 6000  # arrivals per scenario at the view's rate...
EXPORT_MIN_DURATION_S = 60.0  # ...but at least a minute of arrivals
EXPORT_MAX_DURATION_S = 300.0  # ...and at most five minutes
EXPORT_DRAIN_S = 60.0
BUNDLE_FOLDER = "kvplan-view"


@dataclass(frozen=True)
class ViewScenario:
    """One (model, GPU) of the view as a scenario document, with the plan it carries."""

    model: str
    gpu: str
    file_name: str
    document: dict[str, Any]
    planned: dict[str, Any]  # the cost row: replicas, planned TTFT/TPOT, $/month

    def scenario(self, config: ViewConfig) -> Scenario:
        """The validated scenario, its model resolved to what the dashboard uses (an
        uploaded model's stored config.json), with the view's calibrated GPU profile (the
        file a download writes does not carry it)."""
        doc = {**self.document, "model": config.model_source(self.model)}
        scenario = Scenario.model_validate(doc)
        if config.gpu_calibration is None:
            return scenario
        return scenario.with_gpu_calibration(config.gpu_calibration)


def slug(text: str) -> str:
    """A file-name-safe form of a label: lower case letters, digits, '.' and '-'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def export_duration_s(requests_per_s: float) -> float:
    """Seconds of arrivals: about EXPORT_TARGET_ARRIVALS, within [1, 5] minutes."""
    wanted = EXPORT_TARGET_ARRIVALS / requests_per_s
    return min(EXPORT_MAX_DURATION_S, max(EXPORT_MIN_DURATION_S, wanted))


def _layout(config: ViewConfig, model: str, gpu: str, replicas: int) -> dict[str, Any]:
    """The scenario's layout fields: the sidebar's deployment, or (attention TP on auto)
    the best plan's, its pools under ``disaggregation`` when it has two."""
    plan = best_plan(config, model, gpu)
    if plan is None:
        return {"deployment": _deployment(config.deployment()), "replicas": replicas}
    pools = [
        {"replicas": p.replicas, "deployment": _deployment(p.layout.deployment)} for p in plan.pools
    ]
    if len(pools) == 1:
        return pools[0]
    return {"disaggregation": {"prefill": pools[0], "decode": pools[1]}}


def _deployment(d: Deployment) -> dict[str, Any]:
    """A deployment, every layout field written (not only non-defaults)."""
    out: dict[str, Any] = {
        "engine": d.engine,
        "gpus_per_replica": d.gpus_per_replica,
        "tensor_parallel": d.tp,
        "expert_parallel": d.ep,
    }
    if d.kv_dtype is not None:
        out["kv_dtype"] = d.kv_dtype
    for name in ("mtp", "overlap_micro_batches", "eplb"):
        if getattr(d, name):
            out[name] = True
    if d.mtp:
        out["mtp_acceptance_rate"] = d.mtp_acceptance_rate
    return out


def _dist(spec: Any) -> dict[str, Any]:
    return {k: v for k, v in spec.model_dump().items() if v is not None}


def _workload(config: ViewConfig, block_tokens: int) -> dict[str, Any]:
    shared = int(config.prefix_hit_ratio * config.input_tokens) // block_tokens * block_tokens
    own = max(1, config.input_tokens - shared)
    classes = []
    modes: dict[str, Any] = {}
    for mode, share in config.mix.items():
        if share <= 0:
            continue
        spec = DEFAULT_REASONING_MODES[mode]
        modes[mode] = {
            "reasoning_tokens": _dist(spec.reasoning_tokens),
            "extra_system_prompt_tokens": spec.extra_system_prompt_tokens,
        }
        cls: dict[str, Any] = {
            "name": mode,
            "share": round(share, 6),
            "reasoning_mode": mode,
            "input_tokens": {"kind": "constant", "value": own},
            "output_tokens": {"kind": "constant", "value": config.answer_tokens},
            "slo": {"ttft_s": config.ttft_slo_s, "tpot_s": config.tpot_slo_ms / 1e3},
        }
        if shared:
            cls["system_prompt_tokens"] = shared
        classes.append(cls)
    return {
        "arrival": {"kind": "poisson", "rate_per_s": config.requests_per_s},
        "reasoning_modes": modes,
        "classes": classes,
    }


def view_scenarios(config: ViewConfig, cost: list[dict[str, Any]]) -> list[ViewScenario]:
    """A scenario for every (model, GPU) the plan could size (rows of ``cost_rows``)."""
    block_tokens = Deployment().kv_block_tokens
    out: list[ViewScenario] = []
    names: set[str] = set()
    for row in cost:
        if row.get("replicas") is None:
            continue
        model, gpu = row["model"], row["gpu"]
        name = f"{slug(model)}-on-{slug(gpu)}"
        while name in names:
            name += "-2"
        names.add(name)
        custom = model in dict(config.custom_models)
        document = {
            "name": name,
            "description": f"{model} on {row['replicas']} x ({config.gpus_per_replica} x "
            f"{gpu}): the kvplan dashboard view",
            "model": f"models/{slug(model)}.json" if custom else model,
            "gpu": gpu,
            **_layout(config, model, gpu, int(row["replicas"])),
            "duration_s": export_duration_s(config.requests_per_s),
            "drain_s": EXPORT_DRAIN_S,
            "seed": 0,
            "block_tokens": block_tokens,
            "prefix_cache": {"enabled": config.prefix_hit_ratio > 0},
            "workload": _workload(config, block_tokens),
        }
        out.append(ViewScenario(model, gpu, f"{name}.yaml", document, row))
    return out


def _header(config: ViewConfig, vs: ViewScenario, link: str) -> str:
    p = vs.planned
    price = config.gpu_price(vs.gpu)
    lines = [
        f"Exported from the kvplan dashboard: {vs.model} on {vs.gpu}, one scenario of the view",
        *([f"  {link}"] if link else []),
        f"Plan for the view's traffic: {p['replicas']} x ({config.gpus_per_replica} x "
        f"{vs.gpu}) = {p['gpus_total']} GPUs, TTFT {p['planned_ttft_s']:.3f} s, "
        f"TPOT {p['planned_tpot_ms']:.1f} ms, ${p['usd_per_month']:,.0f}/month.",
        f"Traffic: {config.requests_per_s:g} requests/s, {format_tokens(config.input_tokens)} "
        f"prompt + {format_tokens(config.answer_tokens)} answer tokens (constants) plus each "
        "reasoning mode's tokens below.",
        f"Run it: kvplan simulate {vs.file_name}",
    ]
    if price is not None:
        lines.append(
            f"Not carried: the dashboard's ${price:g}/GPU-hour (the simulator prices {vs.gpu} "
            "from its profile)."
        )
    return "".join(f"# {line}\n" for line in lines)


def scenario_yaml(config: ViewConfig, vs: ViewScenario, link: str = "") -> str:
    body: str = yaml.safe_dump(vs.document, sort_keys=False)
    return _header(config, vs, link) + body


@dataclass(frozen=True)
class ExportBundle:
    file_name: str
    data: bytes
    mime: str


def export_bundle(config: ViewConfig, cost: list[dict[str, Any]], link: str = "") -> ExportBundle:
    """A zip of every (model, GPU) of the view the plan could size, the uploaded models'
    config.json, and a README.txt with each pair's plan (and why a pair has no scenario)."""
    scenarios = view_scenarios(config, cost)
    customs = dict(config.custom_models)
    readme = [
        "kvplan dashboard view: one scenario per model and GPU, each with the replica count",
        "the plan chose for the view's traffic.",
        *([f"The view: {link}"] if link else []),
        "",
        f"Run one with: kvplan simulate {BUNDLE_FOLDER}/<file>.yaml",
        "",
        "file | model | GPU | planned replicas | GPUs | $/month",
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for vs in scenarios:
            bundle.writestr(f"{BUNDLE_FOLDER}/{vs.file_name}", scenario_yaml(config, vs, link))
            p = vs.planned
            readme.append(
                f"{vs.file_name} | {vs.model} | {vs.gpu} | {p['replicas']} | "
                f"{p['gpus_total']} | {p['usd_per_month']:,.0f}"
            )
        for row in cost:
            if row.get("replicas") is None:
                readme.append(
                    f"(no scenario) | {row['model']} | {row['gpu']} | - | - | - : {row['note']}"
                )
        for model in dict.fromkeys(vs.model for vs in scenarios):
            if model in customs:
                data = Path(customs[model]).read_bytes()
                bundle.writestr(f"{BUNDLE_FOLDER}/models/{slug(model)}.json", data)
        bundle.writestr(f"{BUNDLE_FOLDER}/README.txt", "\n".join(readme) + "\n")
    return ExportBundle("kvplan-view.zip", buffer.getvalue(), "application/zip")
