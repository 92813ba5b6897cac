"""Launch commands: the serving engine's own command line for a planned replica layout.

For vLLM (``vllm serve``), SGLang (``python -m sglang.launch_server``) and TensorRT-LLM
(``trtllm-serve``): tensor and data-parallel attention sizes, expert parallelism, the
per-engine sequence cap, the token budget, the memory fraction, the KV cache dtype, MTP
speculative decoding, and for disaggregated pools the engine's prefill/decode flags. Every
flag comes from ``planner/data/launch_flags.yaml``, where each is listed with the engine
source it was read from. A replica larger than one node gets one command per node (vLLM:
multi-node data parallelism with ``--headless`` secondaries; SGLang: ``--nnodes``).

Dual micro-batch overlap maps to vLLM ``--enable-dbo`` and SGLang
``--enable-two-batch-overlap``, expert-parallel load balancing to ``--enable-eplb``, DeepEP
all-to-all MoE dispatch (``moe_dispatch: all_to_all``) to vLLM ``--all2all-backend``
(``deepep_low_latency`` on a decode pool, ``deepep_high_throughput`` otherwise, as vLLM's
expert-parallel deployment guide advises) and SGLang ``--moe-a2a-backend deepep`` (its
DeepEP mode left on ``auto``: normal kernels for prefill, low-latency for decode).
Semantics carried over (sources in the data file): vLLM's ``--max-num-seqs`` applies per
data-parallel rank; SGLang's ``--tp-size`` counts every GPU of the engine, attention runs
data-parallel over ``--dp-size`` groups with ``--enable-dp-attention``, and
``--max-running-requests`` is divided among those groups; TensorRT-LLM's attention data
parallelism runs attention at TP 1 on every GPU.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from planner.errors import KvplanError
from planner.schema import Deployment, Frozen
from planner.validation import read_document, validate

LAUNCH_FLAGS_FILE = Path(__file__).resolve().parent.parent / "data" / "launch_flags.yaml"
Role = Literal["replica", "prefill", "decode"]
HEAD_ADDRESS = "$HEAD_IP"  # placeholder the user fills in: the first node of the replica
VLLM_DP_RPC_PORT = 13345  # any free port; the vLLM data-parallel deployment docs use 13345
SGLANG_DIST_PORT = 5000  # any free port for torch.distributed initialisation
VLLM_MTP_METHOD = "deepseek_mtp"
SGLANG_MTP = ("EAGLE", 1, 1, 2)  # algorithm, steps, top-k, draft tokens (one MTP module)
VLLM_DEEPEP = {"decode": "deepep_low_latency"}  # else deepep_high_throughput
SGLANG_DEEPEP = "deepep"
TRTLLM_CONFIG_NAME = "kvplan-trtllm.yml"


class FlagSpec(Frozen):
    takes_value: bool
    source: str = Field(min_length=1)


class EngineFlags(Frozen):
    program: str
    version: str
    flags: dict[str, FlagSpec]


class ModelId(Frozen):
    hf_id: str
    source: str = Field(min_length=1)


class LaunchFlagsFile(Frozen):
    engines: dict[str, EngineFlags]
    models: dict[str, ModelId]


@cache
def launch_flags() -> LaunchFlagsFile:
    return validate(LaunchFlagsFile, read_document(LAUNCH_FLAGS_FILE), LAUNCH_FLAGS_FILE.name)


@dataclass(frozen=True)
class LaunchCommand:
    """One process to start: on node ``node`` of each replica of the pool."""

    role: Role
    engine: str
    node: int
    nodes: int
    argv: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # name -> content to write first

    @property
    def text(self) -> str:
        """The command for a POSIX shell; the head-node placeholder stays a variable."""
        return " ".join(a if a.startswith(HEAD_ADDRESS) else shlex.quote(a) for a in self.argv)


class _Builder:
    def __init__(self, engine: str) -> None:
        spec = launch_flags().engines.get(engine)
        if spec is None:
            raise KvplanError(
                "no launch flags on file for this engine", field="engine", value=engine
            )
        self.spec = spec
        self.argv: list[str] = shlex.split(spec.program)

    def arg(self, value: str) -> None:
        self.argv.append(value)

    def flag(self, name: str, value: object | None = None) -> None:
        known = self.spec.flags.get(name)
        if known is None:  # a programming error: every emitted flag must be verified
            raise KeyError(f"{name} is not a verified flag of {self.spec.program}")
        if known.takes_value != (value is not None):
            raise ValueError(f"{name}: value {'missing' if value is None else 'not expected'}")
        self.argv.append(name)
        if value is not None:
            self.argv.append(str(value))


def model_id(model: str) -> str:
    """The Hugging Face repository a catalog model is served from (else the name given)."""
    known = launch_flags().models.get(model)
    return known.hf_id if known is not None else model


def _fraction(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _vllm(
    model: str, d: Deployment, role: Role, moe: bool, prefix_caching: bool, node_gpus: int
) -> list[LaunchCommand]:
    nodes = max(1, math.ceil(d.gpus_per_replica / node_gpus))
    ranks_per_node = max(1, node_gpus // d.tp)
    out = []
    for node in range(nodes):
        b = _Builder("vllm")
        b.arg(model_id(model))
        if node > 0:
            b.flag("--headless")
        b.flag("--tensor-parallel-size", d.tp)
        if d.attention_dp > 1:
            b.flag("--data-parallel-size", d.attention_dp)
            if nodes > 1:
                b.flag("--data-parallel-size-local", min(ranks_per_node, d.attention_dp))
                if node > 0:
                    b.flag("--data-parallel-start-rank", node * ranks_per_node)
                b.flag("--data-parallel-address", HEAD_ADDRESS)
                b.flag("--data-parallel-rpc-port", VLLM_DP_RPC_PORT)
        if moe and d.gpus_per_replica > 1:
            b.flag("--enable-expert-parallel")
            if d.moe_dispatch == "all_to_all":
                b.flag("--all2all-backend", VLLM_DEEPEP.get(role, "deepep_high_throughput"))
        if d.overlap_micro_batches:
            b.flag("--enable-dbo")
        if d.eplb:
            b.flag("--enable-eplb")
        b.flag("--max-num-seqs", d.max_num_seqs)
        b.flag("--max-num-batched-tokens", d.max_batched_tokens)
        b.flag("--gpu-memory-utilization", _fraction(d.gpu_memory_utilization))
        if d.kv_dtype is not None:
            b.flag("--kv-cache-dtype", "fp8" if d.kv_dtype == "fp8" else "bfloat16")
        if prefix_caching:
            b.flag("--enable-prefix-caching")
        if d.mtp:
            spec = {"method": VLLM_MTP_METHOD, "num_speculative_tokens": 1}
            b.flag("--speculative-config", json.dumps(spec, separators=(",", ":")))
        if role != "replica":
            kv_role = "kv_producer" if role == "prefill" else "kv_consumer"
            config = {"kv_connector": "NixlConnector", "kv_role": kv_role}
            b.flag("--kv-transfer-config", json.dumps(config, separators=(",", ":")))
        out.append(LaunchCommand(role, "vllm", node, nodes, tuple(b.argv)))
    return out


def _sglang(
    model: str, d: Deployment, role: Role, moe: bool, prefix_caching: bool, node_gpus: int
) -> list[LaunchCommand]:
    del prefix_caching  # SGLang's radix cache is on by default
    nodes = max(1, math.ceil(d.gpus_per_replica / node_gpus))
    out = []
    for node in range(nodes):
        b = _Builder("sglang")
        b.flag("--model-path", model_id(model))
        b.flag("--tp-size", d.gpus_per_replica)
        if d.attention_dp > 1:
            b.flag("--dp-size", d.attention_dp)
            b.flag("--enable-dp-attention")
        if moe and d.gpus_per_replica > 1:
            b.flag("--ep-size", d.gpus_per_replica)
            if d.moe_dispatch == "all_to_all":
                b.flag("--moe-a2a-backend", SGLANG_DEEPEP)
        if d.overlap_micro_batches:
            b.flag("--enable-two-batch-overlap")
        if d.eplb:
            b.flag("--enable-eplb")
        b.flag("--max-running-requests", d.max_num_seqs * d.attention_dp)
        b.flag("--chunked-prefill-size", d.max_batched_tokens)
        b.flag("--mem-fraction-static", _fraction(d.gpu_memory_utilization))
        if d.kv_dtype is not None:
            b.flag("--kv-cache-dtype", "fp8_e4m3" if d.kv_dtype == "fp8" else "bf16")
        if d.mtp:
            algorithm, steps, topk, drafts = SGLANG_MTP
            b.flag("--speculative-algorithm", algorithm)
            b.flag("--speculative-num-steps", steps)
            b.flag("--speculative-eagle-topk", topk)
            b.flag("--speculative-num-draft-tokens", drafts)
        if role != "replica":
            b.flag("--disaggregation-mode", role)
            b.flag("--disaggregation-transfer-backend", "mooncake")
        if nodes > 1:
            b.flag("--nnodes", nodes)
            b.flag("--node-rank", node)
            b.flag("--dist-init-addr", f"{HEAD_ADDRESS}:{SGLANG_DIST_PORT}")
        out.append(LaunchCommand(role, "sglang", node, nodes, tuple(b.argv)))
    return out


def _trtllm(
    model: str, d: Deployment, role: Role, moe: bool, prefix_caching: bool, node_gpus: int
) -> list[LaunchCommand]:
    del prefix_caching, node_gpus  # block reuse is on by default; multi-node runs under MPI
    for name in ("overlap_micro_batches", "eplb"):
        if getattr(d, name):
            raise KvplanError(
                "no verified TensorRT-LLM flag for this option",
                field=name,
                value=True,
                expected="false for trtllm",
            )
    if 1 < d.tp < d.gpus_per_replica:
        raise KvplanError(
            "TensorRT-LLM runs attention data parallelism at attention TP 1 only",
            field="tensor_parallel",
            value=d.tp,
            expected=f"1 or {d.gpus_per_replica} for trtllm",
        )
    b = _Builder("trtllm")
    b.arg(model_id(model))
    b.flag("--tp_size", d.gpus_per_replica)
    if moe and d.gpus_per_replica > 1:
        b.flag("--ep_size", d.gpus_per_replica)
    b.flag("--max_batch_size", d.max_num_seqs)
    b.flag("--max_num_tokens", d.max_batched_tokens)
    b.flag("--kv_cache_free_gpu_memory_fraction", _fraction(d.gpu_memory_utilization))
    lines = [f"enable_attention_dp: {'true' if d.attention_dp > 1 else 'false'}"]
    if d.kv_dtype is not None:
        lines += ["kv_cache_config:", f"  dtype: {'fp8' if d.kv_dtype == 'fp8' else 'auto'}"]
    if d.mtp:
        lines += ["speculative_config:", "  decoding_type: MTP", "  num_nextn_predict_layers: 1"]
    b.flag("--config", TRTLLM_CONFIG_NAME)
    files = {TRTLLM_CONFIG_NAME: "\n".join(lines) + "\n"}
    return [LaunchCommand(role, "trtllm", 0, 1, tuple(b.argv), files)]


def launch_commands(
    model: str,
    deployment: Deployment,
    role: Role = "replica",
    *,
    moe: bool,
    prefix_caching: bool = False,
    node_gpus: int = 8,
) -> list[LaunchCommand]:
    """The commands that start one replica of ``deployment`` (one per node)."""
    build = {"vllm": _vllm, "sglang": _sglang, "trtllm": _trtllm}[deployment.engine]
    return build(model, deployment, role, moe, prefix_caching, node_gpus)


def launch_script(pools: list[tuple[str, int, list[LaunchCommand]]]) -> str:
    """A shell script for every pool: (title, replicas, commands of one replica)."""
    lines = [
        "#!/bin/sh",
        "# Generated by kvplan. Run each command on its node, once per replica; set HEAD_IP",
        "# to the address of the replica's first node.",
    ]
    for title, replicas, commands in pools:
        lines += ["", f"# {title}: {replicas} replica(s)"]
        for c in commands:
            for name, content in c.files.items():
                lines.append(f"cat > {name} <<'EOF'")
                lines += content.rstrip("\n").splitlines()
                lines.append("EOF")
            where = f"node {c.node + 1} of {c.nodes}" if c.nodes > 1 else "one node"
            lines.append(f"# {c.engine} {c.role}, {where}")
            lines.append(c.text)
    return "\n".join(lines) + "\n"
