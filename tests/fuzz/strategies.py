"""Hypothesis strategies for every input surface kvplan reads, and how to run each case.

A strategy draws a ``Case``: files to write into a scratch folder (``{dir}`` in the text
and the argv is that folder), environment variables, and the ``kvplan`` argv. Inputs mix
plausible values from small ranges (so valid cases stay cheap to compute: tiny simulated
durations and loads) with hostile ones: out-of-range, non-finite, wrongly typed, huge,
deeply nested, path-like. Valid-but-heavy inputs (a million requests) are not drawn: they
are allowed to take long, by design (planner.limits bounds how long).
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import strategies as st

from planner import load_model
from planner.calibrate.terms import terms_from_log
from planner.hardware import DEFAULT_PROFILE_DIR, gpu_names, load_gpu
from planner.model.catalog import catalog_names
from planner.model.hf_import import FIELD_MAXIMA
from tests.fuzz.harness import InvariantError, Result, environment, run_api, run_cli, scratch

ROOT = Path(__file__).resolve().parents[2]
HF_FIXTURES = ROOT / "tests" / "fixtures" / "hf_configs"
ENGINE_DIR = ROOT / "engines"

CATALOG = catalog_names()
GPUS = gpu_names()
# Cheap to plan and simulate (small or fast to time); every catalog model still appears.
SIM_MODELS = ["llama-3.1-70b", "deepseek-v3.2", "deepseek-v4-flash", "qwen3-235b-a22b"]
SIM_GPUS = ["h200", "b200", "h200", "b200", "h100"]


# --------------------------------------------------------------------------- values
def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_SCALARS = [
    0, -1, 1, 2, 3, 2**31, 2**63, 2**64, -(2**63), 10**30,
    0.5, -0.5, 1e-300, 1e-9, 0.999, 1e300, -1e300, float("nan"), float("inf"), float("-inf"),
    "", "0", "false", "true", "1K", "abc", "../../../etc/passwd", "x" * 300, "null",
    "1e400", "-5", "\u00e9\u4e2d", None, True, False,
]  # fmt: skip

hostile = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.integers(-10, 100),
    st.floats(-10, 100),
    st.just([]),
    st.just({}),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "kind", "value"]), st.integers(-1, 2), max_size=2),
    st.just(_nested(80)),
)

TOKEN_TEXTS = [
    "1", "16", "100", "1K", "8K", "32K", "128K", "1M", "0", "-5", "1.5K", "0.5", "2G", "1e3",
    "abc", "", "99999999999999999999999", "1T", "1099511627776", "1099511627777", " 4K ",
    "4_096", "nan",
]  # fmt: skip
NUMBER_TEXTS = ["0", "1", "2", "0.5", "10", "50", "-1", "nan", "inf", "1e308", "abc", "", "1e-300"]

token_text = st.one_of(st.sampled_from(TOKEN_TEXTS), st.integers(0, 2**20).map(str))
number_text = st.one_of(st.sampled_from(NUMBER_TEXTS), st.floats(0.01, 100).map(repr))
model_name = st.sampled_from([*CATALOG, "no-such-model", "../x", "", "LLAMA-3.1-70B"])
gpu_name = st.sampled_from([*GPUS, "h100", "H200", "a100", "../../h200", ""])


def paths_of(doc: Any, prefix: tuple[Any, ...] = (), depth: int = 5) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists, down to ``depth`` levels."""
    found: list[tuple[Any, ...]] = []
    if len(prefix) >= depth:
        return found
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((*prefix, key))
            found += paths_of(value, (*prefix, key), depth)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found.append((*prefix, i))
            found += paths_of(value, (*prefix, i), depth)
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_mutations: int = 2) -> Any:
    """``base`` with up to ``max_mutations`` values replaced by hostile ones, keys deleted
    or unknown keys added."""
    doc = copy.deepcopy(base)
    # Half the examples stay unmutated (valid inputs exercise the output invariants).
    count = draw(st.integers(0, max_mutations)) if draw(st.booleans()) else 0
    for _ in range(count):
        paths = paths_of(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        # Copies: a shared hostile value (the deep list) must never be mutated in place.
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(hostile))
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(["unknown_field", "x", "__proto__"]))
            parent[key] = copy.deepcopy(draw(hostile))
    return doc


