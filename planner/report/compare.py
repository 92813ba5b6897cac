"""Side-by-side comparison of models at one context length (the `kvplan compare` contract)."""

from __future__ import annotations

from typing import Any

from planner.model.model import Model

RATIO_BASIS = (
    "kv_ratio_vs_first compares the whole per-sequence cache (kv_bytes + state_bytes); "
    "flops_ratio_vs_first compares decode FLOPs for the token at position context_tokens"
)


def compare_models(models: list[Model], context_tokens: int) -> dict[str, Any]:
    """The JSON-ready comparison; ratios are relative to the first model."""
    rows: list[dict[str, Any]] = []
    for model in models:
        rows.append(
            {
                "name": model.name,
                "kv_bytes_per_sequence": round(float(model.kv_bytes(context_tokens))),
                "state_bytes_per_sequence": round(model.state_bytes()),
                "decode_flops_per_token": float(model.decode_flops_per_token(context_tokens)),
                "weight_bytes": round(model.weight_bytes),
                "max_context_tokens": model.max_context_tokens,
                "beyond_max_context": context_tokens > model.max_context_tokens,
            }
        )
    first = rows[0]
    first_cache = first["kv_bytes_per_sequence"] + first["state_bytes_per_sequence"]
    for row in rows:
        cache = row["kv_bytes_per_sequence"] + row["state_bytes_per_sequence"]
        # None (JSON null) when the first model holds nothing to compare against (L = 0).
        row["kv_ratio_vs_first"] = cache / first_cache if first_cache else None
        first_flops = first["decode_flops_per_token"]
        row["flops_ratio_vs_first"] = (
            row["decode_flops_per_token"] / first_flops if first_flops else None
        )
    return {"context_tokens": context_tokens, "ratio_basis": RATIO_BASIS, "models": rows}
