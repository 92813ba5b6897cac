"""Build a ModelSpec from a Hugging Face ``config.json``.

Supported families (by ``model_type``, or by ``architectures[0]``):
- DeepSeek: deepseek_v3 (MLA), deepseek_v32 (DSA), deepseek_v4 (CSA/HCA/SWA).
- GQA dense: llama, mistral, qwen2, qwen3.  GQA MoE: mixtral, qwen2_moe, qwen3_moe.

Where the config is silent, the defaults are Hugging Face's own documented defaults for
that field (e.g. num_key_value_heads = num_attention_heads, head_dim = hidden / heads);
defaults that are ours (KV storage of the reference serving stack) are listed in the
spec's ``notes`` so nothing is assumed silently.

Every field is checked at the edge, before any layer is built: counts are integers in the
range ``FIELD_MAXIMA`` gives (bounds from ``planner.limits``: what any real model has, with
wide room), flags are JSON booleans (``"false"`` as a string is refused, never read as
true), ``torch_dtype`` is one of the dtypes named in ``DTYPE_TO_FORMAT``, and structured
fields (``architectures``, ``quantization_config``, ``mlp_only_layers``) have their JSON
types. Errors name the config.json key, the value and the allowed range.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner import limits as lim
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
# torch_dtype / dtype absent: kvplan takes the weights as BF16 (said in the spec's notes).
DEFAULT_WEIGHT_FORMAT = "bf16"
DTYPE_ABSENT_NOTE = "torch_dtype absent: weights taken as BF16."
# V4 compress_ratios: 4 = CSA (overlapping compressor), 0 = sliding window only, else HCA.
CSA_RATIO = 4
CSA_COMPRESSOR_OVERLAP = 2  # inference/model.py Compressor: coff = 2 if ratio == 4

# Largest value accepted for each count field of config.json (see planner.limits).
FIELD_MAXIMA: dict[str, int] = {
    "num_hidden_layers": lim.MAX_LAYERS,
    "first_k_dense_replace": lim.MAX_LAYERS,
    "decoder_sparse_step": lim.MAX_LAYERS,
    "num_hash_layers": lim.MAX_LAYERS,
    "hidden_size": lim.MAX_HIDDEN_SIZE,
    "intermediate_size": lim.MAX_INTERMEDIATE_SIZE,
    "moe_intermediate_size": lim.MAX_INTERMEDIATE_SIZE,
    "shared_expert_intermediate_size": lim.MAX_INTERMEDIATE_SIZE,
    "num_attention_heads": lim.MAX_HEADS,
    "num_key_value_heads": lim.MAX_HEADS,
    "index_n_heads": lim.MAX_HEADS,
    "o_groups": lim.MAX_HEADS,
    "head_dim": lim.MAX_HEAD_DIM,
    "qk_nope_head_dim": lim.MAX_HEAD_DIM,
    "qk_rope_head_dim": lim.MAX_HEAD_DIM,
    "v_head_dim": lim.MAX_HEAD_DIM,
    "index_head_dim": lim.MAX_HEAD_DIM,
    "q_lora_rank": lim.MAX_RANK,
    "kv_lora_rank": lim.MAX_RANK,
    "o_lora_rank": lim.MAX_RANK,
    "n_routed_experts": lim.MAX_EXPERTS,
    "num_local_experts": lim.MAX_EXPERTS,
    "num_experts": lim.MAX_EXPERTS,
    "num_experts_per_tok": lim.MAX_EXPERTS,
    "n_shared_experts": lim.MAX_EXPERTS,
    "vocab_size": lim.MAX_VOCAB_SIZE,
    "max_position_embeddings": lim.MAX_CONTEXT_TOKENS,
    "sliding_window": lim.MAX_CONTEXT_TOKENS,
    "index_topk": lim.MAX_CONTEXT_TOKENS,
    "num_nextn_predict_layers": lim.MAX_MTP_MODULES,
    "hc_mult": lim.MAX_HC_MULT,
    "compress_ratios": lim.MAX_COMPRESS_RATIO,
}


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
        maximum = FIELD_MAXIMA[field]
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigError(
                "not a valid count",
                where=self.where,
                field=field,
                value=value,
                expected=f"an integer from {minimum} to {maximum:,}",
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

    def count_list(self, field: str, max_length: int) -> list[int]:
        value = self.cfg.get(field)
        if value is None:
            raise self._missing(field)
        maximum = FIELD_MAXIMA[field]
        if (
            not isinstance(value, list)
            or len(value) > max_length
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= maximum for v in value
            )
        ):
            raise ConfigError(
                "not a list of integers in range",
                where=self.where,
                field=field,
                value=value if isinstance(value, int | str) else None,
                expected=f"at most {max_length:,} integers from 0 to {maximum:,}",
            )
        return value

    def text(self, field: str, default: str | None = None) -> str | None:
        """A string field (absent or null: ``default``)."""
        value = self.cfg.get(field)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(
                "not a string", where=self.where, field=field, value=value, expected="a string"
            )
        return value

    def index_list(self, field: str, length: int) -> set[int]:
        """A list of layer indices below ``length`` (absent or null: empty)."""
        value = self.cfg.get(field)
        if value is None:
            return set()
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < length for v in value
        ):
            raise ConfigError(
                "not a list of layer indices",
                where=self.where,
                field=field,
                value=value if isinstance(value, int | str) else None,
                expected=f"a list of integers from 0 to {length - 1}",
            )
        return set(value)


def architectures_of(cfg: dict[str, Any], where: str) -> list[str]:
    """The ``architectures`` list (absent or null: empty); a list of strings or an error."""
    value = cfg.get("architectures")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ConfigError(
            "not a list of architecture names",
            where=where,
            field="architectures",
            value=value if isinstance(value, int | float | str) else None,
            expected='a list of strings, e.g. ["LlamaForCausalLM"]',
        )
    return value


def model_type_of(cfg: dict[str, Any], where: str) -> str:
    model_type = cfg.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise ConfigError(
            "not a string",
            where=where,
            field="model_type",
            value=model_type if isinstance(model_type, int | float) else None,
            expected="a model type name, e.g. 'llama'",
        )
    if model_type in BUILDERS:
        return str(model_type)
    architectures = architectures_of(cfg, where)
    for arch in architectures:
        if arch in ARCHITECTURE_TO_TYPE:
            return ARCHITECTURE_TO_TYPE[arch]
    shown = model_type if model_type is not None else architectures
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


def _weight_format(cfg: dict[str, Any], where: str = "config.json") -> str:
    """Storage of the checkpoint's linear weights from quantization_config / torch_dtype."""
    quant = cfg.get("quantization_config")
    if quant is None:
        quant = {}
    if not isinstance(quant, dict):
        raise ConfigError(
            "not a JSON object",
            where=where,
            field="quantization_config",
            value=quant if isinstance(quant, int | float | str) else None,
            expected='an object such as {"quant_method": "fp8"}',
        )
    method = quant.get("quant_method")
    if method is not None and method != "fp8":
        raise ConfigError(
            "quantization method not supported",
            where=where,
            field="quantization_config.quant_method",
            value=method if isinstance(method, int | float | str) else None,
            expected="'fp8' (block-scaled) or no quantization_config; set the "
            "weight formats yourself with a deployment's weight_formats",
        )
    if method == "fp8":
        block = quant.get("weight_block_size")
        if block == [128, 128]:
            return "fp8_w128_ue8m0" if quant.get("scale_fmt") == "ue8m0" else "fp8_w128"
        return "fp8"
    field = "torch_dtype" if cfg.get("torch_dtype") is not None else "dtype"
    dtype = cfg.get(field)
    if dtype is None:
        return DEFAULT_WEIGHT_FORMAT
    name = dtype.removeprefix("torch.") if isinstance(dtype, str) else None
    if name not in DTYPE_TO_FORMAT:
        raise ConfigError(
            "unknown weight dtype",
            where=where,
            field=field,
            value=dtype if isinstance(dtype, int | float | str) else None,
            expected="one of " + ", ".join(DTYPE_TO_FORMAT) + " (or a quantization_config)",
        )
    return DTYPE_TO_FORMAT[name]


