"""Every command that takes --gpu-profile / --engine-terms says which it used (frontier
here; plan, search, simulate and migrate in their own tests), and engine terms solved for
one GPU's memory are refused on another; a disaggregated scenario takes a profile in both
pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.calibrate.profile import load_profile
from planner.cli import main
from planner.cli.common import with_calibration
from planner.schema import Scenario
from tests.test_cli import run_error

REPO = Path(__file__).resolve().parents[2]
H100_PROFILE = REPO / "hardware_profiles" / "calibrated" / "h100-sxm-2026-11-25.json"
LOG = REPO / "tests" / "fixtures" / "engine_logs" / "vllm_v1_lvllm_a40.log"
FRONTIER = ["frontier", "--model", "llama-3.1-70b", "--contexts", "8K,32K"]


def _terms(tmp_path: Path, capsys: pytest.CaptureFixture[str], gpu: str) -> Path:
    terms = tmp_path / f"terms-{gpu}.yaml"
    argv = ["calibrate", "--from-log", str(LOG), "--gpu", gpu, "--out", str(terms), "--json"]
    assert main(argv) == 0
    capsys.readouterr()
    return terms


def test_frontier_names_the_profile_and_the_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = _terms(tmp_path, capsys, "h100-sxm")
    extra = ["--gpu-profile", str(H100_PROFILE), "--engine-terms", str(terms)]
    assert main([*FRONTIER, "--gpu", "h100-sxm", *extra, "--json"]) == 0
    calibration = json.loads(capsys.readouterr().out)["calibration"]
    assert calibration["gpu_profile"] == load_profile(H100_PROFILE).label
    assert calibration["engine_terms"].startswith(f"vllm start-up log {LOG.name}")
    assert main([*FRONTIER, "--gpu", "h100-sxm", *extra]) == 0
    printed = capsys.readouterr().out
    assert "operator curves: calibrated h100-sxm" in printed and "engine terms: vllm" in printed
    assert main([*FRONTIER, "--gpu", "h100-sxm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"] == {
        "gpu_profile": None,
        "engine_terms": None,
    }


def test_terms_of_another_gpu_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = _terms(tmp_path, capsys, "h200")
    line = run_error(capsys, *FRONTIER, "--gpu", "h100-sxm", "--engine-terms", str(terms))
    assert "--engine-terms" in line and "solved for h200, not for h100-sxm" in line


def test_a_disaggregated_scenario_takes_the_profile_in_both_pools() -> None:
    """--gpu-profile on a disaggregated scenario: both pools get the curves and the top
    level stays unset, so the scenario still validates (it used to gain a top-level
    deployment, which a disaggregated scenario refuses when read back)."""
    doc = yaml.safe_load((REPO / "scenarios" / "chat-shared-prompt.yaml").read_text())
    pool = {"replicas": 1, "deployment": doc.pop("deployment", {})}
    doc.pop("replicas", None)
    doc["gpu"] = "h100-sxm"
    doc["disaggregation"] = {"prefill": pool, "decode": pool}

    class Args:
        gpu_profile = str(H100_PROFILE)
        engine_terms = None

    calibrated = with_calibration(Scenario.model_validate(doc), Args())
    assert calibrated.disaggregation is not None
    label = load_profile(H100_PROFILE).label
    for role in (calibrated.disaggregation.prefill, calibrated.disaggregation.decode):
        assert role.deployment.gpu_calibration is not None
        assert role.deployment.gpu_calibration.label == label
    again = Scenario.model_validate(calibrated.model_dump(exclude_unset=True))
    assert again.disaggregation is not None
    assert again.disaggregation.decode.deployment.gpu_calibration == (
        calibrated.disaggregation.decode.deployment.gpu_calibration
    )
