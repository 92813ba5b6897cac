"""Read and check a migration scenario (the command line and the dashboard share this)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.io import read_document
from planner.migrate.checks import check_scenario
from planner.migrate.schema import MigrationScenario
from planner.validation import validate


def parse_migration(raw: Any, where: str) -> MigrationScenario:
    """A validated, checked migration scenario from a parsed document."""
    scenario = validate(MigrationScenario, raw, where)
    check_scenario(scenario, where)
    return scenario


def load_migration(path: str | Path) -> MigrationScenario:
    p = Path(path)
    return parse_migration(read_document(p), p.name)