def to_json(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True)  # NaN / Infinity tokens are part of the attack


def to_yaml(doc: Any) -> str:
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    surface: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    seconds: float = 30.0

    def run(self) -> Result:
        with scratch() as folder:
            for name, text in self.files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text.replace("{dir}", str(folder)), encoding="utf-8")
            argv = [a.replace("{dir}", str(folder)) for a in self.argv]
            env = {k: v.replace("{dir}", str(folder)) for k, v in self.env.items()}
            with environment(**env):
                return run_cli(argv, self.seconds)


def _maybe(draw: st.DrawFn, flag: str, values: st.SearchStrategy[str]) -> list[str]:
    return [flag, draw(values)] if draw(st.booleans()) else []


# --------------------------------------------------------------------------- CLI argv
DEPLOYMENT_BASE = {
    "gpus_per_replica": 8,
    "tensor_parallel": 8,
    "kv_block_tokens": 64,
    "gpu_memory_utilization": 0.9,
    "runtime_reserve_gib": 2.0,
    "max_batched_tokens": 8192,
    "max_num_seqs": 256,
    "step_overhead_ms": 1.0,
    "weight_formats": {"attention": "fp8_w128"},
}


@st.composite
def cli_cases(draw: st.DrawFn) -> Case:
    command = draw(
        st.sampled_from(
            ["plan", "plan", "plan", "frontier", "compare", "model", "gpu", "deployment", "search"]
        )
    )
    files: dict[str, str] = {}
    if command == "deployment":  # plan with a --deployment YAML file
        files["d.yaml"] = to_yaml(draw(mutated(DEPLOYMENT_BASE, max_mutations=2)))
        model = draw(st.sampled_from(SIM_MODELS))
        argv = ["plan", "--model", model, "--gpu", draw(st.sampled_from(SIM_GPUS))]
        argv += ["--deployment", "{dir}/d.yaml", "--context", draw(token_text)]
        argv += _maybe(draw, "--rate", st.sampled_from(["1", "5", "0.5"]))
        return Case("cli", [*argv, "--json"], files=files, seconds=30.0)
    if command == "search":
        argv = ["search", "--model", draw(st.sampled_from(SIM_MODELS))]
        argv += [
            "--gpu",
            draw(st.sampled_from(SIM_GPUS)),
            "--gpus",
            draw(st.sampled_from(["8", "4", "0"])),
        ]
        # Rates up to thousands per second too: disaggregated pools of thousands of engines.
        rate = draw(st.one_of(number_text, st.sampled_from(["4000", "100000"])))
        argv += ["--rate", rate, "--input-tokens", draw(token_text)]
        argv += [
            "--output-tokens",
            draw(token_text),
            "--top",
            draw(st.sampled_from(["1", "3", "0"])),
        ]
        argv += ["--mode", draw(st.sampled_from(["aggregated", "disaggregated"]))]
        argv += _maybe(draw, "--tpot-slo-ms", number_text)
        return Case("cli", [*argv, "--json"], seconds=60.0)
    deploy = [
        *_maybe(draw, "--gpus", st.sampled_from(["1", "2", "4", "8", "16", "0", "3", "99999"])),
        *_maybe(draw, "--tp", st.sampled_from(["1", "2", "4", "8", "3", "0"])),
        *_maybe(draw, "--ep", st.sampled_from(["1", "2", "8", "5"])),
        *_maybe(draw, "--kv-dtype", st.sampled_from(["bf16", "fp8", "fp4"])),
        *_maybe(draw, "--engine", st.sampled_from(["vllm", "sglang", "trtllm", "tgi"])),
        *(["--mtp"] if draw(st.integers(0, 5)) == 0 else []),
    ]
    if command == "plan":
        argv = ["plan", "--model", draw(model_name), "--gpu", draw(gpu_name), *deploy]
        argv += ["--context", draw(token_text)]
        argv += _maybe(draw, "--batch", token_text)
        argv += _maybe(draw, "--output-tokens", token_text)
        argv += _maybe(draw, "--input-tokens", token_text)
        argv += _maybe(draw, "--prefix-hit-ratio", st.sampled_from(["0", "0.5", "1", "1.5"]))
        if draw(st.booleans()):
            argv += ["--rate", draw(number_text)]
            argv += _maybe(draw, "--tpot-slo-ms", number_text)
            argv += _maybe(draw, "--ttft-slo-s", number_text)
            argv += _maybe(draw, "--ttft-percentile", st.sampled_from(["50", "99", "100", "0"]))
    elif command == "frontier":
        models = draw(st.lists(model_name, min_size=1, max_size=2))
        gpus = draw(st.lists(gpu_name, min_size=1, max_size=2))
        argv = ["frontier", "--model", *models, "--gpu", *gpus, *deploy]
        if draw(st.booleans()):
            argv += ["--contexts", ",".join(draw(st.lists(token_text, min_size=1, max_size=5)))]
        else:
            argv += _maybe(draw, "--min-context", token_text)
            argv += _maybe(draw, "--max-context", token_text)
            argv += _maybe(draw, "--points", st.sampled_from(["1", "5", "64", "0", "2147483648"]))
        if draw(st.booleans()):
            argv += ["--concurrency", *draw(st.lists(token_text, min_size=1, max_size=3))]
    elif command == "compare":
        argv = ["compare", *draw(st.lists(model_name, min_size=1, max_size=3))]
        argv += ["--context", draw(token_text)]
        argv += _maybe(draw, "--kv-dtype", st.sampled_from(["bf16", "fp8"]))
    elif command == "model":
        sub = draw(st.sampled_from(["list", "show"]))
        argv = ["model", sub] if sub == "list" else ["model", "show", draw(model_name)]
        if sub == "show":
            argv += _maybe(draw, "--context", token_text)
    else:
        argv = ["gpu", "list"]
    return Case("cli", [*argv, "--json"], files=files, seconds=30.0)


