"""Fitted kernel curves: the shipped files load and say where they came from, a GPU without
fits keeps its profile's constants, a borrowing GPU says whose fits it uses, and a bad file
gets one line naming its field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planner.errors import ConfigError, KvplanError
from planner.hardware import gpu_names, load_gpu
from planner.plan.efficiency import efficiency_for
from planner.plan.efficiency.load import fits_dir, fits_from_file

SHIPPED = sorted(fits_dir().glob("*/*.yaml"))


def test_fit_files_are_shipped_for_the_measured_gpus() -> None:
    names = {(p.parent.name, p.stem) for p in SHIPPED}
    for gpu in ("h100-sxm", "h200", "b200"):
        for engine in ("vllm", "sglang", "trtllm"):
            assert (gpu, engine) in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fit_file_loads_with_provenance(path: Path) -> None:
    fits = fits_from_file(path)
    assert fits.gpu in gpu_names()
    assert fits.provenance.package == "aiconfigurator"
    assert fits.provenance.package_version == "0.12.0"
    assert fits.gemm, "every shipped file has dense GEMM curves"
    for curve in fits.gemm.values():
        assert curve.fit is not None
        assert curve.fit.table.startswith(
            f"aiconfigurator_core/systems/data/{fits.provenance.system}/"
        )
        assert curve.fit.held_out_points > 0


def test_a_gpu_with_fits_reports_them() -> None:
    eff = efficiency_for(load_gpu("h200"), "vllm")
    assert eff.borrowed_from is None
    assert eff.origin["gemm.bf16"].startswith(
        "fitted h200/vllm (aiconfigurator 0.12.0, vllm 0.24.0)"
    )


def test_h800_borrows_the_h100_fits_on_its_own_peaks() -> None:
    h800, h100 = load_gpu("h800"), load_gpu("h100-sxm")
    eff = efficiency_for(h800, "sglang")
    assert eff.borrowed_from == "h100-sxm"
    assert eff.origin["gemm.bf16"].startswith("borrowed from fitted h100-sxm/sglang")
    assert eff.gemm["bf16"] == efficiency_for(h100, "sglang").gemm["bf16"]
    # Same curve, own link: a collective on H800's 400 GB/s NVLink is slower than on H100's.
    ring = 64e6
    h800_s = float(eff.collective_time("all_reduce_scale_up", ring))
    h100_s = float(efficiency_for(h100, "sglang").collective_time("all_reduce_scale_up", ring))
    assert h800_s > h100_s


def test_a_gpu_without_fits_keeps_its_profile_constants() -> None:
    gpu = load_gpu("mi300x")
    eff = efficiency_for(gpu, "vllm")
    assert eff.fits is None and eff.source_label == "analytic"
    curve = eff.gemm["bf16"]
    e = gpu.profile.efficiency
    assert (curve.latency_us, curve.compute_efficiency, curve.bandwidth_efficiency) == (
        e.kernel_overhead_us,
        e.flops_fraction,
        e.bandwidth_fraction,
    )
    assert curve.half_m == curve.half_n == curve.half_k == 0
    assert all(origin.startswith("analytic") for origin in eff.origin.values())


def _copy_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    profiles = tmp_path / "profiles"
    shutil.copytree(fits_dir().parent, profiles)
    monkeypatch.setenv("KVPLAN_HARDWARE_DIR", str(profiles))
    return profiles / "fits" / "h200" / "vllm.yaml"


def test_a_fit_outside_its_bounds_is_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy_fits(tmp_path, monkeypatch)
    text = path.read_text()
    path.write_text(text.replace("compute_efficiency: 0.", "compute_efficiency: 1.", 1))
    with pytest.raises(ConfigError) as err:
        fits_from_file(path)
    message = str(err.value)
    assert "h200/vllm.yaml" in message and "compute_efficiency" in message
    assert "\n" not in message


def test_a_fit_file_without_sources_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy_fits(tmp_path, monkeypatch)
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("  gemm: ")]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="field 'gemm': field has no source"):
        fits_from_file(path)


def test_a_fit_file_in_the_wrong_place_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy_fits(tmp_path, monkeypatch)
    wrong = path.parent.parent / "b200" / "vllm.yaml"
    wrong.write_text(path.read_text())
    with pytest.raises(ConfigError, match="must match the file's place"):
        fits_from_file(wrong)


def test_borrowing_an_unknown_profile_is_an_error() -> None:
    profile = load_gpu("h800").profile
    efficiency = profile.efficiency.model_copy(update={"kernel_fits_from": "h1000"})
    from planner.hardware import GPU

    gpu = GPU(profile.model_copy(update={"name": "h800-typo", "efficiency": efficiency}))
    with pytest.raises(KvplanError, match="kernel_fits_from"):
        efficiency_for(gpu, "vllm")
