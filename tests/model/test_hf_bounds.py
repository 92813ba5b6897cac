"""config.json import: every field bounded and typed at the edge; tied embeddings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from planner.errors import ConfigError
from planner.model.hf_import import spec_from_hf_config, spec_from_hf_file
from planner.model.model import Model

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hf_configs"


def config(name: str = "llama-3.1-70b", **changes: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    cfg.update(changes)
    return cfg


def refused(cfg: dict[str, Any], field: str) -> str:
    with pytest.raises(ConfigError) as err:
        spec_from_hf_config(cfg, where="config.json")
    message = str(err.value)
    assert "\n" not in message and f"field '{field}'" in message, message
    return message


LLAMA_3_2_1B = {
    # Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B, Hugging Face, 2024-09).
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def test_tied_embeddings_count_once() -> None:
    # Per layer: q 2048 x 2048 = 4,194,304; k, v 2048 x 512 = 1,048,576 each; o 4,194,304;
    # FFN 3 x 2048 x 8192 = 50,331,648 -> 60,817,408; x 16 layers = 973,078,528.
    # Embedding = head (tied, one matrix): 128,256 x 2048 = 262,668,288.
    # Total 1,235,746,816 (Hugging Face reports 1,235,814,400 with the 67,584 norm weights,
    # which kvplan does not count). A dense model uses every parameter per token, so the
    # active count equals the total; counting the tied matrix twice gave 1,498,415,104.
    model = Model(spec_from_hf_config(LLAMA_3_2_1B))
    assert model.total_params == 1_235_746_816
    assert model.active_params == 1_235_746_816
    untied = Model(spec_from_hf_config({**LLAMA_3_2_1B, "tie_word_embeddings": False}))
    assert untied.total_params == untied.active_params == 1_235_746_816 + 262_668_288


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_hidden_layers", 10**9),
        ("hidden_size", 10**9),
        ("intermediate_size", 2**40),
        ("num_attention_heads", 2**20),
        ("vocab_size", 10**12),
        ("max_position_embeddings", 2**41),
        ("num_hidden_layers", 0),
        ("num_hidden_layers", 80.0),
        ("num_hidden_layers", True),
        ("head_dim", -128),
    ],
)
def test_out_of_range_counts_are_refused_before_any_work(field: str, value: Any) -> None:
    start = time.perf_counter()
    refused(config(**{field: value}), field)
    assert time.perf_counter() - start < 0.5


def test_a_1kb_config_with_huge_shapes_is_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(num_hidden_layers=10**12, hidden_size=10**12)))
    assert path.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="num_hidden_layers|hidden_size"):
        spec_from_hf_file(path)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model_type": ["llama"]}, "model_type"),
        ({"model_type": None, "architectures": 7}, "architectures"),
        ({"model_type": None, "architectures": {"LlamaForCausalLM": 1}}, "architectures"),
        ({"quantization_config": "fp8"}, "quantization_config"),
        ({"quantization_config": {"quant_method": ["fp8"]}}, "quantization_config.quant_method"),
        ({"torch_dtype": "bfloat61"}, "torch_dtype"),
        ({"torch_dtype": 16}, "torch_dtype"),
        ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),
        ({"num_key_value_heads": 7}, "num_key_value_heads"),
        ({"head_dim": None, "hidden_size": 8190}, "head_dim"),
        ({"_name_or_path": ["x"]}, "_name_or_path"),
    ],
)
def test_wrongly_typed_fields_are_named(changes: dict[str, Any], field: str) -> None:
    refused(config(**changes), field)


def test_mlp_only_layers_must_be_layer_indices() -> None:
    refused(config("qwen3-235b-a22b", mlp_only_layers=3), "mlp_only_layers")
    refused(config("qwen3-235b-a22b", mlp_only_layers=[0, 94]), "mlp_only_layers")  # 94 layers
    spec = spec_from_hf_config(config("qwen3-235b-a22b", mlp_only_layers=[0]))
    assert spec.layers[0].ffn.kind == "dense" and spec.layers[1].ffn.kind == "moe"


def test_experts_per_token_within_experts() -> None:
    refused(config("qwen3-235b-a22b", num_experts_per_tok=129), "num_experts_per_tok")


def test_string_false_never_turns_a_sliding_window_on() -> None:
    # Qwen2 with "use_sliding_window": "false" (a string): truthy in Python, which made every
    # layer keep only a 4,096-token window (KV 32x too small at 128K). Refused instead.
    cfg = config(
        model_type="qwen2",
        architectures=["Qwen2ForCausalLM"],
        sliding_window=4096,
        use_sliding_window="false",
    )
    refused(cfg, "use_sliding_window")
    off = spec_from_hf_config({**cfg, "use_sliding_window": False})
    on = spec_from_hf_config({**cfg, "use_sliding_window": True})
    assert off.layers[0].attention.sliding_window_tokens is None
    assert on.layers[0].attention.sliding_window_tokens == 4096


def test_torch_dtype_is_read_not_guessed() -> None:
    fp16 = spec_from_hf_config(config(torch_dtype="float16"))
    assert fp16.weight_formats.attention == "fp16"
    torch_prefixed = spec_from_hf_config(config(torch_dtype="torch.float32"))
    assert torch_prefixed.weight_formats.attention == "fp32"
    cfg = config()
    del cfg["torch_dtype"]
    absent = spec_from_hf_config(cfg)
    assert absent.weight_formats.attention == "bf16"
    assert any("torch_dtype absent" in note for note in absent.notes)


def test_v4_compress_ratios_are_bounded() -> None:
    cfg = config("deepseek-v4-flash")
    refused({**cfg, "compress_ratios": [4] * 10_000}, "compress_ratios")
    refused({**cfg, "compress_ratios": [2**40] * len(cfg["compress_ratios"])}, "compress_ratios")
    refused({**cfg, "expert_dtype": ["fp4"]}, "expert_dtype")
    refused({**cfg, "qk_rope_head_dim": cfg["head_dim"]}, "qk_rope_head_dim")
