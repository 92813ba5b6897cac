"""Build a ModelSpec from a Hugging Face ``config.json``.

Supported families (by ``model_type``, or by ``architectures[0]``):
- DeepSeek: deepseek_v3 (MLA), deepseek_v32 (DSA), deepseek_v4 (CSA/HCA/SWA).
- GQA dense: llama, mistral, qwen2, qwen3.  GQA MoE: mixtral, qwen2_moe, qwen3_moe.

Where the config is silent, the defaults are Hugging Face's own documented defaults for
that field (e.g. num_key_value_heads = num_attention_heads, head_dim = hidden / heads);
defaults that are ours (KV storage of the reference serving stack) are listed in the
spec's ``notes`` so nothing is assumed silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import ConfigError
from planner.schema import (
    CompressedSpec,
    DenseFFNSpec,
    DSASpec,
    FFNSpec,
    GQASpec,
    LayerSpec,
    MLASpec,
    ModelSpec,
    MoEFFNSpec,
    MTPSpec,
    WeightFormats,
)
from planner.validation import config_error_from, read_document

ARCHITECTURE_TO_TYPE = {
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "DeepseekV32ForCausalLM": "deepseek_v32",
    "DeepseekV4ForCausalLM": "deepseek_v4",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "MixtralForCausalLM": "mixtral",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe",
}
DTYPE_TO_FORMAT = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
# V4 compress_ratios: 4 = CSA (overlapping compressor), 0 = sliding window only, else HCA.
CSA_RATIO = 4
CSA_COMPRESSOR_OVERLAP = 2  # inference/model.py Compressor: coff = 2 if ratio == 4


class _Reader:
    """Typed access to config fields with errors that name the field."""

    def __init__(self, cfg: dict[str, Any], where: str, family: str) -> None:
        self.cfg = cfg
        self.where = where
        self.family = family

    def _missing(self, field: str) -> ConfigError:
        return ConfigError(
            f"missing required field for model_type '{self.family}'", where=self.where, field=field
        )

    def count(self, field: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.cfg.get(field)
        if value is None:  # absent or null: Hugging Face falls back to the default
            value = default
        if value is None:
            raise self._missing(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                "not a valid count",
                where=self.where,
                field=field,
                value=value,
                expected=f"an integer >= {minimum}",
            )
        return value

    def opt_count(self, field: str) -> int | None:
        return None if self.cfg.get(field) is None else self.count(field)

    def flag(self, field: str, default: bool) -> bool:
        value = self.cfg.get(field, default)
        if not isinstance(value, bool):
            raise ConfigError(
                "not a boolean",
                where=self.where,
                field=field,
                value=value,
                expected="true or false",
            )
        return value

    def count_list(self, field: str) -> list[int]:
        value = self.cfg.get(field)
        if value is None:
            raise self._missing(field)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise ConfigError(
                "not a list of non-negative integers", where=self.where, field=field, value=value
            )
        return value


def model_type_of(cfg: dict[str, Any], where: str) -> str:
    model_type = cfg.get("model_type")
    if model_type in BUILDERS:
        return str(model_type)
    for arch in cfg.get("architectures") or []:
        if arch in ARCHITECTURE_TO_TYPE:
            return ARCHITECTURE_TO_TYPE[arch]
    shown = model_type if model_type is not None else cfg.get("architectures")
    raise ConfigError(
        "unsupported architecture",
        where=where,
        field="model_type",
        value=shown,
        expected="one of model_type "
        + ", ".join(sorted(BUILDERS))
        + " (architectures "
        + ", ".join(sorted(ARCHITECTURE_TO_TYPE))
        + ")",
    )


def _weight_format(cfg: dict[str, Any]) -> str:
    """Storage of the checkpoint's linear weights from quantization_config / torch_dtype."""
    quant = cfg.get("quantization_config") or {}
    method = quant.get("quant_method")
    if method is not None and method != "fp8":
        raise ConfigError(
            "quantization method not supported",
            field="quantization_config.quant_method",
            value=method,
            expected="'fp8' (block-scaled) or no quantization_config; set the "
            "weight formats yourself with a deployment's weight_formats",
        )
    if method == "fp8":
        block = quant.get("weight_block_size")
        if block == [128, 128]:
            return "fp8_w128_ue8m0" if quant.get("scale_fmt") == "ue8m0" else "fp8_w128"
        return "fp8"
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    return DTYPE_TO_FORMAT.get(str(dtype), "bf16")


