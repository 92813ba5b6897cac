"""Reading a serving engine's start-up log: the memory it gave weights, activations, CUDA
graphs and the KV cache, and the KV pool it logged.

vLLM (V0 and V1 engines; log lines of vllm/v1/worker/gpu_worker.py,
vllm/v1/core/kv_cache_utils.py, vllm/worker/worker.py across 0.6 - 0.2x):
- ``Model loading took X GiB`` / ``Loading model weights took X GB`` (per GPU; V0's "GB"
  is GiB: it divides by 2^30);
- ``Available KV cache memory: X GiB`` (V1) or V0's profiling summary
  (``total_gpu_memory (X GiB) x gpu_memory_utilization (U)``, ``model weights take ..;
  non_torch_memory takes ..; PyTorch activation peak memory takes ..; the rest of the
  memory reserved for KV Cache is ..``) or ``Memory profiling results: total_gpu_memory=..
  peak_torch_memory=.. non_torch_memory=.. kv_cache_size=.. gpu_memory_utilization=..``;
- ``GPU KV cache size: N tokens`` / ``# GPU blocks: N`` and ``Maximum concurrency for L
  tokens per request: Cx``;
- the flags it ran with: ``non-default args: {...}``, ``--gpu-memory-utilization=U is
  equivalent to`` (CUDA-graph memory profiling, vLLM >= 0.21), ``Estimated CUDA graph
  memory: X GiB``.
SGLang (python/sglang/srt/model_executor/model_runner.py, mem_cache/memory_pool.py):
- ``server_args=ServerArgs(...)`` (mem_fraction_static, tp_size, dp_size, kv_cache_dtype,
  page_size, max_total_tokens, chunked_prefill_size);
- ``Load weight begin. avail mem=X GB``, ``Load weight end. ... mem usage=X GB``;
- ``KV Cache is allocated. #tokens: N, K size: X GB, V size: Y GB`` (or ``KV size``);
- ``max_total_num_tokens=N, ...``. SGLang's "GB" is GiB (it divides by 2^30).
Lines repeated by every tensor-parallel rank are read once (rank 0's where the line is
tagged); values that disagree between engine start-ups in one file are an error. A log
without the lines a field needs says which line is missing; a foreign log says so.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner.errors import ConfigError
from planner.limits import MAX_LOG_NUMBER

MAX_LOG_BYTES = 64 * 2**20  # a start-up log with every rank's lines is well under this
MAX_ARGS_LINE_CHARS = 200_000

_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass(frozen=True)
class Rule:
    """One log line kind: a pattern and the fields its groups give."""

    name: str
    pattern: re.Pattern[str]
    fields: tuple[str, ...]
    convert: Callable[[str], Any] = _number


VLLM_RULES = (
    Rule(
        "weights",
        re.compile(r"(?:Model loading took|Loading model weights took) " + _NUM + r" ?Gi?B"),
        ("weights_gib",),
    ),
    Rule(
        "available_kv",
        re.compile(r"Available KV cache memory: " + _NUM + r" ?GiB"),
        ("available_kv_gib",),
    ),
    Rule(
        "v0_budget",
        re.compile(
            r"total_gpu_memory \(" + _NUM + r" ?GiB\) x gpu_memory_utilization \(" + _NUM + r"\)"
        ),
        ("total_gpu_memory_gib", "gpu_memory_utilization"),
    ),
    Rule(
        "v0_breakdown",
        re.compile(
            r"model weights take "
            + _NUM
            + r" ?GiB; non_torch_memory takes "
            + _NUM
            + r" ?GiB; PyTorch activation peak memory takes "
            + _NUM
            + r" ?GiB; the rest of the memory reserved for KV Cache is "
            + _NUM
            + r" ?GiB"
        ),
        ("weights_gib", "non_torch_gib", "activation_gib", "available_kv_gib"),
    ),
    Rule(
        "v0_profile_results",
        re.compile(
            r"Memory profiling results: total_gpu_memory=" + _NUM + r"GiB .*?"
            r"peak_torch_memory=" + _NUM + r"GiB .*?non_torch_memory=" + _NUM + r"GiB "
            r"kv_cache_size=" + _NUM + r"GiB gpu_memory_utilization=" + _NUM
        ),
        (
            "total_gpu_memory_gib",
            "peak_torch_gib",
            "non_torch_gib",
            "available_kv_gib",
            "gpu_memory_utilization",
        ),
    ),
    Rule("kv_tokens", re.compile(r"GPU KV cache size: " + _NUM + r" tokens"), ("kv_pool_tokens",)),
    Rule("kv_blocks", re.compile(r"\b(?:GPU|CUDA) blocks: " + _NUM), ("kv_blocks",)),
    Rule(
        "kv_token_limit",
        re.compile(r"maximum number of tokens that can be stored in KV cache \(" + _NUM + r"\)"),
        ("kv_pool_tokens",),
    ),
    Rule(
        "concurrency",
        re.compile(r"Maximum concurrency for " + _NUM + r" tokens per request: " + _NUM + r"x"),
        ("max_model_len", "max_concurrency"),
    ),
    Rule(
        "utilization",
        re.compile(r"--gpu-memory-utilization=" + _NUM + r" is equivalent to"),
        ("gpu_memory_utilization",),
    ),
    Rule(
        "cuda_graph_estimate",
        re.compile(r"Estimated CUDA graph memory: " + _NUM + r" ?GiB"),
        ("cuda_graph_gib",),
    ),
    Rule(
        "version",
        re.compile(r"(?:vLLM API server version |LLM engine \(v)(\d+\.\d+[0-9A-Za-z.+_-]*)"),
        ("engine_version",),
        str,
    ),
)

SGLANG_RULES = (
    Rule(
        "load_begin",
        re.compile(r"Load weight begin\. avail mem=" + _NUM + r" ?GB"),
        ("free_before_weights_gib",),
    ),
    Rule(
        "weights",
        re.compile(r"Load weight end\..*?mem usage=" + _NUM + r" ?GB"),
        ("weights_gib",),
    ),
    Rule(
        "kv_kv",
        re.compile(
            r"KV Cache is allocated\. #tokens: "
            + _NUM
            + r", K size: "
            + _NUM
            + r" ?GB, V size: "
            + _NUM
            + r" ?GB"
        ),
        ("kv_pool_tokens", "k_gib", "v_gib"),
    ),
    Rule(
        "kv_single",
        re.compile(r"KV Cache is allocated\. #tokens: " + _NUM + r", KV size: " + _NUM + r" ?GB"),
        ("kv_pool_tokens", "kv_gib"),
    ),
    Rule(
        "pool_tokens",
        re.compile(r"max_total_num_tokens=" + _NUM),
        ("kv_pool_tokens",),
    ),
)

# server_args fields kvplan reads (value patterns: a number, None, True/False or a string).
SGLANG_ARGS = {
    "mem_fraction_static": "gpu_memory_utilization",
    "tp_size": "tensor_parallel_size",
    "dp_size": "data_parallel_size",
    "kv_cache_dtype": "kv_cache_dtype",
    "page_size": "block_size",
    "max_total_tokens": "max_total_tokens",
    "chunked_prefill_size": "max_num_batched_tokens",
    "max_running_requests": "max_num_seqs",
    "enable_dp_attention": "enable_dp_attention",
    "context_length": "max_model_len",
}
VLLM_ARGS = {
    "gpu_memory_utilization": "gpu_memory_utilization",
    "tensor_parallel_size": "tensor_parallel_size",
    "data_parallel_size": "data_parallel_size",
    "max_model_len": "max_model_len",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "max_num_seqs": "max_num_seqs",
    "kv_cache_dtype": "kv_cache_dtype",
    "block_size": "block_size",
    "enable_expert_parallel": "enable_expert_parallel",
    "model": "model",
}
INTEGER_FIELDS = ("kv_pool_tokens", "kv_blocks", "max_model_len")
_RANK_TAG = re.compile(r"(?:\bTP(\d+)\]|Worker_TP(\d+)|rank=(\d+))")


@dataclass
class ParsedLog:
    """What one engine start-up log says (numbers per GPU / per engine, GiB)."""

    engine: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)  # field -> the line it came from
    args: dict[str, Any] = field(default_factory=dict)  # flags the log shows


def _rank(line: str) -> int | None:
    m = _RANK_TAG.search(line)
    if m is None:
        return None
    return int(next(g for g in m.groups() if g is not None))


def detect_engine(text: str) -> str | None:
    """'vllm', 'sglang' or None (neither's start-up lines are there)."""
    sglang = any(rule.pattern.search(text) for rule in SGLANG_RULES) or "ServerArgs(" in text
    vllm = any(
        rule.pattern.search(text)
        for rule in VLLM_RULES
        if rule.name in ("weights", "available_kv", "kv_tokens", "kv_blocks", "v0_breakdown")
    )
    if sglang and not vllm:
        return "sglang"
    if vllm and not sglang:
        return "vllm"
    if vllm and sglang:
        return "ambiguous"
    return None


def _apply_rules(text: str, rules: tuple[Rule, ...], parsed: ParsedLog, where: str) -> None:
    for rule in rules:
        seen: dict[str, list[tuple[int | None, Any, str]]] = {}
        for line in text.splitlines():
            m = rule.pattern.search(line)
            if m is None:
                continue
            for name, raw in zip(rule.fields, m.groups(), strict=True):
                value = rule.convert(raw)
                if isinstance(value, float) and not value <= MAX_LOG_NUMBER:
                    raise ConfigError(
                        f"the '{rule.name}' line gives {name} = {raw[:40]}",
                        where=where,
                        expected=f"a number <= {MAX_LOG_NUMBER:.0f}, as a start-up log prints",
                    )
                seen.setdefault(name, []).append((_rank(line), value, line.strip()))
        for name, found in seen.items():
            if name in parsed.values:
                continue  # an earlier, more specific rule gave it
            ranked = [f for f in found if f[0] in (0, None)] or found
            value = ranked[0][1]
            if name == "available_kv_gib":
                # Every TP rank logs its own; the engine sizes the pool by the smallest.
                value = min(f[1] for f in found)
            elif len({f[1] for f in ranked}) > 1 and name not in ("free_before_weights_gib",):
                values = sorted({str(f[1]) for f in ranked})
                raise ConfigError(
                    f"the log holds several engine start-ups with different '{rule.name}' "
                    f"lines ({', '.join(values[:4])}); pass the log of one start-up",
                    where=where,
                )
            parsed.values[name] = value
            parsed.lines[name] = ranked[0][2][:300]


def _vllm_args(text: str, parsed: ParsedLog) -> None:
    m = re.search(r"non-default args: (\{.*\})", text)
    if m and len(m.group(1)) < MAX_ARGS_LINE_CHARS:
        try:
            args = ast.literal_eval(m.group(1))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            args = None  # objects (AttentionConfig(...)) inside: read keys one by one below
        if isinstance(args, dict):
            for key, name in VLLM_ARGS.items():
                if key in args:
                    parsed.args[name] = args[key]
            return
        for key, name in VLLM_ARGS.items():
            km = re.search(rf"'{key}': ('[^']*'|[0-9.]+|True|False)", m.group(1))
            if km:
                parsed.args[name] = ast.literal_eval(km.group(1))


def _sglang_args(text: str, parsed: ParsedLog) -> None:
    m = re.search(r"server_args=ServerArgs\((.*)\)", text)
    if m is None or len(m.group(1)) > MAX_ARGS_LINE_CHARS:
        return
    body = m.group(1)
    for key, name in SGLANG_ARGS.items():
        km = re.search(rf"(?:^|, ){key}=('[^']*'|-?[0-9.]+|None|True|False)", body)
        if km:
            parsed.args[name] = ast.literal_eval(km.group(1))


def parse_log(text: str, where: str) -> ParsedLog:
    """Every start-up number the log holds (see the module docstring)."""
    if not text.strip():
        raise ConfigError("the log is empty", where=where, expected="an engine start-up log")
    engine = detect_engine(text)
    if engine is None:
        raise ConfigError(
            "not a vLLM or SGLang start-up log: none of their KV cache or weight-loading "
            "lines is in it",
            where=where,
            expected="a log with vLLM's 'GPU KV cache size' / 'Available KV cache memory' or "
            "SGLang's 'KV Cache is allocated' lines",
        )
    if engine == "ambiguous":
        raise ConfigError(
            "the file holds both vLLM and SGLang start-up lines; pass one engine's log",
            where=where,
        )
    parsed = ParsedLog(engine)
    if engine == "vllm":
        _apply_rules(text, VLLM_RULES, parsed, where)
        _vllm_args(text, parsed)
    else:
        _apply_rules(text, SGLANG_RULES, parsed, where)
        _sglang_args(text, parsed)
        v = parsed.values
        if "k_gib" in v:
            v["kv_gib"] = v.pop("k_gib") + v.pop("v_gib")
            parsed.lines["kv_gib"] = parsed.lines.pop("k_gib")
            parsed.lines.pop("v_gib", None)
    if "gpu_memory_utilization" not in parsed.values and "gpu_memory_utilization" in parsed.args:
        parsed.values["gpu_memory_utilization"] = float(parsed.args["gpu_memory_utilization"])
        parsed.lines["gpu_memory_utilization"] = "flags in the log"
    for name in INTEGER_FIELDS:
        if name in parsed.values:
            parsed.values[name] = int(parsed.values[name])
    if "peak_torch_gib" in parsed.values and "weights_gib" in parsed.values:
        # V0's 'Memory profiling results': activation peak = peak torch memory - weights.
        peak = parsed.values.pop("peak_torch_gib")
        parsed.values["activation_gib"] = round(peak - parsed.values["weights_gib"], 4)
        parsed.lines["activation_gib"] = parsed.lines.pop("peak_torch_gib")
    return parsed
