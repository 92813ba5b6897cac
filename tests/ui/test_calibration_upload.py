"""The dashboard's calibrated-profile upload: validated as a --gpu-profile file is (size,
UTF-8, format, values), used by the view's deployments on its GPU only, and named on the
page (the browser test uploads it through the sidebar)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from planner.calibrate.profile import load_profile, profile_from_bytes
from planner.errors import ConfigError
from planner.io import MAX_DOCUMENT_BYTES
from planner.report.view_export import scenario_yaml, view_scenarios
from planner.report.views import ViewConfig, capacity_rows, cost_rows
from planner.ui.calibration import calibration_caption

PROFILE = Path(__file__).resolve().parents[2] / "hardware_profiles/calibrated/h200-2026-11-25.json"


def test_a_profile_upload_reads_as_the_file_does() -> None:
    uploaded = profile_from_bytes(PROFILE.read_bytes(), "h200.json")
    assert uploaded.calibration() == load_profile(PROFILE).calibration()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b" " * (MAX_DOCUMENT_BYTES + 1), "limit"),
        (b"\xff\xfe\x00binary", "UTF-8"),
        (b'{"format": "kvplan-calibrate-raw", "measurements": []}', "not a kvplan calibrated"),
        (b"[1, 2", "p.json"),  # cut short
    ],
)
def test_a_bad_upload_is_one_error(data: bytes, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as err:
        profile_from_bytes(data, "p.json")
    assert "\n" not in str(err.value)


def test_an_out_of_range_curve_names_its_field() -> None:
    doc = json.loads(PROFILE.read_text())
    doc["fits"]["gemm"]["bf16"]["compute_efficiency"] = 5.0
    with pytest.raises(ConfigError, match="compute_efficiency"):
        profile_from_bytes(json.dumps(doc).encode(), "p.json")


def test_the_view_uses_it_on_its_gpu_only_and_says_so() -> None:
    calibration = load_profile(PROFILE).calibration()
    view = ViewConfig(models=("llama-3.1-70b",), gpus=("h200", "h100-sxm"), tensor_parallel=8)
    calibrated = ViewConfig(
        models=view.models, gpus=view.gpus, tensor_parallel=8, gpu_calibration=calibration
    )
    plain = {r["gpu"]: r["decode_step_ms"] for r in capacity_rows(view)}
    used = {r["gpu"]: r["decode_step_ms"] for r in capacity_rows(calibrated)}
    assert used["h100-sxm"] == plain["h100-sxm"]  # another GPU: the engine's curves
    assert used["h200"] != plain["h200"]
    caption = calibration_caption(calibrated)
    assert caption.startswith(f"Kernel curves on h200: {calibration.label}")
    assert "on h100-sxm: the vllm fitted curves" in caption
    assert "no calibrated GPU profile" in calibration_caption(view)


def test_simulating_the_view_carries_it() -> None:
    """The Simulate page's "This view" scenarios use the uploaded curves as the plan
    beside them does (the downloaded file cannot carry them)."""
    calibration = load_profile(PROFILE).calibration()
    view = ViewConfig(
        models=("llama-3.1-70b",),
        gpus=("h200",),
        tensor_parallel=8,
        requests_per_s=1.0,
        gpu_calibration=calibration,
    )
    (vs,) = view_scenarios(view, cost_rows(view))
    scenario = vs.scenario(view)
    assert scenario.deployment.gpu_calibration == calibration
    assert "gpu_calibration" not in scenario_yaml(view, vs)
    plain = replace(view, gpu_calibration=None)
    assert vs.scenario(plain).deployment.gpu_calibration is None
