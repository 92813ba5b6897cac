"""A small migration scenario the migration tests start from (V3.2 on 8 x H200 to
V4-Flash on 4 x H200, light traffic, a few hours)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

BASE: dict[str, Any] = {
    "name": "test-migration",
    "duration_h": 3,
    "seed": 7,
    "fleets": {
        "source": {
            "model": "deepseek-v3.2",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 8},
            "replicas": {"policy": "fixed", "count": 1},
            "provisioning_delay_s": 0,
        },
        "target": {
            "model": "deepseek-v4-flash",
            "gpu": "h200",
            "deployment": {"gpus_per_replica": 4},
            "replicas": {"policy": "fixed", "count": 1},
            "provisioning_delay_s": 0,
        },
    },
    "traffic": {
        "rate_per_s": 0.2,
        "classes": [
            {
                "name": "chat",
                "share_percent": 100,
                "system_prompt_tokens": 2048,
                "input_tokens": {"kind": "constant", "value": 600},
                "output_tokens": {"kind": "constant", "value": 50},
                "slo": {"ttft_s": 2.0, "tpot_s": 0.1},
            }
        ],
    },
    "phases": [
        {"kind": "stand_up", "at_h": 0.5},
        {"kind": "cutover", "class": "chat", "at_h": 1.0},
    ],
    "simulation": {"drain_s": 120},
}


@pytest.fixture
def doc() -> dict[str, Any]:
    return copy.deepcopy(BASE)
