"""`kvplan search`: the JSON contract, the CSV export and one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from planner.cli import main

BASE = [
    "search",
    "--model",
    "llama-3.1-70b",
    "--gpu",
    "h100-sxm",
    "--rate",
    "5",
    "--input-tokens",
    "2000",
    "--output-tokens",
    "500",
    "--gpus",
    "2",
    "4",
    "8",
    "--mode",
    "aggregated",
    "--top",
    "3",
]


def test_search_json_contract(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "top.csv"
    assert main([*BASE, "--json", "--csv", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"traffic", "slo", "best", "top", "pareto", "evaluated"}
    best = data["best"]
    for key in (
        "mode",
        "model",
        "gpus_total",
        "usd_per_month",
        "usd_per_million_tokens",
        "ttft_s",
        "ttft_at_percentile_s",
        "tpot_s",
        "pools",
        "launch",
    ):
        assert key in best, key
    assert best["tpot_s"] <= 0.05
    assert best["launch"]["commands"][0]["command"].startswith("vllm serve ")
    assert best["launch"]["script"].startswith("#!/bin/sh")
    assert len(data["top"]) <= 3 and data["top"][0]["usd_per_month"] == best["usd_per_month"]
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == list(range(1, len(data["top"]) + 1))
    assert float(rows[0]["usd_per_month"]) == pytest.approx(best["usd_per_month"])


def test_search_table_shows_expected_latency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(BASE) == 0
    text = capsys.readouterr().out
    assert "cheapest:" in text and "expected at this load: TTFT p90" in text
    assert "vllm serve meta-llama/Llama-3.1-70B-Instruct" in text


def test_search_impossible_slo_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--tpot-slo-ms", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "TPOT SLO cannot be met even at batch 1 by any layout" in err


def test_search_beyond_the_models_context_names_the_prompt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Llama-3.1-70B's max_position_embeddings is 131,072 (its config.json): a 131,000-token
    # prompt + 500 output tokens is beyond it, whatever the GPUs; at most 130,572 fit.
    args = list(BASE)
    args[args.index("2000")] = "131000"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--input-tokens" in err and "maximum context of 131,072 tokens" in err
    assert "at most 130,572" in err
    assert "GPU" not in err  # not blamed on the search space


def test_search_csv_folder_missing_fails_before_searching(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*BASE, "--csv", str(tmp_path / "nope" / "top.csv")]) == 2
    assert "--csv" in capsys.readouterr().err
