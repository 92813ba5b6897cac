"""A model as deployed: the spec with the deployment's dtype choices applied, on a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from planner.errors import KvplanError
from planner.hardware import GPU
from planner.model.model import Model
from planner.model.transform import with_model_kv_dtype, with_weight_formats
from planner.schema import Deployment


@dataclass(frozen=True)
class Deployed:
    """Everything the plan layer needs: model (with dtype overrides), GPU and layout."""

    model: Model
    gpu: GPU
    deployment: Deployment

    @classmethod
    def build(cls, model: Model, gpu: GPU, deployment: Deployment) -> Deployed:
        spec = with_weight_formats(model.spec, deployment.weight_formats)
        if deployment.kv_dtype is not None:
            spec = with_model_kv_dtype(spec, deployment.kv_dtype)
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
        return cls(deployed_model, gpu, deployment)

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