# --------------------------------------------------------------------------- config.json
HF_BASES = {p.stem: json.loads(p.read_text()) for p in sorted(HF_FIXTURES.glob("*.json"))}
HF_BASES["llama-3.2-1b-tied"] = {
    **HF_BASES["llama-3.1-70b"],
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
}


@st.composite
def config_cases(draw: st.DrawFn) -> Case:
    base = HF_BASES[draw(st.sampled_from(sorted(HF_BASES)))]
    doc = draw(mutated(base, max_mutations=3))
    if draw(st.integers(0, 3)) == 0:  # a count at its bound, just past it, or at 1
        key = draw(st.sampled_from(sorted(k for k in FIELD_MAXIMA if k in doc)))
        bound = FIELD_MAXIMA[key]
        doc[key] = draw(st.sampled_from([bound, bound + 1, 1]))
    text = to_json(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("json"))
    if draw(st.booleans()):
        argv = ["model", "import", "{dir}/config.json", *_maybe(draw, "--context", token_text)]
    else:
        argv = ["plan", "--model", "{dir}/config.json", "--gpu", draw(st.sampled_from(SIM_GPUS))]
        argv += ["--context", draw(st.sampled_from(["1K", "8K", "128K", "0", "1M"]))]
    return Case("config.json", [*argv, "--json"], files={"config.json": text}, seconds=30.0)


# --------------------------------------------------------------------------- raw documents
@st.composite
def raw_attacks(draw: st.DrawFn, kind: str) -> str:
    """Hostile document text: alias bombs, deep nesting, duplicate keys, huge integers,
    binary junk, the wrong top-level type."""
    bomb = ['a0: &a0 ["x"]'] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
    ]
    yaml_attacks = [
        "\n".join(bomb),
        "[" * 5000 + "]" * 5000,
        "name: a\nname: b\n",
        "duration_s: " + "9" * 5000,
        "- 1\n- 2\n",
        "",
        "x: !!python/object/apply:os.system ['true']",
        "drain_s: .inf\n",
        "\x00\x01\xff",
    ]
    json_attacks = [
        "[" * 100_000,
        '{"hidden_size": ' + "9" * 5000 + "}",
        '{"a": NaN}',
        "[1, 2]",
        "",
        '{"model_type": "llama", "model_type": "llama"}',
        "{" * 70 + "}" * 70,
    ]
    return str(draw(st.sampled_from(yaml_attacks if kind == "yaml" else json_attacks)))


