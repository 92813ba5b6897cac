"""With attention TP on auto the Capacity, Frontier and Cost pages show each model's best
layout (a deployment search), say which it is, and it costs no more than any layout set by
hand -- the issue's case: DeepSeek-V3.2 on H200 at 20 requests/s of 32K-token prompts and
1K-token answers."""

from __future__ import annotations

import pytest

from planner.report import views
from planner.report.views import ViewConfig
from planner.search.run import run_search

CASE = ViewConfig(
    models=("deepseek-v3.2",),
    gpus=("h200",),
    gpus_per_replica=8,
    requests_per_s=20,
    input_tokens=32_768,
    answer_tokens=1024,
    reasoning_mix=(1.0, 0.0, 0.0),
    tpot_slo_ms=50,
    ttft_slo_s=30,
)


def test_auto_is_the_searched_best_and_no_dearer_than_any_hand_layout():
    (row,) = views.cost_rows(CASE)
    best = run_search(views.best_layout_spec(CASE, "deepseek-v3.2", "h200")).best
    assert row["layout"] == f"best: {best.label}"
    assert row["gpus_total"] == best.gpus_total
    assert row["usd_per_month"] == pytest.approx(best.usd_per_month)
    hand = []
    for n, tp in ((8, 8), (8, 4), (8, 2), (8, 1), (4, 4), (4, 1), (16, 1)):
        config = ViewConfig(**{**CASE.__dict__, "gpus_per_replica": n, "tensor_parallel": tp})
        (set_row,) = views.cost_rows(config)
        if "usd_per_month" not in set_row:
            # A hand layout that cannot serve the traffic has no price, only the reason: 4
            # x H200 hold 4 x 141 GB < the ~690 GB of FP8 weights; one 32K prompt alone
            # prefills past the 30 s TTFT SLO on one TP1 attention rank of 16 GPUs.
            assert "does not fit" in set_row["note"] or "SLO" in set_row["note"]
            continue
        assert set_row["layout"] == "as set"
        hand.append(set_row["usd_per_month"])
    assert len(hand) >= 4  # TP8 ... TP1 on 8 GPUs at least are priced
    assert row["usd_per_month"] <= min(hand)


def test_capacity_and_frontier_name_the_layout():
    (cap,) = views.capacity_rows(CASE)
    best = views.best_plan(CASE, "deepseek-v3.2", "h200")
    assert best is not None
    assert cap["layout"] == f"best: {best.label}"
    # The replica shown is the plan's replica (aggregated) or decode replica.
    assert cap["gpus_per_replica"] == best.pools[-1].layout.deployment.gpus_per_replica
    frontier = views.frontier_rows(CASE)
    assert {r["layout"] for r in frontier} == {cap["layout"]}


def test_no_plan_falls_back_to_the_layout_as_set_and_says_why():
    impossible = ViewConfig(**{**CASE.__dict__, "tpot_slo_ms": 1.0})
    (cap,) = views.capacity_rows(impossible)
    assert cap["layout"].startswith("as set (no plan meets the traffic")
    assert cap["max_concurrent_sequences"] >= 1
    (cost,) = views.cost_rows(impossible)
    assert "TPOT SLO" in cost["note"]
