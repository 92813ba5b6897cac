"""A calibrated GPU profile's curves in a migration's fleets.

Each fleet whose GPU a calibration names carries it in its deployment (the same
``gpu_calibration`` field that plan, search and simulate carry, so its step times use the
profile's curves); the other fleet keeps its engine's fitted curves. Shared by
``kvplan migrate --gpu-profile`` and the dashboard's Migration page, so both run and name
the same fleets the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planner.errors import ConfigError
from planner.hardware import load_gpu
from planner.migrate.schema import MigrationScenario
from planner.schema import Deployment, GpuCalibration
from planner.validation import validate

FLEET_ROLES = ("source", "target")


def fleet_gpus(scenario: MigrationScenario) -> dict[str, str]:
    """Each fleet's GPU profile name (aliases resolved)."""
    return {role: load_gpu(getattr(scenario.fleets, role).gpu).name for role in FLEET_ROLES}


def with_calibrations(
    scenario: MigrationScenario,
    calibrations: Sequence[tuple[GpuCalibration, str]],
    field: str,
) -> tuple[MigrationScenario, dict[str, str | None]]:
    """The scenario with each calibration in the fleets on its GPU, and which calibration
    each fleet uses (None: the engine's fitted curves). ``calibrations`` pairs each with
    the name of where it came from; two for one fleet's GPU are refused, naming ``field``."""
    fleets = scenario.fleets
    gpu_of = fleet_gpus(scenario)
    updates: dict[str, Any] = {}
    labels: dict[str, str | None] = dict.fromkeys(FLEET_ROLES)
    for calibration, source in calibrations:
        for role, gpu in gpu_of.items():
            if gpu != calibration.gpu:
                continue
            if labels[role] is not None:
                raise ConfigError(
                    f"two calibrated profiles of {gpu} for the {role} fleet",
                    field=field,
                    value=source,
                    expected="one profile per GPU",
                )
            spec = getattr(fleets, role)
            given = spec.deployment.model_dump(exclude_unset=True)
            deployment = validate(
                Deployment,
                {**given, "gpu_calibration": calibration},
                f"fleets.{role}.deployment",
            )
            updates[role] = spec.model_copy(update={"deployment": deployment})
            labels[role] = calibration.label
    if not updates:
        return scenario, labels
    return scenario.model_copy(update={"fleets": fleets.model_copy(update=updates)}), labels


def calibration_record(labels: dict[str, str | None], none_text: str) -> dict[str, Any]:
    """The ``calibration`` entry of a migration's JSON: each fleet's kernel curves."""
    return {"kernel_curves": {role: label or none_text for role, label in labels.items()}}