# --------------------------------------------------------------------------- scenarios
def _dist(draw: st.DrawFn, low: int, high: int) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"kind": "constant", "value": draw(st.integers(low, high))}
    dist: dict[str, Any] = {
        "kind": "lognormal",
        "mean": draw(st.integers(max(low, 1), high)),
        "sigma": draw(st.sampled_from([0, 0.3, 1.0])),
    }
    if draw(st.booleans()):
        dist["max"] = high
    return dist


@st.composite
def scenario_docs(draw: st.DrawFn) -> dict[str, Any]:
    replicas = draw(st.integers(1, 3))
    arrival = draw(
        st.sampled_from(
            [
                {"kind": "poisson", "rate_per_s": 4},
                {"kind": "gamma", "rate_per_s": 3, "cv": 2.5},
                {"kind": "piecewise", "points": [[0, 2], [1, 8]]},
                {"kind": "diurnal", "mean_rate_per_s": 3, "amplitude": 0.8, "period_s": 2},
            ]
        )
    )
    classes = []
    for i in range(draw(st.integers(1, 2))):
        cls: dict[str, Any] = {
            "name": f"c{i}",
            "share": draw(st.sampled_from([1, 0.5, 3])),
            "input_tokens": _dist(draw, 1, 3000),
            "output_tokens": _dist(draw, 1, 64),
            "reasoning_mode": draw(st.sampled_from(["non-think", "non-think", "think-high"])),
            "system_prompt_tokens": draw(st.sampled_from([0, 100, 1024])),
            "system_prompt_variants": draw(st.integers(1, 3)),
            "slo": {"ttft_s": 1.0, "tpot_s": 0.1},
        }
        if draw(st.integers(0, 3)) == 0:
            cls["session"] = {
                "turns": {"kind": "constant", "value": draw(st.integers(1, 3))},
                "think_time_s": {"kind": "constant", "value": 0.2},
                "new_user_tokens": {"kind": "constant", "value": 50},
                "keep_reasoning": draw(st.booleans()),
            }
        classes.append(cls)
    doc: dict[str, Any] = {
        "name": "fuzz",
        "model": draw(st.sampled_from(SIM_MODELS)),
        "gpu": draw(st.sampled_from(SIM_GPUS)),
        "deployment": {"gpus_per_replica": 8, "tensor_parallel": draw(st.sampled_from([2, 8]))},
        "replicas": replicas,
        "router": draw(
            st.sampled_from(["round_robin", "least_outstanding_tokens", "prefix_affinity"])
        ),
        "duration_s": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "drain_s": draw(st.sampled_from([0, 1.0, 5.0])),
        "seed": draw(st.integers(0, 3)),
        "block_tokens": draw(st.sampled_from([16, 64, 512])),
        "queue_timeout_s": draw(st.sampled_from([0.05, 1.0, 60])),
        "prefix_cache": {
            "enabled": draw(st.booleans()),
            "invalidate_at_s": draw(st.sampled_from([[], [0.5], [0.3, 1.2]])),
        },
        "workload": {"arrival": arrival, "classes": classes},
    }
    if draw(st.integers(0, 3)) == 0:
        doc["prefix_cache"]["host_tier"] = {"capacity_gib": 1, "bandwidth_gb_per_s": 20}
    if draw(st.integers(0, 3)) == 0:
        doc["faults"] = [{"replica": replicas - 1, "at_s": 0.3, "duration_s": 0.5}]
    if doc["model"] != "llama-3.1-70b" and draw(st.integers(0, 4)) == 0:
        doc["deployment"]["mtp"] = True  # MTP speculative decoding (DeepSeek, Qwen3: none)
    if draw(st.integers(0, 4)) == 0:  # disaggregated prefill and decode pools
        pool = {"replicas": 1, "deployment": dict(doc.pop("deployment"))}
        doc.pop("replicas")
        doc.pop("faults", None)
        doc["disaggregation"] = {"prefill": pool, "decode": copy.deepcopy(pool)}
    return doc


@st.composite
def scenario_cases(draw: st.DrawFn) -> Case:
    doc = draw(mutated(draw(scenario_docs()), max_mutations=2))
    text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
    argv = ["simulate", "{dir}/s.yaml", "--json", "-"]
    argv += ["--mode", draw(st.sampled_from(["fast", "fast", "exact"]))]
    argv += _maybe(draw, "--seed", st.sampled_from(["0", "7", "-1", "99999999999999999999"]))
    return Case("scenario", argv, files={"s.yaml": text}, seconds=60.0)


