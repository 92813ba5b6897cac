"""Bad migration scenarios get one error naming the field; nothing runs for hours on a
typo."""

from __future__ import annotations

import pytest

from planner.errors import ConfigError
from planner.migrate.checks import check_work, estimate_work
from planner.migrate.load import parse_migration
from planner.migrate.run import window_spans


def _error(doc) -> str:
    with pytest.raises(ConfigError) as info:
        parse_migration(doc, "m.yaml")
    return str(info.value)


def test_the_base_scenario_is_valid(doc):
    s = parse_migration(doc, "m.yaml")
    assert s.stand_up_h == 0.5
    assert [c.class_name for c in s.cutovers] == ["chat"]


def test_a_phase_before_stand_up(doc):
    doc["phases"][1]["at_h"] = 0.25
    message = _error(doc)
    assert "phases.1.at_h" in message
    assert "before stand-up" in message


def test_a_cutover_before_the_target_is_provisioned(doc):
    doc["fleets"]["target"]["provisioning_delay_s"] = 3600
    message = _error(doc)
    assert "phases.1.at_h" in message and "before the target is up" in message


def test_class_shares_over_100_percent(doc):
    extra = dict(doc["traffic"]["classes"][0], name="rag", share_percent=20)
    doc["traffic"]["classes"].append(extra)
    message = _error(doc)
    assert "traffic" in message and "120%" in message and "over 100%" in message


def test_a_cutover_share_over_100_percent(doc):
    doc["phases"][1]["to_percent"] = 120
    message = _error(doc)
    assert "phases.1.cutover.to_percent" in message or "phases.1.to_percent" in message
    assert "100" in message


def test_a_mode_the_target_lacks(doc):
    doc["fleets"]["target"]["model"] = "deepseek-v3.2"
    doc["fleets"]["target"]["deployment"] = {"gpus_per_replica": 8}
    doc["traffic"]["classes"][0]["target"] = {"reasoning_mode": "think-max"}
    message = _error(doc)
    assert "traffic.classes.0.target.reasoning_mode" in message
    assert "think-max" in message


def test_a_fleet_that_cannot_hold_one_request(doc):
    # 150K-token prompts on V3.2 (8 x H200, TP 8: every rank holds a sequence's whole
    # MLA cache, about 7 GiB at 150K) with 62% of HBM usable: a 4 GiB KV pool per GPU.
    doc["traffic"]["classes"][0]["input_tokens"] = {"kind": "constant", "value": 150_000}
    doc["fleets"]["source"]["deployment"]["gpu_memory_utilization"] = 0.62
    message = _error(doc)
    assert "fleets.source.deployment" in message
    assert "cannot hold one request" in message


def test_a_request_beyond_the_model_context(doc):
    doc["traffic"]["classes"][0]["input_tokens"] = {"kind": "constant", "value": 200_000}
    message = _error(doc)
    assert "traffic.classes.0.input_tokens" in message and "context" in message


def test_session_keep_reasoning_is_per_fleet(doc):
    doc["traffic"]["classes"][0]["session"] = {
        "turns": {"kind": "constant", "value": 3},
        "think_time_s": {"kind": "constant", "value": 5},
        "new_user_tokens": {"kind": "constant", "value": 100},
        "keep_reasoning": True,
    }
    assert "target.keep_reasoning" in _error(doc)


def test_reserve_before_every_class_moved(doc):
    doc["phases"][1]["to_percent"] = 50
    doc["phases"].append({"kind": "rollback_reserve", "at_h": 2, "replicas": 1})
    message = _error(doc)
    assert "phases.2.kind" in message and "not cut over" in message


def test_a_typo_that_would_run_for_hours_is_refused(doc):
    doc["traffic"]["rate_per_s"] = 2000
    doc["duration_h"] = 2000
    s = parse_migration(doc, "m.yaml")
    spans = [(a - lead, b) for _, a, b, lead in window_spans(s)]
    estimate = estimate_work(s, spans, workers=2)
    assert estimate.requests > 1e9
    with pytest.raises(ConfigError) as info:
        check_work(estimate, "m.yaml")
    assert "traffic.rate_per_s" in str(info.value) and "refused" in str(info.value)


def test_the_example_size_is_accepted(doc):
    s = parse_migration(doc, "m.yaml")
    spans = [(a - lead, b) for _, a, b, lead in window_spans(s)]
    check_work(estimate_work(s, spans, workers=1), "m.yaml")