# --------------------------------------------------------------------------- GQA families
def _gqa_attention(r: _Reader) -> GQASpec:
    heads = r.count("num_attention_heads")
    window = None
    if r.family in ("mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        uses_window = r.family in ("mistral", "mixtral") or r.cfg.get("use_sliding_window", False)
        window = r.opt_count("sliding_window") if uses_window else None
    return GQASpec(
        num_heads=heads,
        num_kv_heads=r.count("num_key_value_heads", default=heads),
        head_dim=r.count("head_dim", default=r.count("hidden_size") // heads),
        sliding_window_tokens=window,
    )


def _gqa_ffn(r: _Reader, layer: int) -> FFNSpec:
    if r.family == "mixtral":
        return MoEFFNSpec(
            num_routed_experts=r.count("num_local_experts"),
            experts_per_token=r.count("num_experts_per_tok"),
            expert_intermediate_size=r.count("intermediate_size"),
        )
    if r.family in ("qwen2_moe", "qwen3_moe"):
        dense_layers = set(r.cfg.get("mlp_only_layers") or [])
        step = r.count("decoder_sparse_step", default=1)
        if layer not in dense_layers and (layer + 1) % step == 0:
            experts_field = "num_local_experts" if "num_local_experts" in r.cfg else "num_experts"
            shared = r.count("shared_expert_intermediate_size", default=0, minimum=0)
            return MoEFFNSpec(
                num_routed_experts=r.count(experts_field),
                experts_per_token=r.count("num_experts_per_tok"),
                expert_intermediate_size=r.count("moe_intermediate_size"),
                num_shared_experts=1 if shared else 0,
                shared_intermediate_size=shared or None,
            )
    return DenseFFNSpec(intermediate_size=r.count("intermediate_size"))


def _build_gqa(r: _Reader) -> dict[str, Any]:
    attention = _gqa_attention(r)
    layers = tuple(
        LayerSpec(attention=attention, ffn=_gqa_ffn(r, i))
        for i in range(r.count("num_hidden_layers"))
    )
    fmt = _weight_format(r.cfg)
    return {
        "layers": layers,
        "weight_formats": WeightFormats(
            embedding=fmt if fmt in DTYPE_TO_FORMAT.values() else "bf16",
            attention=fmt,
            dense_ffn=fmt,
            shared_experts=fmt,
            routed_experts=fmt,
            head=fmt if fmt in DTYPE_TO_FORMAT.values() else "bf16",
        ),
        "notes": ("KV cache stored in BF16 (kvplan default for GQA models; pass --kv-dtype).",),
    }


# --------------------------------------------------------------------------- DeepSeek
def _deepseek_moe(r: _Reader, routing: str = "gate") -> MoEFFNSpec:
    return MoEFFNSpec(
        num_routed_experts=r.count("n_routed_experts"),
        experts_per_token=r.count("num_experts_per_tok"),
        num_shared_experts=r.count("n_shared_experts", default=0, minimum=0),
        expert_intermediate_size=r.count("moe_intermediate_size"),
        routing=routing,
    )


def _deepseek_formats(r: _Reader, routed: str | None = None) -> WeightFormats:
    fmt = _weight_format(r.cfg)
    return WeightFormats(
        embedding="bf16",
        attention=fmt,
        indexer=fmt,
        compressor="bf16",
        dense_ffn=fmt,
        shared_experts=fmt,
        routed_experts=routed or fmt,
        router="bf16",
        head="bf16",
        other="fp32",
    )


def _build_deepseek_v3(r: _Reader) -> dict[str, Any]:
    mla = {
        "num_heads": r.count("num_attention_heads"),
        "q_lora_rank": r.opt_count("q_lora_rank"),
        "kv_lora_rank": r.count("kv_lora_rank"),
        "qk_nope_head_dim": r.count("qk_nope_head_dim"),
        "qk_rope_head_dim": r.count("qk_rope_head_dim"),
        "v_head_dim": r.count("v_head_dim"),
    }
    if r.family == "deepseek_v32":
        attention: MLASpec = DSASpec(
            **mla,
            latent_format="fp8_b128",
            rope_format="bf16",
            index_n_heads=r.count("index_n_heads"),
            index_head_dim=r.count("index_head_dim"),
            index_topk=r.count("index_topk"),
            index_key_format="fp8_b128",
        )
        note = (
            "KV cache as the reference stack stores it: FP8 latent with FP32 scales + BF16 "
            "RoPE (656 B) and FP8 indexer keys (132 B) per token and layer."
        )
    else:
        attention = MLASpec(**mla, latent_format="bf16", rope_format="bf16")
        note = "KV cache in BF16 as the DeepSeek-V3 reference inference code stores it."
    dense = DenseFFNSpec(intermediate_size=r.count("intermediate_size"))
    moe = _deepseek_moe(r)
    first_dense = r.count("first_k_dense_replace", default=0, minimum=0)
    layers = tuple(
        LayerSpec(attention=attention, ffn=dense if i < first_dense else moe)
        for i in range(r.count("num_hidden_layers"))
    )
    mtp_modules = r.count("num_nextn_predict_layers", default=0, minimum=0)
    mtp = (
        MTPSpec(num_modules=mtp_modules, layer=LayerSpec(attention=attention, ffn=moe))
        if mtp_modules
        else None
    )
    return {"layers": layers, "mtp": mtp, "weight_formats": _deepseek_formats(r), "notes": (note,)}


def _build_deepseek_v4(r: _Reader) -> dict[str, Any]:
    num_layers = r.count("num_hidden_layers")
    mtp_modules = r.count("num_nextn_predict_layers", default=0, minimum=0)
    ratios = r.count_list("compress_ratios")
    if len(ratios) < num_layers + mtp_modules:
        raise ConfigError(
            "has fewer entries than layers + MTP modules",
            where=r.where,
            field="compress_ratios",
            value=len(ratios),
            expected=f"at least {num_layers + mtp_modules} entries",
        )
    common = {
        "num_heads": r.count("num_attention_heads"),
        "head_dim": r.count("head_dim"),
        "qk_rope_head_dim": r.count("qk_rope_head_dim"),
        "q_lora_rank": r.count("q_lora_rank"),
        "o_lora_rank": r.count("o_lora_rank"),
        "o_groups": r.count("o_groups"),
        "sliding_window_tokens": r.count("sliding_window"),
        "entry_nope_format": "fp8_b64_ue8m0",
        "entry_rope_format": "bf16",
        "entry_pad_bytes": 1,
    }
    indexer = {
        "index_n_heads": r.count("index_n_heads"),
        "index_head_dim": r.count("index_head_dim"),
        "index_topk": r.count("index_topk"),
        "index_key_format": "mxfp4",
    }

    def attention(ratio: int) -> CompressedSpec:
        if ratio == 0:
            return CompressedSpec(kind="swa", compress_ratio=0, **common)
        if ratio == CSA_RATIO:
            return CompressedSpec(
                kind="csa",
                compress_ratio=ratio,
                compressor_overlap=CSA_COMPRESSOR_OVERLAP,
                **common,
                **indexer,
            )
        return CompressedSpec(kind="hca", compress_ratio=ratio, **common)

    hash_layers = r.count("num_hash_layers", default=0, minimum=0)
    expert_dtype = r.cfg.get("expert_dtype", "fp4")
    routed = {"fp4": "mxfp4", "fp8": None}.get(expert_dtype)
    if expert_dtype not in ("fp4", "fp8"):
        raise ConfigError(
            "unknown expert dtype",
            where=r.where,
            field="expert_dtype",
            value=expert_dtype,
            expected="'fp4' or 'fp8'",
        )
    layers = tuple(
        LayerSpec(
            attention=attention(ratios[i]),
            ffn=_deepseek_moe(r, "hash" if i < hash_layers else "gate"),
        )
        for i in range(num_layers)
    )
    mtp = (
        MTPSpec(
            num_modules=mtp_modules,
            layer=LayerSpec(attention=attention(ratios[num_layers]), ffn=_deepseek_moe(r)),
        )
        if mtp_modules
        else None
    )
    notes = [
        "KV storage of the V4 serving stack: FP8 entries (584 B) and MXFP4 indexer keys "
        "(68 B); compressor state FP32."
    ]
    if "expert_dtype" not in r.cfg:
        notes.append(
            "expert_dtype absent: routed experts taken as FP4 (MXFP4), as the V4 "
            "technical report states for released V4 checkpoints."
        )
    return {
        "layers": layers,
        "mtp": mtp,
        "hc_mult": r.count("hc_mult", default=1),
        "weight_formats": _deepseek_formats(r, routed),
        "notes": tuple(notes),
    }


BUILDERS: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "deepseek_v3": _build_deepseek_v3,
    "deepseek_v32": _build_deepseek_v3,
    "deepseek_v4": _build_deepseek_v4,
    **{
        t: _build_gqa
        for t in ("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe")
    },
}


def spec_from_hf_config(
    cfg: Any, *, name: str | None = None, where: str = "config.json"
) -> ModelSpec:
    """A ModelSpec from the fields of a Hugging Face config.json (already parsed)."""
    if not isinstance(cfg, dict):
        raise ConfigError("config.json must be a JSON object", where=where)
    family = model_type_of(cfg, where)
    r = _Reader(cfg, where, family)
    try:
        parts = BUILDERS[family](r)
        architectures = cfg.get("architectures") or [family]
        model_name = name or str(cfg.get("_name_or_path") or family).split("/")[-1].lower()
        return ModelSpec(
            name=model_name,
            display_name=name or model_name,
            architecture=str(architectures[0]),
            hidden_size=r.count("hidden_size"),
            vocab_size=r.count("vocab_size"),
            max_context_tokens=r.count("max_position_embeddings"),
            tie_word_embeddings=r.flag("tie_word_embeddings", default=False),
            sources={"*": f"imported from {where}"},
            **parts,
        )
    except ValidationError as err:
        raise config_error_from(err, where) from None


def spec_from_hf_file(path: str | Path, *, name: str | None = None) -> ModelSpec:
    return spec_from_hf_config(read_document(path), name=name, where=str(path))