# --------------------------------------------------------------------------- traces
@st.composite
def mooncake_line(draw: st.DrawFn) -> str:
    tokens = draw(st.integers(1, 3000))
    record: dict[str, Any] = {
        "timestamp": draw(st.integers(0, 1500)),
        "input_length": tokens,
        "output_length": draw(st.integers(1, 40)),
        "hash_ids": draw(st.lists(st.integers(0, 20), max_size=-(-tokens // 512))),
    }
    if draw(st.integers(0, 9)) == 0:
        record = draw(mutated(record, max_mutations=1))
    return to_json(record) if draw(st.integers(0, 99)) else draw(st.sampled_from(["{", "[]", "1"]))


@st.composite
def csv_row(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)):
        t, i, o = draw(st.floats(0, 1.5)), draw(st.integers(1, 3000)), draw(st.integers(1, 40))
        return f"{t!r},{i},{o}"
    cells = [
        draw(st.one_of(st.sampled_from(["0", "0.5", "1.2"]), number_text)),
        draw(st.one_of(st.integers(1, 3000).map(str), token_text)),
        draw(st.one_of(st.integers(1, 40).map(str), token_text)),
    ]
    return ",".join(cells)


@st.composite
def trace_cases(draw: st.DrawFn) -> Case:
    mooncake = draw(st.booleans())
    if mooncake:
        lines = draw(st.lists(mooncake_line(), min_size=0, max_size=8))
        trace, name = "\n".join(lines) + "\n", "t.jsonl"
    else:
        header = draw(st.sampled_from(["timestamp_s,input_tokens,output_tokens"] * 8 + ["a,b", ""]))
        rows = draw(st.lists(csv_row(), min_size=0, max_size=8))
        trace, name = "\n".join([header, *rows]) + "\n", "t.csv"
    if mooncake and draw(st.booleans()):
        capacities = draw(st.lists(token_text, max_size=3))
        argv = ["cache-curve", "--trace", f"{{dir}}/{name}", "--capacity-tokens", *capacities]
        argv += _maybe(draw, "--block-size", st.sampled_from(["512", "16", "0"]))
        return Case("trace", [*argv, "--json"], files={name: trace}, seconds=30.0)
    scenario = {
        "name": "trace",
        "model": draw(st.sampled_from(SIM_MODELS)),
        "gpu": "h200",
        "duration_s": 2.0,
        "drain_s": 2.0,
        "block_tokens": 512,
        "workload": {
            "trace": {
                "path": name,
                "format": "mooncake" if mooncake else "csv",
                "time_scale": draw(st.sampled_from([1.0, 0.1, 2.0])),
            }
        },
    }
    files = {name: trace, "s.yaml": to_yaml(scenario)}
    return Case("trace", ["simulate", "{dir}/s.yaml", "--json", "-"], files=files, seconds=60.0)


# --------------------------------------------------------------------------- profiles
GPU_BASE = yaml.safe_load((DEFAULT_PROFILE_DIR / "h200.yaml").read_text())


@st.composite
def gpu_profile_cases(draw: st.DrawFn) -> Case:
    doc = draw(mutated(GPU_BASE, max_mutations=2))
    if draw(st.booleans()):  # plausible variations too: scale one number
        for key in ("hbm_gib", "hbm_bandwidth_tb_per_s", "power_watts"):
            if isinstance(doc.get(key), int | float) and draw(st.booleans()):
                doc[key] = doc[key] * draw(st.sampled_from([0.1, 0.5, 2.0, 10.0]))
    text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
    model = draw(st.sampled_from(SIM_MODELS))
    argv = draw(
        st.sampled_from(
            [
                ["plan", "--model", model, "--gpu", "h200", "--context", "8K"],
                ["plan", "--model", model, "--gpu", "h200", "--context", "4K", "--rate", "2"],
                ["frontier", "--model", model, "--gpu", "h200", "--points", "5"],
                ["gpu", "list"],
            ]
        )
    )
    return Case(
        "gpu_profile",
        [*argv, "--json"],
        files={"h200.yaml": text},
        env={"KVPLAN_HARDWARE_DIR": "{dir}"},
    )


ENGINE_BASES = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(ENGINE_DIR.glob("*.yaml"))}


@st.composite
def engine_profile_cases(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(ENGINE_BASES)))
    doc = draw(mutated(ENGINE_BASES[name], max_mutations=2))
    text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
    model = draw(st.sampled_from(SIM_MODELS))
    argv = ["plan", "--model", model, "--gpu", "h200", "--engine", name, "--context", "8K"]
    if draw(st.booleans()):
        argv += ["--rate", "2"]
    files = {f"{other}.yaml": to_yaml(body) for other, body in ENGINE_BASES.items()}
    files[f"{name}.yaml"] = text
    return Case(
        "engine_profile", [*argv, "--json"], files=files, env={"KVPLAN_ENGINE_DIR": "{dir}"}
    )


