"""Engine terms of one deployment: what the user's engine did with memory (from its
start-up log) and how its step times compare with kvplan's (from a serving benchmark).

``kvplan calibrate --from-log LOG --gpu G --out TERMS`` writes the file;
``--engine-terms TERMS`` on ``plan`` / ``frontier`` / ``simulate`` puts its
``deployment`` fields into the Deployment (flags given on the command line still win).
Design: the terms are per deployment (model, engine, GPU count, flags), not per GPU, so
they live in their own small file rather than in the calibrated GPU profile.

From a log, the fields are the engine's own numbers where it printed them:
``gpu_memory_utilization`` (vLLM) / ``mem_fraction_static`` (SGLang), the memory the
engine saw (``gpu_memory_gib``, vLLM V0 logs print it), the profiled activation peak
(``activation_gib``, where printed), and the flags that decide the cache layout (TP/DP
sizes, KV dtype, block size, batch limits). ``runtime_reserve_gib`` is then solved from
the engine's own admission rule (``planner.engines.Engine.available_kv_bytes``) so that,
with the log's weights, the rule gives the log's KV memory: it holds non-torch memory,
CUDA graphs and, where the log does not print it apart, the activation peak. With these
terms kvplan's KV pool differs from the log's only by kvplan's weight count and its page
layout (``check``), which is what the import reports.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from planner.calibrate.logs import MAX_LOG_BYTES, ParsedLog, parse_log
from planner.engines import load_engine
from planner.errors import ConfigError
from planner.hardware import GPU
from planner.io import read_document, read_text, write_text_atomic
from planner.plan.deployed import resolve_deployment
from planner.schema import Deployment
from planner.units import GIB_BYTES
from planner.validation import check_sources, validate

TERMS_KIND = "kvplan-engine-terms"
SCRIPT = "kvplan calibrate --from-log (planner/calibrate/terms.py)"
# The deployment the log ran (layout and engine settings), then the terms solved from it.
LAYOUT_FIELDS = (
    "engine",
    "gpus_per_replica",
    "tensor_parallel",
    "expert_parallel",
    "kv_dtype",
    "kv_block_tokens",
    "max_batched_tokens",
    "max_num_seqs",
)
# Deployment fields an engine-terms file may set (anything else in it is refused).
DEPLOYMENT_FIELDS = (
    *LAYOUT_FIELDS,
    "gpu_memory_utilization",
    "gpu_memory_gib",
    "activation_gib",
    "runtime_reserve_gib",
    "step_time_scale",
    "step_overhead_ms",
    "terms_source",
)
# Which line each engine needs for each term (named in errors).
NEEDED_LINES = {
    "vllm": {
        "weights_gib": "'Model loading took X GiB' (or 'Loading model weights took X GB')",
        "available_kv_gib": "'Available KV cache memory: X GiB' (or V0's memory profiling summary)",
    },
    "sglang": {
        "weights_gib": "'Load weight end. ... mem usage=X GB'",
        "kv_gib": "'KV Cache is allocated. #tokens: N, K size: X GB, V size: Y GB'",
    },
}
# The line with which each engine's KV pool is logged: a log without it ends before the
# start-up finished (cut short, or the start-up failed), and is not read.
POOL_LINES = {
    "vllm": (
        ("kv_pool_tokens", "kv_blocks"),
        "'GPU KV cache size: N tokens' (V0: '# GPU blocks: N')",
    ),
    "sglang": (("kv_pool_tokens",), "'KV Cache is allocated. #tokens: N, ...'"),
}
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
# A log needing more than this share of the GPU's memory beyond what the engine's rule
# leaves is from a larger GPU than the one named.
WRONG_GPU_SHARE = 0.05
FP8_KV_NAMES = ("fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepCorrection(_Frozen):
    """A per-deployment correction of step times fitted to serving-benchmark results."""

    step_time_scale: float = Field(gt=0, le=10)
    step_overhead_ms: float = Field(ge=0, le=60_000)
    runs: int = Field(ge=1)
    median_abs_err_before: float = Field(ge=0)
    median_abs_err_after: float = Field(ge=0)
    error_method: str = Field(max_length=300)
    benchmark: str = Field(max_length=300)


class EngineTerms(_Frozen):
    """See the module docstring."""

    kind: Literal["kvplan-engine-terms"]
    engine: Literal["vllm", "sglang", "trtllm"]
    engine_version: str | None = Field(None, max_length=100)
    gpu: str = Field(max_length=100, description="GPU profile the reserve was solved for")
    source: str = Field(max_length=300, description="the log (file name) and import date")
    logged: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    lines: dict[str, str] = Field(default_factory=dict)
    setup: dict[str, Any] = Field(default_factory=dict)
    deployment: dict[str, Any]
    assumed: list[str] = Field(default_factory=list)
    step_correction: StepCorrection | None = None
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return str(self.deployment.get("terms_source") or self.source)


def _flags(parsed: ParsedLog) -> dict[str, Any]:
    """Deployment fields equal to the flags the log shows."""
    a = parsed.args
    out: dict[str, Any] = {}
    tp = a.get("tensor_parallel_size")
    dp = a.get("data_parallel_size") or 1
    if isinstance(tp, int) and isinstance(dp, int):
        if parsed.engine == "vllm":
            out["gpus_per_replica"] = tp * dp
            out["tensor_parallel"] = tp
        else:  # SGLang: tp_size GPUs; DP attention splits them into dp_size groups
            out["gpus_per_replica"] = tp
            out["tensor_parallel"] = tp // dp if a.get("enable_dp_attention") else tp
    kv = a.get("kv_cache_dtype")
    if isinstance(kv, str) and kv in FP8_KV_NAMES:
        out["kv_dtype"] = "fp8"
    elif isinstance(kv, str) and kv in ("bfloat16", "bf16"):
        out["kv_dtype"] = "bf16"
    block = a.get("block_size")
    if parsed.engine == "vllm" and isinstance(block, int):
        out["kv_block_tokens"] = block
    for key, name in (("max_num_batched_tokens", "max_batched_tokens"), ("max_num_seqs", None)):
        value = a.get(key)
        if isinstance(value, int) and value > 0:
            out[name or key] = value
    return out


def _solve_reserve_gib(
    engine_name: str,
    total_bytes: float,
    weights_bytes: float,
    activation_bytes: float,
    fraction: float,
    kv_bytes: float,
) -> float:
    """The runtime reserve (GiB) under which the engine's admission rule leaves exactly
    ``kv_bytes`` for the KV pool (the rule is linear in the reserve)."""
    engine = load_engine(engine_name)

    def kv(reserve_gib: float) -> float:
        pool, _ = engine.available_kv_bytes(
            total_bytes, weights_bytes, activation_bytes, fraction, reserve_gib * GIB_BYTES
        )
        return pool

    slope = kv(0.0) - kv(1.0)  # bytes of pool per GiB of reserve
    return (kv(0.0) - kv_bytes) / slope / 1.0


def terms_from_log(
    text: str,
    name: str,
    gpu: GPU,
    today: datetime.date | None = None,
    engine_name: str | None = None,
) -> dict[str, Any]:
    """The engine-terms document of one start-up log, validated (see the module
    docstring). ``name`` labels the log (its file name); ``gpu`` is the GPU profile of
    the machine that wrote it; ``engine_name``: the engine the user says wrote it (the
    log's own lines decide; a different one is an error)."""
    parsed = parse_log(text, name)
    if engine_name is not None and engine_name != parsed.engine:
        raise ConfigError(
            f"the log's start-up lines are {ENGINE_NAMES[parsed.engine]}'s, not "
            f"{ENGINE_NAMES.get(engine_name, engine_name)}'s",
            field="--engine",
            value=engine_name,
            expected=f"{parsed.engine}, or no --engine (the log's lines say which engine)",
        )
    v = parsed.values
    needed = NEEDED_LINES[parsed.engine]
    missing = [line for key, line in needed.items() if key not in v]
    if missing:
        have = ", ".join(sorted(parsed.lines)) or "nothing else"
        raise ConfigError(
            f"the {parsed.engine} log lacks the line{'s' if len(missing) > 1 else ''} "
            + " and ".join(missing)
            + f" (it has: {have}); engine terms need both the weights and the KV memory",
            where=name,
        )
    pool_keys, pool_line = POOL_LINES[parsed.engine]
    if not any(key in v for key in pool_keys):
        raise ConfigError(
            f"the {parsed.engine} log ends before its KV pool line {pool_line}: the start-up "
            "did not finish in this log (cut short, or it failed); pass the log up to and "
            "including that line",
            where=name,
        )
    capped = parsed.args.get("max_total_tokens")
    if parsed.engine == "sglang" and capped not in (None, 0):
        raise ConfigError(
            f"the KV pool was capped by --max-total-tokens {capped}, so the log does not show "
            "the memory budget; import a log of a start-up without that flag",
            where=name,
        )
    engine = load_engine(parsed.engine)
    flags = _flags(parsed)
    assumed: list[str] = []
    fraction = v.get("gpu_memory_utilization")
    if fraction is None:
        d = Deployment.model_validate({"engine": parsed.engine, **flags})
        fraction = resolve_deployment(engine, gpu, d).gpu_memory_utilization
        what = "gpu_memory_utilization" if parsed.engine == "vllm" else "mem_fraction_static"
        assumed.append(
            f"{what} is not in the log: the engine's default for this GPU ({fraction:g}) is assumed"
        )
    total_gib = v.get("total_gpu_memory_gib")
    total_bytes = total_gib * GIB_BYTES if total_gib else gpu.hbm_bytes
    if not total_gib:
        assumed.append(
            f"the GPU memory the engine saw is not in the log: the {gpu.name} profile's "
            f"{gpu.profile.hbm_gib:g} GiB is used"
        )
    kv_gib = v["available_kv_gib"] if parsed.engine == "vllm" else v["kv_gib"]
    deployment: dict[str, Any] = {"engine": parsed.engine, **flags}
    deployment["gpu_memory_utilization"] = round(float(fraction), 6)
    if total_gib:
        deployment["gpu_memory_gib"] = total_gib
    activation_gib = 0.0
    if parsed.engine != "sglang":
        if "activation_gib" in v:
            activation_gib = float(v["activation_gib"])
        else:
            assumed.append(
                "the log does not print the activation peak apart: it is held in "
                "runtime_reserve_gib with non-torch and CUDA-graph memory"
            )
        deployment["activation_gib"] = round(activation_gib, 4)
    reserve = _solve_reserve_gib(
        parsed.engine,
        total_bytes,
        v["weights_gib"] * GIB_BYTES,
        activation_gib * GIB_BYTES,
        float(fraction),
        kv_gib * GIB_BYTES,
    )
    notes = []
    if -reserve > WRONG_GPU_SHARE * total_bytes / GIB_BYTES:
        raise ConfigError(
            f"the log's weights and KV memory ({v['weights_gib']:g} + {kv_gib:g} GiB) do not fit "
            f"in {float(fraction):g} of the {gpu.name} profile's memory",
            field="--gpu",
            value=gpu.name,
            expected="the GPU profile of the machine that wrote the log",
        )
    if reserve < 0:
        notes.append(
            f"the log's KV memory is {-reserve:.2f} GiB more than the engine's rule leaves "
            f"on this GPU profile with nothing held back: the reserve is set to 0 and "
            "kvplan's pool is that much smaller than the log's"
        )
        reserve = 0.0
    deployment["runtime_reserve_gib"] = round(reserve, 4)
    day = (today or datetime.date.today()).isoformat()
    source = f"{parsed.engine} start-up log {name} (imported {day})"
    deployment["terms_source"] = source
    logged: dict[str, Any] = {k: v[k] for k in sorted(v)}
    doc: dict[str, Any] = {
        "kind": TERMS_KIND,
        "engine": parsed.engine,
        "gpu": gpu.name,
        "source": source,
        "logged": logged,
        "lines": dict(sorted(parsed.lines.items())),
        "setup": dict(sorted(parsed.args.items(), key=lambda kv: kv[0])),
        "deployment": deployment,
        "assumed": assumed,
        "sources": {
            "kind": "kvplan engine-terms format (planner/calibrate/terms.py)",
            "engine": "the engine whose start-up lines the log holds",
            "gpu": "the --gpu argument: GPU profile of the machine that wrote the log",
            "source": "the log file's name and the import date",
            "logged": "numbers read from the log (GiB per GPU; tokens per engine); the line "
            "each came from under 'lines'",
            "lines": "the log line each logged number came from",
            "setup": "flags the log shows the engine ran with",
            "deployment": f"derived by {SCRIPT}: the engine's own figures, the reserve "
            "solved from the engine's admission rule (planner.engines)",
            "assumed": "what the log does not say and what was assumed instead",
        },
        "notes": notes,
    }
    if parsed.values.get("engine_version"):
        doc["engine_version"] = str(parsed.values["engine_version"])
        doc["sources"]["engine_version"] = "the version line of the log"
    return validate(EngineTerms, doc, name).model_dump(mode="json", exclude_none=True)


def read_log(path: str | Path) -> str:
    """A log file's text, bounded."""
    return read_text(path, max_bytes=MAX_LOG_BYTES, what="log")


def terms_from_data(data: Any, where: str) -> EngineTerms:
    if not isinstance(data, dict) or data.get("kind") != TERMS_KIND:
        raise ConfigError(
            "not a kvplan engine-terms file",
            where=where,
            field="kind",
            value=data.get("kind") if isinstance(data, dict) else None,
            expected=f"'{TERMS_KIND}' (written by kvplan calibrate --from-log/--from-bench)",
        )
    check_sources(data, where)
    terms = validate(EngineTerms, data, where)
    unknown = sorted(set(terms.deployment) - set(DEPLOYMENT_FIELDS))
    if unknown:
        raise ConfigError(
            "engine terms may not set these deployment fields",
            where=where,
            field="deployment." + unknown[0],
            expected="one of " + ", ".join(DEPLOYMENT_FIELDS),
        )
    validate(Deployment, terms.deployment, where)  # every value in range
    return terms


def load_terms(path: str | Path) -> EngineTerms:
    return terms_from_data(read_document(path), str(path))


def terms_yaml(doc: dict[str, Any]) -> str:
    return "# Written by kvplan calibrate: engine terms of one deployment.\n" + str(
        yaml.safe_dump(doc, sort_keys=False, width=100)
    )


def write_terms(path: str | Path, doc: dict[str, Any]) -> None:
    text = terms_yaml(doc)
    terms_from_data(yaml.safe_load(text), str(path))
    write_text_atomic(path, text, field="out")
