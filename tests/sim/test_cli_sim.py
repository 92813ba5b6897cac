"""`kvplan simulate` and `kvplan cache-curve` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parents[2]
MOONCAKE = ROOT / ".." / "shared" / "traces" / "mooncake_synthetic_trace.jsonl"
CONTRACT = {
    "requests": {"arrived", "finished", "rejected", "in_flight"},
    "ttft_s": {"p50", "p90", "p99"},
    "tpot_s": {"p50", "p90", "p99"},
}


def _short_scenario(tmp_path: Path) -> Path:
    text = (ROOT / "scenarios" / "chat-shared-prompt.yaml").read_text()
    path = tmp_path / "short.yaml"
    path.write_text(text + "\n")
    import yaml

    doc = yaml.safe_load(text)
    doc["duration_s"] = 10
    doc["drain_s"] = 10
    path.write_text(yaml.safe_dump(doc))
    return path


def test_simulate_json_contract(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert (
        main(["simulate", str(_short_scenario(tmp_path)), "--json", str(out), "--seed", "3"]) == 0
    )
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))
    for key, fields in CONTRACT.items():
        assert set(data[key]) >= fields
    for key in ("prefix_hit_ratio", "preemptions", "goodput", "sim_wall_time_s"):
        assert key in data
    req = data["requests"]
    assert req["arrived"] == req["finished"] + req["rejected"] + req["in_flight"] > 0
    printed = capsys.readouterr().out
    assert "TTFT" in printed and "GPU-hours" in printed


def test_simulate_modes_agree_from_cli(tmp_path):
    path = _short_scenario(tmp_path)
    outs = []
    for mode in ("fast", "exact"):
        out = tmp_path / f"{mode}.json"
        main(["simulate", str(path), "--mode", mode, "--json", str(out)])
        outs.append(json.loads(out.read_text()))
    assert outs[0]["requests"] == outs[1]["requests"]
    assert outs[0]["ttft_s"] == pytest.approx(outs[1]["ttft_s"], rel=1e-9)


def test_bad_scenario_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nmodel: deepseek-v4-flash\ngpu: h200\nduration_s: -5\n"
        "workload: {trace: {path: t.jsonl}}\n"
    )
    assert main(["simulate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "duration_s" in err and "bad.yaml" in err


def test_cache_curve_small_trace(tmp_path, capsys):
    # Two requests sharing their first 512-token block: B hits 512 of its 1,024 tokens.
    # Hit ratio = 512 / (1,024 + 1,024) = 0.25.
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        '{"timestamp": 0, "input_length": 1024, "output_length": 5, "hash_ids": [1, 2]}\n'
        '{"timestamp": 10, "input_length": 1024, "output_length": 5, "hash_ids": [1, 3]}\n'
    )
    assert main(["cache-curve", "--trace", str(trace), "--capacity-tokens", "512", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hit_ratio_unbounded"] == pytest.approx(0.25)
    # One block of capacity: A leaves [2, 1] -> block 1 (the head) stays; B hits 512.
    assert data["points"] == [{"capacity_tokens": 512, "hit_ratio": pytest.approx(0.25)}]


@pytest.mark.skipif(not MOONCAKE.exists(), reason="../shared/traces not present")
def test_cache_curve_mooncake_unbounded(capsys):
    # Mooncake FAST'25 (Table 2): about 66% prefix cache ratio with unbounded cache.
    assert main(["cache-curve", "--trace", str(MOONCAKE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hit_ratio_unbounded"] == pytest.approx(0.65, abs=0.02)


@pytest.mark.parametrize("out", ["", "no/such/folder/summary.json"])
def test_simulate_checks_the_output_before_simulating(tmp_path, capsys, monkeypatch, out):
    import planner.cli.simulate as cli_simulate

    def must_not_run(*args, **kwargs):
        raise AssertionError("simulated before checking the output path")

    monkeypatch.setattr(cli_simulate, "run_scenario", must_not_run)
    assert main(["simulate", str(_short_scenario(tmp_path)), "--json", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--json" in err


def test_simulate_output_is_written_atomically(tmp_path):
    out = tmp_path / "summary.json"
    out.write_text("previous")
    assert main(["simulate", str(_short_scenario(tmp_path)), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["requests"]["arrived"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.yaml", "summary.json"]
