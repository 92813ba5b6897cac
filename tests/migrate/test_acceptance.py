"""Hand-derived acceptance tests of the migration simulation (issue 10)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from planner.migrate.load import parse_migration
from planner.migrate.run import plan_tasks, run_migration
from planner.migrate.simulate import simulate_window
from planner.migrate.timeline import SOURCE, TARGET
from planner.migrate.traffic import draw_block
from planner.report.migration import to_json
from planner.schema import Scenario
from planner.sim.run import run_scenario

SYSTEM = 2048  # 4 blocks of 512: the shared prefix
OWN = 600  # each request's own prompt tokens: prompts of 2,648 tokens


def _target_requests(doc):
    s = parse_migration(doc, "m.yaml")
    (task,) = [t for t in plan_tasks(s) if t.fleet == TARGET]
    result = simulate_window(dataclasses.replace(task, keep_requests=True))
    return s, sorted(result.requests, key=lambda r: r.arrival_s)


def test_no_shared_prefixes_no_spike(doc):
    # Every prompt is the request's own text: nothing can ever be cached, before or after.
    doc["traffic"]["classes"][0]["system_prompt_tokens"] = 0
    r = run_migration(parse_migration(doc, "m.yaml"), scheduler="serial")
    rows = [x for x in r.class_hours if x["kind"] == "production"]
    assert {x["fleet"] for x in rows} == {SOURCE, TARGET}
    assert all(x["cached_tokens"] == 0 for x in rows)
    assert all(x["prefix_hit_ratio"] == 0.0 for x in rows if x["admitted_input_tokens"])
    (cut,) = r.summary["cutovers"]
    assert cut["source_hit_ratio_before"] == 0.0
    assert cut["target_hit_ratio_steady"] == 0.0
    assert cut["rewarm_h"] == 0.0
    assert cut["api_extra_usd"] == 0.0


def test_one_shared_prompt_is_cold_until_the_first_request_is_served(doc):
    # One target replica; light traffic, so every request is admitted on arrival. The
    # prefix cache keeps a request's blocks when it finishes: requests arriving before the
    # first target request has finished find nothing; every later one finds the 4 shared
    # blocks (2,048 tokens), the rest of its prompt being its own.
    s, requests = _target_requests(doc)
    cut_s = s.cutovers[0].at_h * 3600
    first_done = min(r.finish_s for r in requests)
    assert requests[0].arrival_s >= cut_s
    cold = [r for r in requests if r.arrival_s < first_done]
    warm = [r for r in requests if r.arrival_s >= first_done]
    assert cold and len(warm) > 100
    assert all(r.cached_tokens == 0 for r in cold)
    assert all(r.cached_tokens == SYSTEM for r in warm)
    migration_hit = sum(r.cached_tokens for r in warm) / sum(r.input_tokens for r in warm)
    assert migration_hit == SYSTEM / (SYSTEM + OWN)
    # The same class on V4-Flash alone (a single-fleet simulation): after its first
    # request is served, the same hit ratio.
    single = Scenario.model_validate(
        {
            "name": "v4-alone",
            "model": "deepseek-v4-flash",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 4},
            "replicas": 1,
            "router": "prefix_affinity",
            "duration_s": 1800,
            "drain_s": 60,
            "seed": 3,
            "block_tokens": 512,
            "workload": {
                "arrival": {"kind": "poisson", "rate_per_s": 0.2},
                "classes": [
                    {
                        "name": "chat",
                        "share": 1,
                        "system_prompt_tokens": SYSTEM,
                        "input_tokens": {"kind": "constant", "value": OWN},
                        "output_tokens": {"kind": "constant", "value": 50},
                        "slo": {"ttft_s": 2.0, "tpot_s": 0.1},
                    }
                ],
            },
        }
    )
    alone = sorted(run_scenario(single).cluster.requests, key=lambda r: r.arrival_s)
    alone_first = min(r.finish_s for r in alone)
    alone_warm = [r for r in alone if r.arrival_s >= alone_first]
    single_hit = sum(r.cached_tokens for r in alone_warm) / sum(r.input_tokens for r in alone_warm)
    assert migration_hit == single_hit


def test_requests_are_conserved_across_both_fleets(doc):
    # Every open-loop request goes to exactly one fleet (mirrored copies are extra and
    # counted apart); in each fleet every request finished, was rejected or is in flight.
    doc["phases"].insert(1, {"kind": "shadow", "at_h": 0.5, "duration_h": 0.5, "share_percent": 20})
    s = parse_migration(doc, "m.yaml")
    r = run_migration(s, scheduler="serial")
    open_loop = sum(len(draw_block(s, 0, h).arrival_s) for h in range(math.ceil(s.duration_h)))
    production = [x for x in r.class_hours if x["kind"] == "production"]
    assert sum(x["arrived"] for x in production) == open_loop
    for x in r.class_hours:
        assert x["arrived"] == x["finished"] + x["rejected"] + x["in_flight"]
    mirrored = [x for x in r.class_hours if x["kind"] == "mirrored"]
    assert {x["fleet"] for x in mirrored} == {TARGET}
    assert 0 < sum(x["arrived"] for x in mirrored) < open_loop
    totals = r.stats["requests"]
    assert totals["arrived"] == totals["finished"] + totals["rejected"] + totals["in_flight"]


def test_overlap_cost_is_both_fleets_gpu_hours_times_their_prices(doc):
    # Source: 1 replica x 8 GPUs at $4/GPU-h = $32/h. Target: 1 x 4 GPUs at $3 = $12/h,
    # asked for at 0.5 h (no provisioning delay). Reserve of 1 replica from 2 h, decommission
    # at 2.5 h (the source has no traffic left to drain).
    doc["fleets"]["source"]["usd_per_gpu_hour"] = 4.0
    doc["fleets"]["target"]["usd_per_gpu_hour"] = 3.0
    doc["phases"] += [
        {"kind": "rollback_reserve", "at_h": 2.0, "replicas": 1},
        {"kind": "decommission", "at_h": 2.5},
    ]
    r = run_migration(parse_migration(doc, "m.yaml"), scheduler="serial")
    expected = [32 + 0.5 * 12, 32 + 12, 0.5 * 32 + 12]
    total = [r.fleet_hours[SOURCE][h]["usd"] + r.fleet_hours[TARGET][h]["usd"] for h in range(3)]
    assert total == pytest.approx(expected, rel=1e-12)
    gpu_hours = [r.fleet_hours[f][1]["gpu_hours"] for f in (SOURCE, TARGET)]
    assert gpu_hours == pytest.approx([8.0, 4.0], rel=1e-12)
    m = r.summary["migration"]
    # Baseline: the source alone at $32/h over the migration's hours 0-3.
    assert m["source_only_usd"] == pytest.approx(32 * 3)
    assert m["actual_usd"] == pytest.approx(sum(expected))


def test_same_seed_same_timeline(doc):
    s = parse_migration(doc, "m.yaml")
    a, b = (to_json(run_migration(s, scheduler="serial")) for _ in range(2))
    a.pop("stats"), b.pop("stats")
    assert a == b
    other = to_json(run_migration(s.model_copy(update={"seed": 8}), scheduler="serial"))
    other.pop("stats")
    assert other != a


def test_the_source_serves_from_hour_zero(doc):
    # The source fleet ran before the migration began: its provisioning delay applies to
    # replicas it asks for later, not to the ones serving at hour 0. With an hour's delay
    # and a 60 s queue timeout, a fleet provisioned at hour 0 would reject its first
    # hour's requests; at 0.2 req/s on one 8 x H200 replica every one is served.
    doc["fleets"]["source"]["provisioning_delay_s"] = 3600
    r = run_migration(parse_migration(doc, "m.yaml"), scheduler="serial")
    (row,) = [
        x
        for x in r.class_hours
        if x["fleet"] == SOURCE and x["hour"] == 0 and x["kind"] == "production"
    ]
    assert row["arrived"] > 600  # 0.2/s over an hour: about 720
    assert row["rejected"] == 0 and row["finished"] == row["arrived"]
    assert row["ttft_p99_s"] < 2.0


def test_the_source_starts_warm_at_hour_zero(doc):
    # The source served before the migration: its first window starts lead_h (0.5 h) before
    # hour 0, drawn from the same traffic, and reports nothing from the lead. At 0.2
    # requests/s its one replica has served ~360 requests of the one shared prompt by hour
    # 0, so every request from hour 0 on finds the prompt's 4 blocks (2,048 tokens) cached,
    # the first one included (a cold start would have found nothing).
    s = parse_migration(doc, "m.yaml")
    (task,) = [t for t in plan_tasks(s) if t.fleet == SOURCE]
    assert task.start_h == 0 and task.lead_s == 1800
    result = simulate_window(dataclasses.replace(task, keep_requests=True))
    lead = [r for r in result.requests if r.arrival_s < 0]
    hour0 = sorted(
        (r for r in result.requests if 0 <= r.arrival_s < 3600), key=lambda r: r.arrival_s
    )
    assert len(lead) > 300 and hour0
    assert all(r.cached_tokens == SYSTEM for r in hour0)
    # Nothing from the lead is reported: hour 0's row counts hour 0's arrivals only (all
    # finished at this light load).
    assert result.rows[(0, 0)]["arrived"] == len(hour0)
