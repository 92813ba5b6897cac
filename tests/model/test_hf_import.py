"""Importing each catalog model's own config.json reproduces its catalog spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.errors import ConfigError
from planner.model.catalog import catalog_names, load_spec
from planner.model.hf_import import spec_from_hf_config, spec_from_hf_file

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hf_configs"
# Fields that describe provenance, not architecture.
PROVENANCE = {
    "name",
    "display_name",
    "sources",
    "notes",
    "reference_total_params",
    "reference_active_params",
}


@pytest.mark.parametrize("name", catalog_names())
def test_import_reproduces_catalog(name):
    imported = spec_from_hf_file(FIXTURES / f"{name}.json")
    catalog = load_spec(name)
    assert imported.model_dump(exclude=PROVENANCE) == catalog.model_dump(exclude=PROVENANCE)


def _llama() -> dict:
    return json.loads((FIXTURES / "llama-3.1-70b.json").read_text())


def test_missing_field_is_named():
    cfg = _llama()
    del cfg["num_hidden_layers"]
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        spec_from_hf_config(cfg)


def test_unsupported_architecture_lists_supported():
    with pytest.raises(ConfigError, match="gpt2.*deepseek_v4.*llama"):
        spec_from_hf_config({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})


def test_wrong_type_is_named():
    cfg = _llama()
    cfg["num_key_value_heads"] = "eight"
    with pytest.raises(ConfigError, match="num_key_value_heads.*'eight'"):
        spec_from_hf_config(cfg)


def test_heads_not_divisible_by_kv_heads():
    cfg = _llama()
    cfg["num_key_value_heads"] = 7
    with pytest.raises(ConfigError, match="multiple of num_kv_heads"):
        spec_from_hf_config(cfg)


def test_architecture_fallback_and_mha_default():
    # No model_type: the architecture picks the family; no num_key_value_heads: HF's
    # documented default is MHA (kv heads = heads).
    cfg = _llama()
    del cfg["model_type"], cfg["num_key_value_heads"]
    spec = spec_from_hf_config(cfg)
    assert spec.layers[0].attention.num_kv_heads == 64


def test_mixtral_moe_and_mistral_window():
    # Mixtral-8x7B config.json: 8 local experts, 2 per token, expert width 14336.
    mixtral = {
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "sliding_window": None,
    }
    spec = spec_from_hf_config(mixtral)
    ffn = spec.layers[0].ffn
    assert (ffn.num_routed_experts, ffn.experts_per_token, ffn.expert_intermediate_size) == (
        8,
        2,
        14336,
    )
    mistral = {
        **mixtral,
        "model_type": "mistral",
        "architectures": ["MistralForCausalLM"],
        "sliding_window": 4096,
    }
    del mistral["num_local_experts"], mistral["num_experts_per_tok"]
    spec = spec_from_hf_config(mistral)
    assert spec.layers[0].attention.sliding_window_tokens == 4096
    assert spec.layers[0].ffn.kind == "dense"


def test_v4_short_compress_ratios_rejected():
    cfg = json.loads((FIXTURES / "deepseek-v4-flash.json").read_text())
    cfg["compress_ratios"] = cfg["compress_ratios"][:10]
    with pytest.raises(ConfigError, match="compress_ratios"):
        spec_from_hf_config(cfg)


def test_malformed_json_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        spec_from_hf_file(path)


def test_null_field_falls_back_to_hf_default():
    # "head_dim": null means "hidden_size / num_attention_heads" in transformers.
    cfg = _llama()
    cfg["head_dim"] = None
    assert spec_from_hf_config(cfg).layers[0].attention.head_dim == 8192 // 64
