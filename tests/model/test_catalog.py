"""Catalog files: every value sourced, bad files rejected with the field named."""

from __future__ import annotations

import pytest
import yaml

from planner.errors import ConfigError, UnknownNameError
from planner.model.catalog import CATALOG_DIR, catalog_names, load_spec, spec_from_document

REQUIRED_MODELS = {
    "deepseek-v3",
    "deepseek-v3.2",
    "deepseek-v4-pro",
    "deepseek-v4-flash",
    "llama-3.1-70b",
    "qwen3-235b-a22b",
}


def _raw(name: str) -> dict:
    return yaml.safe_load((CATALOG_DIR / f"{name}.yaml").read_text())


def test_catalog_has_required_models():
    assert set(catalog_names()) >= REQUIRED_MODELS


@pytest.mark.parametrize("name", sorted(REQUIRED_MODELS))
def test_every_catalog_file_loads_with_sources(name):
    spec = load_spec(name)
    assert spec.sources and all(spec.sources.values())


def test_layer_counts_follow_compress_ratios():
    # V4-Pro compress_ratios [128, 128] + [4, 128] x 29 + [4]: 30 CSA, 31 HCA.
    pro = load_spec("deepseek-v4-pro")
    kinds = [layer.attention.kind for layer in pro.layers]
    assert kinds[:4] == ["hca", "hca", "csa", "hca"] and kinds[-1] == "csa"
    assert (kinds.count("csa"), kinds.count("hca")) == (30, 31)
    # V4-Flash [0, 0] + [4, 128] x 20 + [4]: 2 SWA, 21 CSA, 20 HCA.
    flash = [layer.attention.kind for layer in load_spec("deepseek-v4-flash").layers]
    assert (flash.count("swa"), flash.count("csa"), flash.count("hca")) == (2, 21, 20)


def test_unsourced_field_rejected():
    raw = _raw("llama-3.1-70b")
    del raw["sources"]["vocab_size"]
    with pytest.raises(ConfigError, match="vocab_size.*no source"):
        spec_from_document(raw, "test.yaml")


def test_source_for_missing_field_rejected():
    raw = _raw("llama-3.1-70b")
    raw["sources"]["not_a_field"] = "somewhere"
    with pytest.raises(ConfigError, match="sources.not_a_field"):
        spec_from_document(raw, "test.yaml")


def test_bad_value_names_file_and_field():
    raw = _raw("llama-3.1-70b")
    raw["attention"]["gqa"]["num_kv_heads"] = -1
    with pytest.raises(ConfigError, match=r"test.yaml.*attention\.gqa\.num_kv_heads"):
        spec_from_document(raw, "test.yaml")


def test_unknown_layer_reference_rejected():
    raw = _raw("llama-3.1-70b")
    raw["layers"][0]["pattern"] = [["mla", "dense"]]
    with pytest.raises(ConfigError, match="unknown attention spec 'mla'"):
        spec_from_document(raw, "test.yaml")


def test_unknown_storage_format_rejected():
    raw = _raw("llama-3.1-70b")
    raw["attention"]["gqa"]["kv_format"] = "int3"
    with pytest.raises(ConfigError, match="int3"):
        spec_from_document(raw, "test.yaml")


def test_unknown_model_lists_known():
    with pytest.raises(UnknownNameError, match="nope.*deepseek-v4-pro"):
        load_spec("nope")
