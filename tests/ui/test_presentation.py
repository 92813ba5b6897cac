"""Honest presentation: errors in the words on the screen, rounded CSVs, plural-aware
labels, metric notes without arrows, the reasoning mix's added tokens stated."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from streamlit.testing.v1 import AppTest

from planner.errors import KvplanError
from planner.report.views import ViewConfig, rows_to_csv, screen_text
from planner.ui.common import plural

ROOT = Path(__file__).resolve().parents[2]


def test_errors_use_the_words_on_the_screen():
    err = KvplanError(
        "tensor parallel size must divide the 64 attention heads",
        field="gpus_per_replica",
        value=8,
        expected="a divisor of 64",
    )
    assert screen_text(err) == (
        "GPUs per replica 8: tensor parallel size must divide the 64 attention heads "
        "(expected a divisor of 64)"
    )
    slo = KvplanError("cannot be met", field="tpot_slo_s", value=0.025, expected=">= 0.0270")
    assert screen_text(slo) == "TPOT SLO 25 ms: cannot be met (expected >= 27 ms)"
    top = KvplanError("Value error, needs 'arrival'", where="s.yaml", field="(top level)")
    assert screen_text(top) == "s.yaml: Value error, needs 'arrival'"
    assert "field '" not in screen_text(err) + screen_text(slo) + screen_text(top)


def test_csv_values_are_rounded_by_unit():
    rows = [
        {
            "model": "m",
            "usd_per_month": 163519.99999,
            "usd_per_million_output_tokens": 2.123456789,
            "kv_gib": 41.0712345,
            "decode_step_ms": 12.345678,
            "ttft_s": 0.123456789,
            "decode_tokens_per_s": 1234.5678,
            "kv_ratio_vs_first": 0.0761234567,
            "replicas": 8,
            "fits": True,
            "finish_s": float("nan"),
        }
    ]
    (row,) = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert row == {
        "model": "m",
        "usd_per_month": "163520",
        "usd_per_million_output_tokens": "2.1235",
        "kv_gib": "41.07",
        "decode_step_ms": "12.35",
        "ttft_s": "0.1235",
        "decode_tokens_per_s": "1235",
        "kv_ratio_vs_first": "0.0761",
        "replicas": "8",
        "fits": "True",
        "finish_s": "",
    }


def test_labels_are_plural_aware():
    assert plural(1, "replica") == "1 replica"
    assert plural(4, "replica") == "4 replicas"
    assert plural(1141, "sequence") == "1,141 sequences"
    assert plural(0, "preemption") == "0 preemptions"


def test_reasoning_mix_states_what_it_adds():
    # The default mix (50/40/10) adds 0.4 x 1,500 + 0.1 x 6,000 = 1,200 reasoning tokens
    # and 0.1 x 1,000 = 100 system-prompt tokens (kvplan's reasoning-mode assumptions).
    config = ViewConfig(input_tokens=32_768, answer_tokens=1024)
    assert config.reasoning_output_tokens == 1200
    assert config.reasoning_prompt_tokens == 100
    assert (config.mean_input_tokens, config.mean_output_tokens) == (32_868, 2_224)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["in"] = "32768"
    at.query_params["ans"] = "1024"
    at.run()
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Default mix 50/40/10" in captions
    assert "adds 1,200 reasoning tokens" in captions and "100 system-prompt tokens" in captions
    assert "32,868 prompt + 2,224 output tokens" in captions


def test_metric_notes_have_no_arrows():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    for page in ("capacity", "cost", "compare", "search"):
        if page != "capacity":
            at.switch_page(str(ROOT / "planner" / "ui" / "pages" / f"{page}.py")).run()
        assert not at.exception
        for metric in at.metric:
            if metric.proto.delta:
                direction = type(metric.proto).MetricDirection.Name(metric.proto.direction)
                assert direction == "NONE", (page, metric.label, metric.proto.delta)
