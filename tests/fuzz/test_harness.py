"""The fuzz harness itself: each check can fail, and each outcome is recognised."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fuzz import harness as h


def test_planted_crash_is_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import planner.cli.models as cli_models

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OverflowError("int too large")

    monkeypatch.setattr(cli_models, "compare_models", broken)
    result = h.run_cli(["compare", "llama-3.1-70b", "--context", "8K", "--json"])
    assert result.outcome == h.TRACEBACK and "OverflowError" in result.detail


def test_user_error_and_ok_are_recognised() -> None:
    assert h.run_cli(["compare", "llama-3.1-70b", "--context", "-5", "--json"]).outcome == (
        h.USER_ERROR
    )
    assert h.run_cli(["compare", "llama-3.1-70b", "--context", "8K", "--json"]).outcome == h.OK


def test_deadline_catches_a_hang() -> None:
    result = h.run_api(lambda: time.sleep(5), lambda value: None, seconds=0.2)
    assert result.outcome == h.HANG


@pytest.mark.parametrize(
    ("check", "data"),
    [
        (h.check_numbers, {"a": [1, -2]}),
        (h.check_numbers, {"a": float("inf")}),
        (
            h.check_plan,
            {
                "memory_per_gpu": {
                    "weights_bytes": 1,
                    "kv_bytes": 1,
                    "activation_bytes": 1,
                    "reserved_bytes": 1,
                    "free_bytes": 1,
                    "total_bytes": 6,
                },
                "gpus_per_replica": 1,
            },
        ),
        (
            h.check_simulation,
            {
                "requests": {"arrived": 3, "finished": 1, "rejected": 1, "in_flight": 0},
                "ttft_s": {"p50": None, "p90": None, "p99": None},
                "tpot_s": {"p50": None, "p90": None, "p99": None},
                "e2e_s": {"p50": None, "p90": None, "p99": None},
                "goodput": None,
                "prefix_hit_ratio": 0.0,
                "per_class": [],
                "time_series": {"kv_utilization": [], "time_s": []},
                "rejections_by_reason": {"queue_timeout": 1},
            },
        ),
        (h.check_percentiles, {"p50": 2.0, "p90": 1.0, "p99": 3.0}),
        (
            h.check_frontier,
            {
                "context_tokens": [1, 2],
                "curves": [{"model": "m", "gpu": "g", "max_concurrent_sequences": [1, 5]}],
            },
        ),
        (h.check_model_summary, {"active_params": 2, "total_params": 1}),
    ],
)
def test_each_invariant_can_fail(check: Any, data: dict[str, Any]) -> None:
    with pytest.raises(h.InvariantError):
        if check is h.check_percentiles:
            check(data, "x")
        else:
            check(data)
