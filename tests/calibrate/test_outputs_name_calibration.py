"""Every command that takes --gpu-profile / --engine-terms says which it used (frontier
here; plan, search, simulate and migrate in their own tests), and engine terms solved for
one GPU's memory are refused on another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.calibrate.profile import load_profile
from planner.cli import main
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
