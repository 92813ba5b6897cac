"""The replica layouts a search tries for one model, GPU and engine.

A layout is GPUs per replica x attention tensor parallel (the rest of the replica's GPUs are
data-parallel attention groups) x MTP on/off x dual micro-batch overlap on/off ("DBO") x
expert-parallel load balancing on/off ("EPLB"; both only for MoE over more than one GPU) x
the MoE token dispatch (all-gather / reduce-scatter, vLLM's and SGLang's default, or DeepEP
all-to-all, "DeepEP"; only where it applies: MoE with expert parallelism and attention DP
> 1), with expert parallelism over every GPU of the replica (vLLM's and SGLang's
expert-parallel MoE). Layouts that cannot run are skipped here:
a TP size that does not divide the GPU count or the attention heads, TP beyond one NVLink
node, expert parallelism that does not split the routed experts evenly, MTP on a model
without an MTP module. For a dense model data-parallel attention inside a replica is the same
as more, smaller replicas, so only TP = GPUs per replica is tried. Whether the weights fit is
the planner's question (asked when the layout is evaluated).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from planner.model.model import Model
from planner.schema import Deployment, MoEFFNSpec
from planner.search.spec import SearchSpec

# Engines run attention tensor parallelism inside one NVLink node (8 GPUs on HGX/DGX
# boards); larger TP would cross the network on every layer.
MAX_TENSOR_PARALLEL = 8
# TensorRT-LLM's attention data parallelism runs attention at TP 1 (enable_attention_dp),
# and kvplan has no verified TensorRT-LLM flag for micro-batch overlap or EPLB
# (planner/data/launch_flags.yaml).
ATTENTION_DP_AT_TP1_ONLY = {"trtllm"}
NO_OVERLAP_OR_EPLB = {"trtllm"}
# The engines whose MoE dispatch kvplan can choose with a verified flag (TensorRT-LLM runs
# its own default, hardware_profiles/fits/engine_defaults.yaml).
DISPATCH_CHOICE = {"vllm", "sglang"}
# SGLang derives its default mem_fraction_static from a reserve that grows with the
# data-parallel attention size times the CUDA-graph batch (engines/sglang.yaml), which leaves
# nothing for weights past a few nodes of DP attention; wide-EP deployments set it by hand.
# The value SGLang's own large-scale EP instructions use on 80 GB H100 decode nodes (DP =
# TP = 8 x nodes, DeepEP, two-batch overlap): sgl-project/sglang issue #6017 "Instruction
# for Running DeepSeek with Large-scale PD and EP" (2025-05), --mem-fraction-static 0.846.
# The launch command carries it (--mem-fraction-static).
SGLANG_DP_ATTENTION_MEM_FRACTION = 0.846


@dataclass(frozen=True)
class Layout:
    model: str
    gpu: str
    engine: str
    deployment: Deployment
    source: str = ""  # how the search was given the model (a catalog name or a config path)

    @property
    def model_source(self) -> str:
        return self.source or self.model

    @property
    def label(self) -> str:
        d = self.deployment
        parts = [f"{d.gpus_per_replica}x{self.gpu}", f"TP{d.tp}"]
        if d.attention_dp > 1:
            parts.append(f"DP{d.attention_dp}")
        parts.append(f"EP{d.ep}")
        if d.mtp:
            parts.append("MTP")
        if d.overlap_micro_batches:
            parts.append("DBO")
        if d.eplb:
            parts.append("EPLB")
        if d.moe_dispatch == "all_to_all" and self.engine in DISPATCH_CHOICE:
            parts.append("DeepEP")
        return " ".join(parts) + f" ({self.engine})"


def _routed_experts(model: Model) -> set[int]:
    return {
        layer.ffn.num_routed_experts
        for layer, _ in model.distinct_layers
        if isinstance(layer.ffn, MoEFFNSpec)
    }


def _heads(model: Model) -> set[int]:
    return {kind.spec.num_heads for kind, _ in model.attention_groups}


def layouts_for(
    model: Model, gpu: str, engine: str, spec: SearchSpec, source: str = ""
) -> list[Layout]:
    """Every valid layout of the search space for one model on one GPU type and engine."""
    experts = _routed_experts(model)
    heads = _heads(model)
    mtp_options = [m for m in spec.mtp if not m or model.spec.mtp is not None]
    out = []
    for gpus in sorted(set(spec.gpus_per_replica)):
        if any(e % gpus for e in experts):
            continue
        for tp in sorted(set(spec.tensor_parallel)):
            if gpus % tp or tp > MAX_TENSOR_PARALLEL or any(h % tp for h in heads):
                continue
            if not experts and tp != gpus:
                continue
            if engine in ATTENTION_DP_AT_TP1_ONLY and 1 < tp < gpus:
                continue
            expert_parallel = bool(experts) and gpus > 1
            extras = engine not in NO_OVERLAP_OR_EPLB
            overlaps = [o for o in spec.overlap if not o or (expert_parallel and extras)]
            balancing = [b for b in spec.eplb if not b or (expert_parallel and extras)]
            dispatched = expert_parallel and tp < gpus and engine in DISPATCH_CHOICE
            dispatches: list[str | None] = list(spec.moe_dispatch) if dispatched else [None]
            for mtp, overlap, eplb, dispatch in itertools.product(
                mtp_options, overlaps, balancing, dispatches
            ):
                fields: dict[str, object] = {
                    "engine": engine,
                    "gpus_per_replica": gpus,
                    "tensor_parallel": tp,
                    "mtp": mtp,
                    "overlap_micro_batches": overlap,
                    "eplb": eplb,
                    "moe_dispatch": dispatch,
                }
                if engine == "sglang" and tp < gpus:
                    fields["gpu_memory_utilization"] = SGLANG_DP_ATTENTION_MEM_FRACTION
                if mtp:
                    fields["mtp_acceptance_rate"] = spec.mtp_acceptance_rate
                if spec.kv_dtype is not None:
                    fields["kv_dtype"] = spec.kv_dtype
                if spec.gpu_calibration is not None:
                    fields["gpu_calibration"] = spec.gpu_calibration
                deployment = Deployment.model_validate(fields)
                layout = Layout(model.name, gpu, engine, deployment, source or model.name)
                out.append(layout)
    return out