FITS_DIR = DEFAULT_PROFILE_DIR / "fits"
FIT_BASES = {
    p.stem: yaml.safe_load(p.read_text()) for p in sorted((FITS_DIR / "h200").glob("*.yaml"))
}
FIT_DEFAULTS = yaml.safe_load((FITS_DIR / "engine_defaults.yaml").read_text())


@st.composite
def fits_cases(draw: st.DrawFn) -> Case:
    """Fitted kernel curves (hardware_profiles/fits/<gpu>/<engine>.yaml) and the engines'
    communication defaults, mutated, under a profile folder of their own."""
    engine = draw(st.sampled_from(sorted(FIT_BASES)))
    doc = draw(mutated(FIT_BASES[engine], max_mutations=3))
    text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
    defaults = draw(mutated(FIT_DEFAULTS, max_mutations=1)) if draw(st.booleans()) else FIT_DEFAULTS
    files = {
        "h200.yaml": to_yaml(GPU_BASE),
        f"fits/h200/{engine}.yaml": text,
        "fits/engine_defaults.yaml": to_yaml(defaults),
    }
    model = draw(st.sampled_from(SIM_MODELS))
    argv = ["plan", "--model", model, "--gpu", "h200", "--engine", engine]
    argv += ["--context", draw(st.sampled_from(["1K", "8K", "32K"]))]
    argv += _maybe(draw, "--rate", st.sampled_from(["0.5", "2", "20"]))
    argv += _maybe(draw, "--ep", st.sampled_from(["8"]))
    return Case("fits", [*argv, "--json"], files=files, env={"KVPLAN_HARDWARE_DIR": "{dir}"})


# --------------------------------------------------------------------------- Python API
HOSTILE_CONTEXTS = [
    -1000, -1, 0, 1, 4096, 2**20, 2**40, 2**40 + 1, 2**63, 2**70, 1.5, float("nan"),
    float("inf"), True, "5", None, [], [0, 1024], [1, -1], np.array([1, 2**30]),
]  # fmt: skip


