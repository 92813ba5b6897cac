"""The same seed gives the same migration timeline in one process and on a local Dask
cluster (the windows are fixed by the scenario, every draw by (class, hour))."""

from __future__ import annotations

from planner.migrate.load import parse_migration
from planner.migrate.run import run_migration
from planner.report.migration import to_json


def test_serial_and_dask_give_the_same_timeline(doc):
    doc["duration_h"] = 2
    doc["simulation"] = {"window_h": 1, "lead_h": 0.25, "drain_s": 60}
    s = parse_migration(doc, "m.yaml")
    serial = to_json(run_migration(s, scheduler="serial"))
    dask = to_json(run_migration(s, scheduler=None))
    assert serial["stats"]["windows"] == dask["stats"]["windows"] == 4
    for data in (serial, dask):
        data.pop("stats")
    assert serial == dask
