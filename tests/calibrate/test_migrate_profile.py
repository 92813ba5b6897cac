"""`kvplan migrate --gpu-profile`: a calibrated profile's curves go into the fleets on its
GPU through the same ``gpu_calibration`` as plan/search/simulate, the output names the
calibration each fleet used, and a profile of a GPU no fleet runs on is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from planner.calibrate.profile import load_profile
from planner.cli import main
from planner.cli.migrate import with_gpu_profiles
from planner.migrate.schema import MigrationScenario
from planner.schema import GpuCalibration
from tests.migrate.conftest import BASE
from tests.test_cli import run_error

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "hardware_profiles" / "calibrated"
H200 = PROFILES / "h200-2026-11-25.json"
H100 = PROFILES / "h100-sxm-2026-11-25.json"


def _doc() -> dict[str, object]:
    doc = copy.deepcopy(BASE)
    doc["duration_h"] = 2
    doc["traffic"]["rate_per_s"] = 0.05  # type: ignore[index]
    return doc


def test_the_profile_goes_into_the_fleets_on_its_gpu() -> None:
    scenario = MigrationScenario.model_validate(_doc())
    calibrated, labels = with_gpu_profiles(scenario, [str(H200)])
    label = load_profile(H200).label
    assert labels == {"source": label, "target": label}
    for fleet in (calibrated.fleets.source, calibrated.fleets.target):
        assert fleet.deployment.gpu_calibration is not None
        assert fleet.deployment.gpu_calibration.label == label
    # The rest of each fleet's deployment is untouched.
    assert calibrated.fleets.target.deployment.gpus_per_replica == 4
    unchanged, none = with_gpu_profiles(scenario, [])
    assert unchanged is scenario and none == {"source": None, "target": None}


def test_migrate_names_the_calibration_and_its_numbers_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    results = {}
    for label, extra in (("plain", []), ("calibrated", ["--gpu-profile", str(H200)])):
        out = tmp_path / f"{label}.json"
        argv = ["migrate", str(path), "--scheduler", "serial", "--json", str(out), *extra]
        assert main(argv) == 0
        printed = capsys.readouterr().out
        results[label] = json.loads(out.read_text())
        assert "source fleet kernel curves" in printed
    curves = results["calibrated"]["calibration"]["kernel_curves"]
    assert curves["target"] == load_profile(H200).label
    assert results["plain"]["calibration"]["kernel_curves"]["target"].startswith(
        "the engine's fitted curves"
    )

    def tpot(data: dict[str, object]) -> list[float]:
        rows = data["class_hours"]
        assert isinstance(rows, list)
        return [r["tpot_p50_s"] for r in rows if r["tpot_p50_s"] is not None]

    assert tpot(results["plain"]) != tpot(results["calibrated"])


def test_a_profile_of_a_gpu_no_fleet_runs_on_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    line = run_error(
        capsys, "migrate", str(path), "--scheduler", "serial", "--gpu-profile", str(H100)
    )
    assert "--gpu-profile" in line and "h100-sxm" in line


def test_two_profiles_of_one_gpu_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    argv = ["migrate", str(path), "--scheduler", "serial", "--gpu-profile", str(H200)]
    argv += ["--gpu-profile", str(H200)]
    assert "one profile per GPU" in run_error(capsys, *argv)


def test_the_migration_page_runs_an_uploaded_profile_as_migrate_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dashboard's Migration page puts the profile uploaded in the sidebar into the
    fleets on its GPU, as `kvplan migrate --gpu-profile` does: the same numbers, and its
    JSON download names the calibration as the command's JSON does."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import planner.ui.state as ui_state
    from planner.migrate.load import load_migration
    from planner.migrate.run import run_migration
    from planner.report.migration import to_json
    from planner.ui.calibration import CALIBRATION_KEY

    calibration = load_profile(H200).calibration()

    def uploaded() -> GpuCalibration:  # the sidebar's uploader, as after an upload
        st.session_state[CALIBRATION_KEY] = calibration
        return calibration

    monkeypatch.setattr(ui_state, "calibration_uploader", uploaded)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(str(ROOT / "planner" / "ui" / "pages" / "migration.py")).run()
    assert at.selectbox(key="mig_example").value == "migration-quick.yaml"
    at.button(key="mig_run").click().run()
    assert not at.exception, at.exception
    page = at.session_state["mig_result"][1]
    scenario = load_migration(ROOT / "scenarios" / "migration-quick.yaml")
    calibrated, labels = with_gpu_profiles(scenario, [str(H200)])
    expected = to_json(run_migration(calibrated, scheduler="serial"))
    assert (
        page["calibration"]["kernel_curves"]
        == labels
        == {
            "source": calibration.label,
            "target": calibration.label,
        }
    )
    assert page["summary"] == expected["summary"]
    assert page["class_hours"] == expected["class_hours"]
    assert any(c.value.startswith("Kernel curves: source fleet: ") for c in at.caption)