# --------------------------------------------------------------------------- GQA families
def _gqa_attention(r: _Reader) -> GQASpec:
    heads = r.count("num_attention_heads")
    window = None
    if r.family in ("mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        uses_window = r.family in ("mistral", "mixtral") or r.flag("use_sliding_window", False)
        window = r.opt_count("sliding_window") if uses_window else None
    kv_heads = r.count("num_key_value_heads", default=heads)
    if heads % kv_heads:
        raise ConfigError(
            f"num_attention_heads ({heads}) must be a multiple of num_kv_heads ({kv_heads})",
            where=r.where,
            field="num_key_value_heads",
            value=kv_heads,
            expected=f"a divisor of {heads}",
        )
    if r.cfg.get("head_dim") is None:
        hidden = r.count("hidden_size")
        if hidden % heads:
            raise ConfigError(
                f"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) "
                "and head_dim is absent",
                where=r.where,
                field="head_dim",
                expected="head_dim, or a hidden_size that num_attention_heads divides",
            )
    return GQASpec(
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=r.count("head_dim", default=r.count("hidden_size") // heads),
        sliding_window_tokens=window,
    )


def _experts_per_token(r: _Reader, experts_field: str) -> int:
    experts = r.count(experts_field)
    per_token = r.count("num_experts_per_tok")
    if per_token > experts:
        raise ConfigError(
            f"exceeds {experts_field} ({experts})",
            where=r.where,
            field="num_experts_per_tok",
            value=per_token,
            expected=f"1 to {experts}",
        )
    return per_token


def _gqa_ffn(r: _Reader, layer: int, dense_layers: set[int]) -> FFNSpec:
    if r.family == "mixtral":
        return MoEFFNSpec(
            num_routed_experts=r.count("num_local_experts"),
            experts_per_token=_experts_per_token(r, "num_local_experts"),
            expert_intermediate_size=r.count("intermediate_size"),
        )
    if r.family in ("qwen2_moe", "qwen3_moe"):
        step = r.count("decoder_sparse_step", default=1)
        if layer not in dense_layers and (layer + 1) % step == 0:
            experts_field = "num_local_experts" if "num_local_experts" in r.cfg else "num_experts"
            shared = r.count("shared_expert_intermediate_size", default=0, minimum=0)
            return MoEFFNSpec(
                num_routed_experts=r.count(experts_field),
                experts_per_token=_experts_per_token(r, experts_field),
                expert_intermediate_size=r.count("moe_intermediate_size"),
                num_shared_experts=1 if shared else 0,
                shared_intermediate_size=shared or None,
            )
    return DenseFFNSpec(intermediate_size=r.count("intermediate_size"))


def _build_gqa(r: _Reader) -> dict[str, Any]:
    attention = _gqa_attention(r)
    num_layers = r.count("num_hidden_layers")
    dense_layers = r.index_list("mlp_only_layers", num_layers)
    layers = tuple(
        LayerSpec(attention=attention, ffn=_gqa_ffn(r, i, dense_layers)) for i in range(num_layers)
    )
    fmt = _weight_format(r.cfg, r.where)
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
        experts_per_token=_experts_per_token(r, "n_routed_experts"),
        num_shared_experts=r.count("n_shared_experts", default=0, minimum=0),
        expert_intermediate_size=r.count("moe_intermediate_size"),
        routing=routing,
    )


def _deepseek_formats(r: _Reader, routed: str | None = None) -> WeightFormats:
    fmt = _weight_format(r.cfg, r.where)
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
    ratios = r.count_list("compress_ratios", lim.MAX_LAYERS + lim.MAX_MTP_MODULES)
    if len(ratios) < num_layers + mtp_modules:
        raise ConfigError(
            "has fewer entries than layers + MTP modules",
            where=r.where,
            field="compress_ratios",
            value=len(ratios),
            expected=f"at least {num_layers + mtp_modules} entries",
        )
    head_dim = r.count("head_dim")
    rope_dim = r.count("qk_rope_head_dim")
    if rope_dim >= head_dim:
        raise ConfigError(
            f"must be smaller than head_dim ({head_dim})",
            where=r.where,
            field="qk_rope_head_dim",
            value=rope_dim,
            expected=f"1 to {head_dim - 1}",
        )
    heads, groups = r.count("num_attention_heads"), r.count("o_groups")
    if (heads * head_dim) % groups:
        raise ConfigError(
            f"must divide num_attention_heads x head_dim ({heads * head_dim})",
            where=r.where,
            field="o_groups",
            value=groups,
        )
    common = {
        "num_heads": heads,
        "head_dim": head_dim,
        "qk_rope_head_dim": rope_dim,
        "q_lora_rank": r.count("q_lora_rank"),
        "o_lora_rank": r.count("o_lora_rank"),
        "o_groups": groups,
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
    expert_dtype = r.text("expert_dtype", default="fp4")
    if expert_dtype not in ("fp4", "fp8"):
        raise ConfigError(
            "unknown expert dtype",
            where=r.where,
            field="expert_dtype",
            value=expert_dtype,
            expected="'fp4' or 'fp8'",
        )
    routed = {"fp4": "mxfp4", "fp8": None}[expert_dtype]
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


MAX_NAME_CHARS = 100


def spec_from_hf_config(
    cfg: Any, *, name: str | None = None, where: str = "config.json"
) -> ModelSpec:
    """A ModelSpec from the fields of a Hugging Face config.json (already parsed)."""
    if not isinstance(cfg, dict):
        raise ConfigError("config.json must be a JSON object", where=where)
    family = model_type_of(cfg, where)
    r = _Reader(cfg, where, family)
    try:
        architectures = architectures_of(cfg, where) or [family]
        parts = BUILDERS[family](r)
        if all(cfg.get(k) is None for k in ("torch_dtype", "dtype", "quantization_config")):
            parts["notes"] = (*parts["notes"], DTYPE_ABSENT_NOTE)
        path_name = r.text("_name_or_path") or family
        model_name = name or path_name.split("/")[-1].lower()[:MAX_NAME_CHARS] or family
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
