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


def test_an_existing_cluster_by_address_gives_the_same_timeline(doc, tmp_path):
    # `kvplan migrate --scheduler ADDRESS`: a cluster the user runs (here an in-process one
    # started by the test), against the same scenario run serially.
    import json

    import yaml
    from distributed import LocalCluster

    from planner.cli import main

    doc["duration_h"] = 2
    doc["simulation"] = {"window_h": 1, "lead_h": 0.25, "drain_s": 60}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    outs = {}
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        for name, scheduler in (("serial", "serial"), ("cluster", cluster.scheduler_address)):
            out = tmp_path / f"{name}.json"
            assert main(["migrate", str(path), "--scheduler", scheduler, "--json", str(out)]) == 0
            outs[name] = json.loads(out.read_text())
            outs[name].pop("stats")
    assert outs["serial"] == outs["cluster"]


def test_progress_reaches_one_window_by_window(doc):
    doc["simulation"] = {"window_h": 1, "lead_h": 0.25, "drain_s": 60}
    s = parse_migration(doc, "m.yaml")
    seen: list[float] = []
    result = run_migration(s, scheduler="serial", progress=seen.append)
    windows = result.stats["windows"]
    assert seen == [(i + 1) / windows for i in range(windows)]
