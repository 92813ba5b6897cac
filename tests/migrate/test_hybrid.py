"""The hybrid timeline (simulated cut-overs, extrapolated steady hours) agrees with a full
simulation of the same scenario: hourly $ within 5%, prefix hit ratio within 2 points."""

from __future__ import annotations

from planner.migrate.hybrid import agreement, simulated_spans
from planner.migrate.load import parse_migration
from planner.migrate.run import run_migration


def test_hybrid_agrees_with_full_simulation(doc):
    doc["duration_h"] = 8
    doc["traffic"]["rate_per_s"] = 0.5
    doc["fleets"]["target"]["replicas"] = {
        "policy": "autoscale",
        "min_replicas": 1,
        "max_replicas": 4,
        "interval_s": 600,
    }
    doc["phases"] = [
        {"kind": "stand_up", "at_h": 1.0},
        {"kind": "cutover", "class": "chat", "at_h": 3.0, "ramp_h": 0.5},
        {"kind": "rollback_reserve", "at_h": 5.0, "replicas": 1},
    ]
    doc["simulation"] = {"mode": "full", "lead_h": 0.5, "settle_h": 1, "drain_s": 120}
    full = run_migration(parse_migration(doc, "m.yaml"), scheduler="serial")
    doc["simulation"]["mode"] = "hybrid"
    s = parse_migration(doc, "m.yaml")
    assert simulated_spans(s, 0, 8, "source") == [(2, 5)]
    hybrid = run_migration(s, scheduler="serial")
    check = agreement(full, hybrid)
    assert check["extrapolated_fleet_hours"] >= 8
    assert check["max_hourly_usd_rel_diff"] <= 0.05
    assert check["max_hit_ratio_diff"] <= 0.02
    # Summary figures over computed hours (no simulated minute): the class's hourly rows,
    # within 2 points of what the full simulation measured minute by minute.
    from planner.migrate.summary import _Timeline

    computed = [x for x in hybrid.class_hours if x["fleet"] == "target" and x["hour"] in (6, 7)]
    assert computed and not any(x["simulated"] for x in computed)
    by_rows = sum(x["cached_tokens"] for x in computed) / sum(
        x["admitted_input_tokens"] for x in computed
    )
    assert _Timeline(hybrid).hit("target", 0, 6, 8) == by_rows
    assert abs(by_rows - _Timeline(full).hit("target", 0, 6, 8)) <= 0.02
    assert hybrid.summary["requests"]["arrived"] == sum(x["arrived"] for x in hybrid.class_hours)