def _finite_non_negative(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _finite_non_negative(item)
        return
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InvariantError(f"result has a negative or non-finite value: {value!r}"[:300])


@dataclass
class APICase:
    surface: str
    description: str
    call: Callable[[], Any]
    seconds: float = 20.0

    def run(self) -> Result:
        if self.surface == "url":
            return _link_result(self.call, self.seconds)
        return run_api(self.call, _finite_non_negative, self.seconds)


@st.composite
def api_cases(draw: st.DrawFn) -> APICase:
    name = draw(st.sampled_from([*CATALOG, "no-such-model"]))
    kv_dtype = draw(st.sampled_from([None, None, "bf16", "fp8", "fp4"]))
    method = draw(
        st.sampled_from(
            [
                "kv_bytes",
                "cache_bytes",
                "read_bytes",
                "decode_flops_per_token",
                "flops_per_token",
                "flops_breakdown",
                "per_layer_kv_bytes",
                "state_bytes",
                "weight_breakdown",
            ]
        )
    )
    context = draw(st.one_of(st.sampled_from(HOSTILE_CONTEXTS), st.integers(0, 2**40)))
    query = draw(st.sampled_from([1, 2, 4096, 0, -1, 2**40, 2**41]))

    def call() -> Any:
        model = load_model(name, kv_dtype)
        if method == "state_bytes":
            return model.state_bytes()
        if method == "weight_breakdown":
            lines = model.weight_breakdown
            total, active = model.total_params, model.active_params
            if active > total:
                raise InvariantError(f"active params {active} > total {total}")
            return {k: [v.params, v.bytes, v.active_params] for k, v in lines.items()}
        if method == "flops_per_token":
            return model.flops_per_token(context, query)
        if method == "flops_breakdown":
            return model.flops_breakdown(context, query)
        if method == "per_layer_kv_bytes":
            return model.per_layer_kv_bytes(context)
        return getattr(model, method)(context)

    return APICase("api", f"{name} kv_dtype={kv_dtype} {method}({context!r}, q={query})", call)


# --------------------------------------------------------------------------- calibration
ENGINE_LOGS = {
    p.name: p.read_text(encoding="utf-8", errors="replace")
    for p in sorted((ROOT / "tests" / "fixtures" / "engine_logs").glob("*.log"))
}
CALIBRATED = sorted((ROOT / "hardware_profiles" / "calibrated").glob("*.json"))
BENCH_RESULT = {  # field names of vllm/benchmarks/serve.py's --save-result JSON
    "date": "20261125-120000",
    "backend": "vllm",
    "max_concurrency": 32,
    "request_rate": "inf",
    "duration": 100.0,
    "completed": 200,
    "total_input_tokens": 204800,
    "total_output_tokens": 102400,
    "request_throughput": 2.0,
    "mean_ttft_ms": 250.0,
    "mean_tpot_ms": 30.0,
    "median_tpot_ms": 29.0,
}
NUMBER_IN_TEXT = re.compile(r"\d[\d,]*(?:\.\d+)?")
COMPLETE_LOGS = ["vllm_v0_llama31_8b_rtx3090_20k.log", "vllm_v1_lvllm_a40.log"]
# Engine-terms documents as kvplan calibrate writes them (the fuzz mutates them).
TERMS_BASES = [
    terms_from_log(ENGINE_LOGS[name], name, load_gpu("h100-sxm"), today=datetime.date(2026, 11, 25))
    for name in COMPLETE_LOGS
]


@st.composite
def engine_log(draw: st.DrawFn) -> str:
    """A real start-up log with some of its lines' numbers replaced, lines dropped or
    repeated."""
    # The logs that import on an H100 profile twice as often (their valid path is longest).
    names = [*sorted(ENGINE_LOGS), *COMPLETE_LOGS]
    lines = ENGINE_LOGS[draw(st.sampled_from(names))].splitlines()
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["number", "number", "drop", "repeat"]))
        if action == "number":
            text = draw(st.sampled_from([*NUMBER_TEXTS, "1" * 400, "0.0", "9" * 40]))
            lines[i] = NUMBER_IN_TEXT.sub(text, lines[i], count=1)
        elif action == "drop":
            del lines[i]
        else:
            lines.insert(i, lines[i])
    return "\n".join(lines) + "\n"


@st.composite
def calibrate_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["log", "log", "bench", "profile", "terms"]))
    model = draw(st.sampled_from(SIM_MODELS))
    if kind == "terms":  # plan --engine-terms with a (mutated) file calibrate wrote
        doc = draw(mutated(draw(st.sampled_from(TERMS_BASES)), max_mutations=2))
        text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
        argv = ["plan", "--model", model, "--gpu", "h100-sxm", "--context", "8K"]
        argv += [
            "--engine-terms",
            "{dir}/t.yaml",
            *(["--rate", "2"] if draw(st.booleans()) else []),
        ]
        return Case("calibrate", [*argv, "--json"], files={"t.yaml": text})
    if kind == "log":
        argv = ["calibrate", "--from-log", "{dir}/e.log", "--gpu", "h100-sxm"]
        argv += ["--out", "{dir}/t.yaml"]
        if draw(st.booleans()):  # compare the log's KV pool with kvplan's
            argv += ["--model", model, *_maybe(draw, "--context", token_text)]
        return Case("calibrate", [*argv, "--json"], files={"e.log": draw(engine_log())})
    if kind == "bench":
        result = draw(mutated(BENCH_RESULT, max_mutations=2))
        argv = ["calibrate", "--from-bench", "{dir}/r.json", "--model", "llama-3.1-70b"]
        argv += ["--gpu", "h100-sxm", "--out", "{dir}/t.yaml"]
        return Case("calibrate", [*argv, "--json"], files={"r.json": to_json(result)})
    path = draw(st.sampled_from(CALIBRATED))
    profile = json.loads(path.read_text())
    raw = {k: profile.pop(k) for k in ("measurements", "skipped") if k in profile}
    profile = {**draw(mutated(profile, max_mutations=2)), **raw}  # the fits, not the raw data
    gpu = "h100-sxm" if path.name.startswith("h100") else "h200"
    argv = ["plan", "--model", model, "--gpu", gpu, "--context", "8K"]
    argv += ["--gpu-profile", "{dir}/p.json", *(["--rate", "2"] if draw(st.booleans()) else [])]
    return Case("calibrate", [*argv, "--json"], files={"p.json": to_json(profile)})


