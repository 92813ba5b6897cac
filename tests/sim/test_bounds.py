"""Scenario, trace and profile bounds (planner.limits), checked at the edge, and the
simulator's work staying proportional to its traffic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from planner import limits
from planner.errors import ConfigError, KvplanError
from planner.hardware import profile_from_file
from planner.schema import ConstantDist, LognormalDist, Scenario
from planner.sim.request import REJECT_TOO_LONG_FOR_MODEL
from planner.sim.run import load_scenario, run_scenario
from planner.sim.workload import load_csv, load_mooncake, sample_tokens
from planner.units import MAX_TOKEN_COUNT
from planner.validation import validate

ROOT = Path(__file__).resolve().parents[2]


def chat(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "scenarios" / "chat-shared-prompt.yaml").read_text())
    doc.update(duration_s=5, drain_s=5)
    for dotted, value in changes.items():
        target = doc
        *path, last = dotted.split(".")
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return doc


def rejected(doc: dict[str, Any], field: str) -> str:
    with pytest.raises(ConfigError) as err:
        validate(Scenario, doc, "s.yaml")
    message = str(err.value)
    assert "\n" not in message and field in message, message
    return message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"drain_s": float("inf")}, "drain_s"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"duration_s": 1e12}, "duration_s"),
        ({"replicas": 2**31}, "replicas"),
        ({"seed": -1}, "seed"),
        ({"block_tokens": 2**40}, "block_tokens"),
        ({"workload.arrival": {"kind": "gamma", "rate_per_s": 1, "cv": 1e10}}, "cv"),
        ({"workload.arrival.rate_per_s": float("inf")}, "rate_per_s"),
        ({"workload.classes.0.input_tokens": {"kind": "constant", "value": 2.0**70}}, "value"),
        (
            {
                "workload.classes.0.input_tokens": {
                    "kind": "lognormal",
                    "mean": 100,
                    "sigma": 1,
                    "min": 500,
                    "max": 10,
                }
            },
            "input_tokens",
        ),
        ({"workload.classes.0.slo": {"ttft_s": -1, "tpot_s": 0.1}}, "ttft_s"),
        ({"prefix_cache": {"invalidate_at_s": [float("inf")]}}, "invalidate_at_s"),
        ({"deployment.max_batched_tokens": 2**40}, "max_batched_tokens"),
        ({"deployment.gpus_per_replica": 2**20}, "gpus_per_replica"),
    ],
)
def test_out_of_range_scenario_fields_are_one_line_errors(
    change: dict[str, Any], field: str
) -> None:
    rejected(chat(**change), field)


@pytest.mark.parametrize(
    ("document", "got"), [([1, 2], "a list"), (None, "empty"), ("chat", "text"), (7, "a number")]
)
def test_a_document_that_is_not_a_mapping_says_so_in_the_files_words(
    document: Any, got: str
) -> None:
    # Was "field '(top level)': Input should be a valid dictionary or instance of Scenario".
    with pytest.raises(ConfigError) as err:
        validate(Scenario, document, "s.yaml")
    assert str(err.value) == (
        f"s.yaml: the document must be a mapping of fields (name: value); it is {got}"
    )


def test_cross_field_rules_and_nested_types_name_no_internal_class() -> None:
    doc = chat()
    doc["deployment"] = [1]
    assert rejected(doc, "deployment") == (
        "s.yaml: field 'deployment': Input should be a valid dictionary"
    )
    doc = chat(duration_s=limits.MAX_DURATION_S)
    doc["workload"]["arrival"]["rate_per_s"] = 1000
    message = rejected(doc, "s.yaml: ")
    assert "(top level)" not in message and "Value error" not in message


def test_errors_name_the_yaml_path_without_union_tags() -> None:
    # pydantic puts the union's tag into the location ('workload.arrival.gamma.cv'); the
    # file has no 'gamma' key, so the path the user can find is 'workload.arrival.cv'.
    doc = chat()
    doc["workload"]["arrival"] = {"kind": "gamma", "rate_per_s": 1, "cv": 1e10}
    assert "field 'workload.arrival.cv' = 10000000000.0" in rejected(doc, "cv")
    doc = chat()
    doc["workload"]["classes"][0]["input_tokens"] = {"kind": "lognormal", "mean": 1, "sigma": 9}
    assert "field 'workload.classes.0.input_tokens.sigma' = 9" in rejected(doc, "sigma")


def test_expected_arrivals_are_bounded() -> None:
    # 1,000 requests/s for a year is 3.2e10 requests: refused before anything is drawn.
    doc = chat(duration_s=limits.MAX_DURATION_S)
    doc["workload"]["arrival"]["rate_per_s"] = 1000
    assert "at most 2,000,000" in rejected(doc, "s.yaml: the arrival process expects")


def test_engines_are_bounded() -> None:
    doc = chat(replicas=limits.MAX_REPLICAS)
    doc["deployment"] = {"gpus_per_replica": 64, "tensor_parallel": 1}
    assert "engines" in rejected(doc, "s.yaml: ")


def test_explicit_sample_interval_must_keep_series_bounded() -> None:
    doc = chat(duration_s=1_000_000, sample_interval_s=1.0)
    doc["workload"]["arrival"]["rate_per_s"] = 0.01
    assert "sample_interval_s" in rejected(doc, "s.yaml: ")
    del doc["sample_interval_s"]  # left unset, it widens: 1,000,005 s / 100,000 samples
    scenario = validate(Scenario, doc, "s.yaml")
    assert scenario.effective_sample_interval_s == pytest.approx(1_000_005 / 100_000)


def test_yaml_infinity_in_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(chat()).replace("drain_s: 5", "drain_s: .inf"))
    with pytest.raises(ConfigError, match="drain_s"):
        load_scenario(path)


def test_idle_simulated_time_costs_nothing() -> None:
    # 5 s of traffic, then a drain of 30 days: the sampler sleeps once the cluster is idle,
    # so the run records samples for the busy seconds only (plus one idle point) and takes
    # about as long as a 5-second scenario.
    doc = chat(drain_s=30 * 86_400.0)
    doc["workload"]["arrival"]["rate_per_s"] = 2
    scenario = validate(Scenario, doc, "s.yaml")
    start = time.perf_counter()
    result = run_scenario(scenario)
    assert time.perf_counter() - start < 30
    series = result.cluster.series
    assert len(series.time_s) < 200
    assert series.time_s == sorted(series.time_s)
    assert result.summary["requests"]["in_flight"] == 0
    # The last sample is the idle cluster: nothing queued, running or held.
    assert series.queued[-1] == series.running[-1] == 0 and series.kv_utilization[-1] == 0


def test_sampler_grid_matches_a_busy_run() -> None:
    # While requests are in the system the sampler keeps its 1 s grid.
    scenario = validate(Scenario, chat(), "s.yaml")
    series = run_scenario(scenario).cluster.series
    busy = [
        t for t, q, r in zip(series.time_s, series.queued, series.running, strict=True) if q or r
    ]
    assert busy and all(float(t).is_integer() for t in busy)


def test_prompt_beyond_context_builds_no_prefix_keys() -> None:
    # A 2^40-token prompt (the global cap) would span 2^31 blocks of 512 tokens; it is
    # longer than V4-Flash's 1M context, so it is rejected on arrival and gets no keys.
    doc = chat(duration_s=1, drain_s=1)
    doc["workload"]["arrival"]["rate_per_s"] = 3
    doc["workload"]["classes"][0]["input_tokens"] = {"kind": "constant", "value": 2**40}
    scenario = validate(Scenario, doc, "s.yaml")
    start = time.perf_counter()
    result = run_scenario(scenario)
    assert time.perf_counter() - start < 30
    reasons = result.summary["rejections_by_reason"]
    assert reasons == {REJECT_TOO_LONG_FOR_MODEL: result.summary["requests"]["arrived"]}
    assert all(r.block_keys == [] for r in result.cluster.requests)


def test_token_draws_never_wrap() -> None:
    # A lognormal without max at mean 2^40 and sigma 5 draws far above 2^63 in its tail;
    # np.rint(x).astype(int64) would wrap those to -2^63. They count as the cap instead.
    rng = np.random.default_rng(0)
    drawn = sample_tokens(LognormalDist(mean=2**40, sigma=5), rng, 10_000)
    assert drawn.min() >= 1 and drawn.max() == MAX_TOKEN_COUNT
    assert sample_tokens(ConstantDist(value=2**40), rng, 3).tolist() == [2**40] * 3


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"timestamp": 0, "input_length": 1099511627777, "output_length": 1}', "input_length"),
        ('{"timestamp": 0, "input_length": 10, "output_length": -5}', "output_length"),
        ('{"timestamp": 1e300, "input_length": 10, "output_length": 5}', "timestamp"),
        ('{"timestamp": -1, "input_length": 10, "output_length": 5}', "timestamp"),
        ('{"timestamp": NaN, "input_length": 10, "output_length": 5}', "finite"),
        ('{"timestamp": 0, "input_length": 1e400, "output_length": 5}', "finite"),
        ('{"timestamp": 0, "input_length": ' + "9" * 5000 + ', "output_length": 5}', "digits"),
        ("[" * 10_000, "nested"),
    ],
)
def test_mooncake_bad_values_are_one_line_errors(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as err:
        load_mooncake(path)
    assert field in str(err.value) and "t.jsonl:1" in str(err.value)


@pytest.mark.parametrize(
    "row", ["0,10,1e300", "0,inf,5", "nan,10,5", "0,1099511627777,5", "1e300,10,5"]
)
def test_csv_bad_values_are_one_line_errors(tmp_path: Path, row: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp_s,input_tokens,output_tokens\n" + row + "\n")
    with pytest.raises(ConfigError, match="t.csv:2"):
        load_csv(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hbm_gib", ".inf"),
        ("hbm_gib", ".nan"),
        ("hbm_gib", "1e30"),
        ("hbm_bandwidth_tb_per_s", "3350"),  # GB/s typed into the TB/s field
        ("power_watts", "-700"),
    ],
)
def test_gpu_profile_values_are_finite_and_physical(tmp_path: Path, field: str, value: str) -> None:
    text = (ROOT / "hardware_profiles" / "h100-sxm.yaml").read_text()
    lines = [
        f"{field}: {value}" if line.startswith(f"{field}:") else line for line in text.splitlines()
    ]
    path = tmp_path / "h100-sxm.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(KvplanError, match=field):
        profile_from_file(path)


def test_nearly_periodic_gamma_is_bounded() -> None:
    # cv 1e-300 made the gamma shape 1 / cv^2 divide by zero; cv is at least 0.01.
    doc = chat()
    doc["workload"]["arrival"] = {"kind": "gamma", "rate_per_s": 2, "cv": 1e-300}
    rejected(doc, "cv")
    doc["workload"]["arrival"]["cv"] = 0.01
    assert run_scenario(validate(Scenario, doc, "s.yaml")).summary["requests"]["arrived"] > 0


def test_host_tier_with_blocks_shorter_than_a_compression_ratio() -> None:
    # V4-Flash with 1-token blocks: a block holds a quarter of a CSA entry and 1/128 of an
    # HCA one; the host tier sized them as 0 bytes and divided by zero.
    doc = chat(block_tokens=1, model="deepseek-v4-flash")
    doc["prefix_cache"] = {"host_tier": {"capacity_gib": 1, "bandwidth_gb_per_s": 10}}
    result = run_scenario(validate(Scenario, doc, "s.yaml"))
    assert result.cluster.config.host_tier_blocks > 0
