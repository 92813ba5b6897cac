"""A model as deployed: the spec with the deployment's dtype choices and its serving
engine's cache formats applied, on a GPU, with the engine's defaults filled in.

Deployment fields the user did not set (``model_fields_set``) take the engine's values:
max_batched_tokens and max_num_seqs from its defaults tier for the GPU, the memory fraction
(vLLM gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM
free_gpu_memory_fraction) and the runtime reserve (non-torch + CUDA-graph memory). An
explicit kv_block_tokens sets the GQA/MLA page size, as vLLM's --block-size does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from planner.engines import Engine, load_engine
from planner.errors import KvplanError
from planner.hardware import GPU
from planner.model.attention import KV_DTYPE_OVERRIDES
from planner.model.model import Model
from planner.model.transform import with_attention_formats, with_weight_formats
from planner.schema import CompressedSpec, Deployment, MoEFFNSpec
from planner.units import GIB_BYTES


def nccl_communicators(deployment: Deployment, moe: bool) -> int:
    """NCCL communicators a vLLM-style engine opens on each GPU: one per parallel group of
    more than one GPU among tensor parallel, data parallel (attention) and, for MoE models,
    expert parallel (vllm distributed/parallel_state.py initialize_model_parallel creates
    the TP, DP and, for MoE models, EP GroupCoordinators; each of size > 1 gets a
    CudaCommunicator whose PyNcclCommunicator initialises its NCCL communicator eagerly,
    distributed/device_communicators/cuda_communicator.py and pynccl.py)."""
    sizes = [deployment.tp, deployment.attention_dp]
    if moe:
        sizes.append(deployment.gpus_per_replica)
    return sum(1 for size in sizes if size > 1)


def resolve_deployment(
    engine: Engine,
    gpu: GPU,
    deployment: Deployment,
    compressed_attention: bool = False,
    moe: bool = False,
) -> Deployment:
    """The deployment with the engine's defaults in every field the user left unset
    (``compressed_attention``: the model has DeepSeek-V4 layers, which some engines give
    their own defaults; ``moe``: the model has routed experts, for which vLLM opens an
    expert-parallel communicator)."""
    given = deployment.model_fields_set
    tier = engine.tier(gpu.name, gpu.profile.hbm_gib)
    spec = engine.admission_spec
    updates: dict[str, object] = {}
    max_num_seqs = deployment.max_num_seqs
    if "max_batched_tokens" not in given:
        updates["max_batched_tokens"] = tier.max_num_batched_tokens
    if "max_num_seqs" not in given:
        per_replica = engine.profile.defaults.compressed_max_num_seqs_per_replica
        if compressed_attention and per_replica is not None:
            max_num_seqs = max(1, per_replica // deployment.attention_dp)
        else:
            max_num_seqs = tier.max_num_seqs
        updates["max_num_seqs"] = max_num_seqs
    if "gpu_memory_utilization" not in given:
        updates["gpu_memory_utilization"] = engine.default_memory_fraction(
            gpu.name,
            gpu.profile.hbm_gib,
            deployment.tp,
            deployment.attention_dp,
            max_num_seqs * deployment.attention_dp,
        )
    if "runtime_reserve_gib" not in given:
        communicators = nccl_communicators(deployment, moe)
        updates["runtime_reserve_gib"] = (
            engine.non_torch_gib_for(communicators) + spec.cuda_graph_gib
        )
    return deployment.model_copy(update=updates) if updates else deployment


def _kv_formats(engine: Engine, kv_dtype: str | None) -> dict[str, dict[str, Any]]:
    """Cache formats per attention kind: kvplan's generic --kv-dtype table for kinds the
    engine's file does not list, the engine's own formats on top."""
    updates: dict[str, dict[str, Any]] = {}
    if kv_dtype is not None:
        generic = KV_DTYPE_OVERRIDES[kv_dtype]
        for kind in ("gqa", "mla", "dsa", "csa", "hca", "swa"):
            updates[kind] = dict(generic[kind if kind in generic else "v4"])
    for kind, update in engine.kv_format_updates(kv_dtype).items():
        updates[kind] = {**updates.get(kind, {}), **update}
    return updates


def _engine_for(deployment: Deployment, engine: Engine | None = None) -> Engine:
    engine = engine or load_engine(deployment.engine)
    if "kv_block_tokens" not in deployment.model_fields_set:
        return engine
    tokens = deployment.kv_block_tokens
    blocks = engine.blocks.model_copy(update={"gqa_tokens": tokens, "mla_tokens": tokens})
    return Engine(engine.profile.model_copy(update={"blocks": blocks}))


@dataclass(frozen=True)
class Deployed:
    """Everything the plan layer needs: model (with dtype overrides), GPU and layout."""

    model: Model
    gpu: GPU
    deployment: Deployment
    engine: Engine

    @classmethod
    def build(
        cls, model: Model, gpu: GPU, deployment: Deployment, engine: Engine | None = None
    ) -> Deployed:
        """The deployed model; ``engine`` replaces the deployment's engine file (a logged
        release's settings, for the validation against engine logs)."""
        engine = _engine_for(deployment, engine)
        compressed = any(isinstance(layer.attention, CompressedSpec) for layer in model.spec.layers)
        moe = any(isinstance(layer.ffn, MoEFFNSpec) for layer in model.spec.layers)
        deployment = resolve_deployment(engine, gpu, deployment, compressed, moe)
        spec = with_weight_formats(model.spec, deployment.weight_formats)
        spec = with_attention_formats(spec, _kv_formats(engine, deployment.kv_dtype))
        deployed_model = model if spec is model.spec else Model(spec)
        for kind, _ in deployed_model.attention_groups:
            heads = kind.spec.num_heads
            if heads % deployment.tp:
                raise KvplanError(
                    f"tensor parallel size must divide the {heads} attention heads of {model.name}",
                    field="tensor_parallel",
                    value=deployment.tp,
                    expected="a divisor of "
                    + str(heads)
                    + " (set --tp, or a gpus_per_replica that divides it)",
                )
        return cls(deployed_model, gpu, deployment, engine)

    @property
    def runtime_reserve_bytes(self) -> float:
        return self.deployment.runtime_reserve_gib * GIB_BYTES

    @property
    def gpus(self) -> int:
        return self.deployment.gpus_per_replica

    @property
    def tp(self) -> int:
        return self.deployment.tp

    @property
    def attention_dp(self) -> int:
        return self.deployment.attention_dp

    @cached_property
    def tokens_per_step_per_sequence(self) -> float:
        """Tokens one decode step emits per sequence: 1, plus accepted MTP drafts."""
        d = self.deployment
        if d.mtp and self.model.spec.mtp is None:
            raise KvplanError(
                "the model has no MTP module",
                field="mtp",
                value=True,
                expected="mtp: false for this model",
            )
        return 1.0 + (d.mtp_acceptance_rate if d.mtp else 0.0)

    @cached_property
    def query_tokens_per_step(self) -> int:
        """Tokens each sequence feeds the main model per decode step (1 + draft)."""
        return 2 if self.deployment.mtp else 1

    def check_context(self, context_tokens: int) -> None:
        limit = self.model.max_context_tokens
        if context_tokens > limit:
            raise KvplanError(
                f"context is beyond {self.model.name}'s maximum context of {limit:,} tokens",
                field="context",
                value=context_tokens,
                expected=f"<= {limit:,}",
            )
