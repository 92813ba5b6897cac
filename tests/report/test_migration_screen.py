"""The Migration page's tables: the summary's cut-overs and days in the screen's words,
rounded (a hand-written summary, so every expected value is read off the input)."""

from __future__ import annotations

from planner.report.migration import cutover_screen_rows, day_screen_rows

SUMMARY = {
    "summary": {
        "cutovers": [
            {
                "class": "chat",
                "at_h": 24.0,
                "ramp_h": 2.0,
                "source_hit_ratio_before": 0.834567,
                "target_hit_ratio_first_10_min": 0.81149,
                "target_hit_ratio_steady": 0.8371,
                "rewarm_h": 0.1,
                "api_bill_ratio_first_10_min": 1.04719,
                "api_bill_ratio_first_hour": 0.99123,
                "api_bill_ratio_first_day": None,
                "api_extra_usd": 12.3456,
                "target_usd_per_hour_peak": 84.0000001,
                "target_usd_per_hour_steady": 70.49,
                "target_replicas_rewarm": 6,
                "target_replicas_after": 5,
                "slo_attainment_cutover_hour": 0.97512,
                "slo_attainment_settled": 1.0,
            }
        ],
        "days": [
            {
                "day": 1,
                "hours": 24,
                "source_usd": 16899.4,
                "target_usd": 251.6,
                "total_usd": 17151.0,
            }
        ],
    }
}


def test_cutover_rows_use_screen_words_and_round() -> None:
    (row,) = cutover_screen_rows(SUMMARY)
    assert not any("_" in key for key in row)  # no internal field names on screen
    assert row["hit % before (source)"] == 83.5
    assert row["hit % first 10 min (target)"] == 81.1
    assert row["hit % steady (target)"] == 83.7
    assert row["re-warm (min)"] == 6.0  # 0.1 h
    assert row["API bill x, first 10 min"] == 1.05
    assert row["API bill x, first hour"] == 0.99
    assert row["API bill x, first day"] is None
    assert row["API extra ($)"] == 12
    assert row["target $/hour, peak"] == 84
    assert row["replicas during re-warm"] == 6 and row["replicas after"] == 5
    assert row["SLO met %, cut-over hour"] == 97.5


def test_day_rows_are_whole_dollars() -> None:
    (row,) = day_screen_rows(SUMMARY)
    assert row == {
        "day": 1,
        "hours": 24,
        "source fleet ($)": 16899,
        "target fleet ($)": 252,
        "total ($)": 17151,
    }
