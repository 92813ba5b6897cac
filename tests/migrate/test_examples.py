"""The example migration scenarios validate and pass the pre-run checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.migrate.checks import check_work, estimate_work
from planner.migrate.load import load_migration
from planner.migrate.run import window_spans

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("migration-*.yaml"))


def test_there_are_two_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_validates(path):
    s = load_migration(path)
    assert s.simulation.mode in ("hybrid", "full")
    spans = window_spans(s)
    check_work(estimate_work(s, [(a - lead, b) for _, a, b, lead in spans], 2), path.name)
