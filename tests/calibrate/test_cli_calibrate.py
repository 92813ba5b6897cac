"""`kvplan calibrate` and the --gpu-profile / --engine-terms plumbing into plan, search
and simulate: outputs name the calibration they used; the committed H100/H200 profiles
load and hold their raw data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from planner.calibrate.profile import load_profile
from planner.cli import main
from planner.cli.common import with_calibration
from planner.engines import load_engine
from planner.sim.run import load_scenario
from tests.test_cli import run_error

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "hardware_profiles" / "calibrated"
H100_PROFILE = PROFILES / "h100-sxm-2026-11-25.json"
LOGS = REPO / "tests" / "fixtures" / "engine_logs"
PLAN = ["plan", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--context", "8K", "--json"]


def test_committed_profiles_hold_curves_raw_data_and_environment() -> None:
    for name, gpu in (("h100-sxm-2026-11-25.json", "h100-sxm"), ("h200-2026-11-25.json", "h200")):
        p = load_profile(PROFILES / name)
        assert p.gpu == gpu and p.fits.gpu == gpu
        assert len(p.measurements) > 500
        assert p.environment["torch"].startswith("2.11")
        assert p.collectives.measured is False  # one GPU: said, not hidden
        assert {"bf16", "fp8"} <= set(p.fits.gemm)
        fit = p.fits.gemm["bf16"].fit
        assert fit is not None and fit.held_out_points > 0


def _raw_from_profile(tmp_path: Path, ops: set[str]) -> Path:
    """A raw-measurement file made of some of a committed profile's measurements."""
    data = json.loads(H100_PROFILE.read_text())
    raw = {
        "format": "kvplan-calibrate-raw",
        "format_version": 1,
        "environment": data["environment"],
        "settings": data["settings"],
        "collectives": data["collectives"],
        "measurements": [m for m in data["measurements"] if m["op"] in ops],
        "skipped": [],
        "elapsed_s": 1.0,
    }
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    return path


def test_calibrate_from_raw_writes_a_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw_from_profile(tmp_path, {"elementwise", "grouped_gemm"})
    out = tmp_path / "p.json"
    assert (
        main(
            ["calibrate", "--gpu", "h100-sxm", "--from-raw", str(raw), "--out", str(out), "--json"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert {c["curve"] for c in summary["curves"]} == {"grouped_gemm.bf16", "elementwise"}
    assert any("Collectives were not measured" in n for n in summary["notes"])
    profile = load_profile(out)
    assert set(profile.fits.grouped_gemm) == {"bf16"} and not profile.fits.gemm


def test_calibrate_refuses_measurements_of_another_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw_from_profile(tmp_path, {"elementwise"})
    line = run_error(
        capsys,
        "calibrate",
        "--gpu",
        "h200",
        "--from-raw",
        str(raw),
        "--out",
        str(tmp_path / "p.json"),
    )
    assert "H100" in line and "gpu" in line


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch installed")
def test_measuring_without_torch_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run_error(capsys, "calibrate", "--gpu", "h100-sxm", "--out", str(tmp_path / "p.json"))
    assert "PyTorch" in line


def test_plan_names_the_calibration_and_uses_its_curves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*PLAN, "--gpu-profile", str(H100_PROFILE)]) == 0
    fits = json.loads(capsys.readouterr().out)["kernel_fits"]
    profile = load_profile(H100_PROFILE)
    assert fits["calibration"] == profile.label
    assert fits["source"].startswith(profile.label)
    assert {"gemm.bf16", "attention.gqa_decode", "elementwise"} <= set(fits["calibrated_curves"])
    assert "attention.mla_decode" not in fits["calibrated_curves"]  # not measured
    assert main(PLAN) == 0
    assert json.loads(capsys.readouterr().out)["kernel_fits"]["calibration"] is None


def test_plan_refuses_a_profile_of_another_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    line = run_error(
        capsys,
        *[a if a != "h100-sxm" else "h200" for a in PLAN],
        "--gpu-profile",
        str(H100_PROFILE),
    )
    assert "--gpu-profile" in line and "h100-sxm" in line


def test_plan_takes_engine_terms_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = tmp_path / "terms.yaml"
    assert (
        main(
            [
                "calibrate",
                "--from-log",
                str(LOGS / "vllm_v1_lvllm_a40.log"),
                "--gpu",
                "h100-sxm",
                "--out",
                str(terms),
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main([*PLAN, "--engine-terms", str(terms)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kernel_fits"]["engine_terms"].startswith("vllm start-up log vllm_v1_lvllm")
    # Not in the log: vLLM's default from engines/vllm.yaml.
    assert report["engine"]["memory_fraction"] == load_engine("vllm").admission_spec.memory_fraction


def test_search_and_simulate_take_the_profile(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "search",
        "--model",
        "llama-3.1-70b",
        "--gpu",
        "h100-sxm",
        "--rate",
        "2",
        "--input-tokens",
        "2000",
        "--output-tokens",
        "300",
        "--gpus",
        "8",
        "--mode",
        "aggregated",
        "--mtp",
        "off",
        "--top",
        "1",
        "--json",
    ]
    assert main([*args, "--gpu-profile", str(H100_PROFILE)]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"] == load_profile(H100_PROFILE).label

    class Args:
        gpu_profile = str(H100_PROFILE)
        engine_terms = None

    scenario = load_scenario(REPO / "scenarios" / "chat-shared-prompt.yaml")
    calibrated = with_calibration(scenario.model_copy(update={"gpu": "h100-sxm"}), Args())
    assert calibrated.deployment.gpu_calibration is not None
    assert calibrated.deployment.gpu_calibration.gpu == "h100-sxm"
