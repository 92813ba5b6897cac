"""Find, load and validate the fitted kernel curves for a GPU and an engine.

Files live beside the GPU profiles: ``hardware_profiles/fits/<gpu>/<engine>.yaml`` (the
folder follows ``KVPLAN_HARDWARE_DIR``). A GPU without a file of its own borrows the
files of the GPU its profile names in ``efficiency.kernel_fits_from`` (fractions of peak
and fixed times transfer; the peaks stay its own) or, failing that, keeps the analytic
defaults of its profile (``planner.plan.efficiency.curves``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from planner.errors import ConfigError
from planner.hardware import DEFAULT_PROFILE_DIR, profile_dir
from planner.plan.efficiency.schema import EngineDefaults, KernelFits
from planner.validation import check_sources, read_document, validate

FITS_SUBDIR = "fits"
ENGINE_DEFAULTS_FILE = "engine_defaults.yaml"


def fits_dir() -> Path:
    return profile_dir() / FITS_SUBDIR


def fits_path(gpu: str, engine: str, directory: Path | None = None) -> Path:
    return (directory or fits_dir()) / gpu / f"{engine}.yaml"


def fits_from_file(path: Path) -> KernelFits:
    """Load and validate one fit file (every top-level field needs a source)."""
    raw = read_document(path)
    where = f"{path.parent.name}/{path.name}"
    if not isinstance(raw, dict):
        raise ConfigError("a kernel-fit file must be a mapping", where=where)
    check_sources(raw, where)
    fits = validate(KernelFits, raw, where)
    if fits.gpu != path.parent.name or fits.engine != path.stem:
        raise ConfigError(
            "gpu and engine must match the file's place (fits/<gpu>/<engine>.yaml)",
            where=where,
            field="gpu",
            value=f"{fits.gpu}/{fits.engine}",
            expected=f"{path.parent.name}/{path.stem}",
        )
    return fits


@cache
def _load(directory: str, gpu: str, engine: str) -> KernelFits | None:
    path = fits_path(gpu, engine, Path(directory))
    return fits_from_file(path) if path.is_file() else None


def load_fits(gpu: str, engine: str) -> KernelFits | None:
    """The fit file for this GPU profile and engine, or None when there is none."""
    return _load(str(fits_dir()), gpu, engine)


@cache
def _engine_defaults(directory: str) -> EngineDefaults:
    path = Path(directory) / ENGINE_DEFAULTS_FILE
    raw = read_document(path)
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping", where=f"fits/{ENGINE_DEFAULTS_FILE}")
    check_sources(raw, f"fits/{ENGINE_DEFAULTS_FILE}")
    return validate(EngineDefaults, raw, f"fits/{ENGINE_DEFAULTS_FILE}")


def engine_defaults() -> EngineDefaults:
    """Each engine's default communication behaviour (sourced data): from the profile
    folder's fits/, else the shipped file (a custom folder of GPUs need not repeat it)."""
    folder = fits_dir()
    if not (folder / ENGINE_DEFAULTS_FILE).is_file():
        folder = DEFAULT_PROFILE_DIR / FITS_SUBDIR
    return _engine_defaults(str(folder))