# --------------------------------------------------------------------------- migration
def _migration_base() -> dict[str, Any]:
    """scenarios/migration-quick.yaml shrunk to a few simulated minutes of light traffic
    (valid cases stay cheap; the phases keep their order and kinds)."""
    doc = yaml.safe_load((ROOT / "scenarios" / "migration-quick.yaml").read_text())
    doc["duration_h"] = 0.4
    doc["traffic"]["rate_per_s"] = 0.05
    for phase in doc["phases"]:
        for key in ("at_h", "duration_h", "ramp_h"):
            if key in phase:
                phase[key] = round(phase[key] / 10, 4)
    for fleet in doc["fleets"].values():
        fleet["provisioning_delay_s"] = 60
    doc["simulation"] = {"mode": "full", "drain_s": 30}
    return doc


MIGRATION_BASE = _migration_base()


@st.composite
def migration_cases(draw: st.DrawFn) -> Case:
    doc = copy.deepcopy(MIGRATION_BASE)
    if draw(st.booleans()):
        doc["simulation"]["mode"] = "hybrid"
        doc["simulation"]["settle_h"] = 0.05
        doc["simulation"]["lead_h"] = draw(st.sampled_from([0, 0.02]))
    if draw(st.integers(0, 3)) == 0:
        doc["fleets"]["target"]["replicas"] = draw(
            st.sampled_from(
                [
                    {"policy": "sized"},
                    {"policy": "autoscale", "max_replicas": 2, "interval_s": 60},
                ]
            )
        )
    doc = draw(mutated(doc, max_mutations=2))
    text = to_yaml(doc) if draw(st.integers(0, 9)) else draw(raw_attacks("yaml"))
    argv = ["migrate", "{dir}/m.yaml", "--scheduler", "serial", "--json", "-"]
    argv += _maybe(draw, "--mode", st.sampled_from(["full", "hybrid"]))
    if draw(st.integers(0, 3)) == 0:
        argv += ["--csv", draw(st.sampled_from(["{dir}/h.csv", "{dir}/no/h.csv", ""]))]
    return Case("migrate", argv, files={"m.yaml": text}, seconds=120.0)


# --------------------------------------------------------------------------- URL
def _link_result(check: Callable[[], None], seconds: float) -> Result:
    """A link check's outcome: ok, or an invariant finding (a broken assertion), or a
    traceback / hang (via run_api)."""

    def call() -> None:
        try:
            check()
        except AssertionError as bad:
            raise InvariantError(f"{type(bad).__name__}: {bad}") from None

    return run_api(call, lambda _: None, seconds)


@st.composite
def url_cases(draw: st.DrawFn) -> APICase:
    """Dashboard links: the sidebar state any query gives (cheap), and one in ten rendered
    on a page through Streamlit's AppTest (each a full script run)."""
    from tests.ui.test_url_fuzz import PAGES, check_link, check_page, links

    query = draw(links)
    if draw(st.integers(0, 9)):
        return APICase("url", f"url_state({query!r})", lambda: check_link(query))
    page = draw(st.sampled_from(PAGES))
    case = APICase("url", f"page {page} with ?{query!r}", lambda: check_page(query, page, 60))
    case.seconds = 120.0
    return case


SURFACES: dict[str, st.SearchStrategy[Any]] = {
    "cli": cli_cases(),
    "config.json": config_cases(),
    "scenario": scenario_cases(),
    "trace": trace_cases(),
    "gpu_profile": gpu_profile_cases(),
    "engine_profile": engine_profile_cases(),
    "api": api_cases(),
    "calibrate": calibrate_cases(),
    "fits": fits_cases(),
    "url": url_cases(),
    "migrate": migration_cases(),
}
