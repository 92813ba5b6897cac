"""GPU profiles: every shipped profile loads and is sourced; a user adds a GPU with one
file; a malformed file fails naming the file, the field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.errors import ConfigError, UnknownNameError
from planner.hardware import DEFAULT_PROFILE_DIR, gpu_names, load_gpu

REQUIRED = {
    "h100-sxm",
    "h200",
    "h800",
    "h20",
    "a100-80gb",
    "a100-40gb",
    "b200",
    "mi300x",
    "ascend-910b",
    "ascend-910c",
}


def test_required_profiles_ship():
    assert set(gpu_names()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_profile_loads_with_dense_bf16_and_sources(name):
    profile = load_gpu(name).profile
    assert profile.compute["bf16"].native
    assert profile.sources and all(profile.sources.values())
    assert profile.price.low_usd_per_gpu_hour <= profile.price.default_usd_per_gpu_hour


def test_dense_not_sparse_peaks():
    # NVIDIA's headline H100 SXM figures are "with sparsity": BF16 1,979 / FP8 3,958
    # TFLOP/s. The dense peaks are half: 989 and 1,979 (../shared/reference/hardware.md).
    h100 = load_gpu("h100-sxm").profile.compute
    assert h100["bf16"].peak_tflop_per_s == 989
    assert h100["fp8"].peak_tflop_per_s == 1979


def _custom_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, doc: dict) -> None:
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("KVPLAN_HARDWARE_DIR", str(tmp_path))


def test_user_adds_a_gpu_with_one_file(tmp_path, monkeypatch):
    doc = yaml.safe_load((DEFAULT_PROFILE_DIR / "h200.yaml").read_text())
    doc["name"] = "my-h200"
    doc["price"]["default_usd_per_gpu_hour"] = 4.0
    _custom_dir(tmp_path, monkeypatch, "my-h200", doc)
    assert gpu_names(tmp_path) == ["my-h200"]
    assert load_gpu("my-h200").price_usd_per_hour == 4.0


def test_malformed_profile_names_file_field_value(tmp_path, monkeypatch):
    doc = yaml.safe_load((DEFAULT_PROFILE_DIR / "h200.yaml").read_text())
    doc["hbm_bandwidth_tb_per_s"] = -4.8
    _custom_dir(tmp_path, monkeypatch, "bad-gpu", doc)
    with pytest.raises(ConfigError) as err:
        load_gpu("bad-gpu")
    message = str(err.value)
    assert "bad-gpu.yaml" in message and "hbm_bandwidth_tb_per_s" in message
    assert "-4.8" in message


def test_unsourced_profile_field_rejected(tmp_path, monkeypatch):
    doc = yaml.safe_load((DEFAULT_PROFILE_DIR / "h200.yaml").read_text())
    del doc["sources"]["power_watts"]
    _custom_dir(tmp_path, monkeypatch, "unsourced", doc)
    with pytest.raises(ConfigError, match="power_watts.*no source"):
        load_gpu("unsourced")


@pytest.mark.parametrize("sources", [24.9, ["hbm_gib"], {1: "datasheet"}])
def test_sources_that_are_not_a_map_of_names_are_refused(tmp_path, monkeypatch, sources):
    # Fuzz finding: 'sources: 24.88' in fits/engine_defaults.yaml raised TypeError
    # ('float' object is not iterable) instead of naming the field.
    doc = yaml.safe_load((DEFAULT_PROFILE_DIR / "h200.yaml").read_text())
    doc["sources"] = sources
    _custom_dir(tmp_path, monkeypatch, "odd-sources", doc)
    with pytest.raises(ConfigError, match="field 'sources'.*must map field names"):
        load_gpu("odd-sources")


def test_unknown_gpu_lists_known():
    with pytest.raises(UnknownNameError, match="h300.*h200"):
        load_gpu("h300")
