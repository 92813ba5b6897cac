"""Feed-forward blocks: gated dense FFN and mixture of experts (weights and per-token work).

A gated FFN (SwiGLU) has three matrices: gate and up (hidden x inter) and down
(inter x hidden). An MoE layer has a router (hidden x experts; hash-routed layers keep it
to weight the chosen experts), ``num_routed_experts`` such FFNs of which
``experts_per_token`` run per token, and shared experts that run for every token
(DeepSeek-V3 report, sec. 2.1.2).
"""

from __future__ import annotations

from planner.model.attention import Matrix
from planner.schema import DenseFFNSpec, FFNSpec, MoEFFNSpec

GATED_FFN_MATRICES = ("gate_proj", "up_proj", "down_proj")


def _gated(
    group: str, prefix: str, hidden: int, inter: int, count: int, active: int
) -> list[Matrix]:
    shapes = {
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }
    return [
        Matrix(group, f"{prefix}.{name}", *shapes[name], count=count, active=active)
        for name in GATED_FFN_MATRICES
    ]


def ffn_matrices(spec: FFNSpec, hidden_size: int) -> list[Matrix]:
    """All weight matrices of one FFN block, with how many of each run per token."""
    if isinstance(spec, DenseFFNSpec):
        return _gated("dense_ffn", "mlp", hidden_size, spec.intermediate_size, 1, 1)
    assert isinstance(spec, MoEFFNSpec)
    # Hash-routed layers (V4's first layers) pick experts by token id but still score them
    # with the gate to weight their outputs (V4 inference/model.py Gate), so both have it.
    mats: list[Matrix] = [Matrix("router", "gate", hidden_size, spec.num_routed_experts)]
    mats += _gated(
        "routed_experts",
        "experts",
        hidden_size,
        spec.expert_intermediate_size,
        spec.num_routed_experts,
        spec.experts_per_token,
    )
    if spec.shared_width:
        mats += _gated("shared_experts", "shared_experts", hidden_size, spec.shared_width, 1, 1)
    return mats
