"""Per-layer and per-component summaries of one model (for `kvplan model show`)."""

from __future__ import annotations

from typing import Any

from planner.model.model import Model


def layer_rows(model: Model, context_tokens: int | None = None) -> list[dict[str, Any]]:
    """One row per layer: kind, cache growth per token, fixed state, KV at L if given."""
    rows = []
    for i in range(model.num_layers):
        kind = model.attention(i)
        spec = kind.spec
        row: dict[str, Any] = {
            "layer": i,
            "kind": kind.label,
            "compress_ratio": getattr(spec, "compress_ratio", 1),
            "kv_bytes_per_token": kind.kv_bytes_per_token,
            "state_bytes": kind.state_bytes(),
            "ffn": model.spec.layers[i].ffn.kind,
        }
        if context_tokens is not None:
            row["kv_bytes_at_context"] = float(kind.kv_bytes(context_tokens))
        rows.append(row)
    return rows


def model_summary(model: Model, context_tokens: int | None = None) -> dict[str, Any]:
    lines = model.weight_breakdown
    summary: dict[str, Any] = {
        "name": model.name,
        "display_name": model.spec.display_name,
        "architecture": model.spec.architecture,
        "num_layers": model.num_layers,
        "layers_by_kind": model.layer_counts_by_kind,
        "max_context_tokens": model.max_context_tokens,
        "total_params": model.total_params,
        "active_params": model.active_params,
        "reference_total_params": model.spec.reference_total_params,
        "reference_active_params": model.spec.reference_active_params,
        "weight_bytes": model.weight_bytes,
        "weights": {k: {"params": v.params, "bytes": v.bytes} for k, v in lines.items()},
        "kv_bytes_per_token": model.kv_bytes_per_token,
        "state_bytes_per_sequence": model.state_bytes(),
        "layers": layer_rows(model, context_tokens),
        "notes": list(model.spec.notes),
    }
    if context_tokens is not None:
        summary["context_tokens"] = context_tokens
        # Computed all the same, and flagged (as compare does).
        summary["beyond_max_context"] = context_tokens > model.max_context_tokens
        summary["kv_bytes_per_sequence"] = float(model.kv_bytes(context_tokens))
        summary["decode_flops_breakdown"] = {
            k: float(v) for k, v in model.flops_breakdown(context_tokens).items()
        }
    return summary
