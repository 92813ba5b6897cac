"""Issue 12's acceptance: malformed or foreign logs and benchmark files give one clear
error line through ``kvplan calibrate``, and nothing is written (no terms file from half a
log). Each bad file is made from a real fixture (tests/fixtures/engine_logs, sources in
SOURCES.yaml) or from the documented vLLM result fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.cli import main
from tests.test_cli import run_error

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "engine_logs"
V0_LOG = LOGS / "vllm_v0_llama31_8b_rtx3090_20k.log"
V1_LOG = LOGS / "vllm_v1_lvllm_a40.log"
SGLANG_LOG = LOGS / "sglang_kimi_k25_mi355x_tp8.log"


def _from_log(capsys: pytest.CaptureFixture[str], tmp_path: Path, log: Path, *extra: str) -> str:
    out = tmp_path / "terms.yaml"
    line = run_error(
        capsys, "calibrate", "--from-log", str(log), "--gpu", "h100-sxm", "--out", str(out), *extra
    )
    assert not out.exists()  # nothing half-written
    return line


def test_an_empty_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    assert "empty" in _from_log(capsys, tmp_path, log)


def test_a_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "vllm.log"
    log.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    assert "not UTF-8 text" in _from_log(capsys, tmp_path, log)


def test_an_sglang_log_given_as_vllm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _from_log(capsys, tmp_path, SGLANG_LOG, "--engine", "vllm")
    assert "--engine" in line and "start-up lines are SGLang's" in line


def test_a_vllm_log_given_as_sglang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _from_log(capsys, tmp_path, V1_LOG, "--engine", "sglang")
    assert "start-up lines are vLLM's" in line


def test_a_foreign_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _from_log(capsys, tmp_path, LOGS / "llamacpp_foreign_ik_llama_259.log")
    assert "not a vLLM or SGLang start-up log" in line


@pytest.mark.parametrize(
    ("log", "keep_lines"),
    [
        (V0_LOG, 2),  # weights and memory profiling, cut before "GPU blocks: 1952"
        (V1_LOG, 6),  # up to "Available KV cache memory", cut before "GPU KV cache size"
    ],
)
def test_a_log_cut_before_its_kv_pool_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log: Path, keep_lines: int
) -> None:
    lines = log.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[:keep_lines]))
    # The lines the terms need are there; the start-up did not finish in the log.
    assert "KV cache memory" in cut.read_text() or "kv_cache_size" in cut.read_text()
    assert "ends before its KV pool line" in _from_log(capsys, tmp_path, cut, "--gpu", "a100-40gb")


def test_a_log_cut_mid_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "GPU KV cache size: 53,136 tokens" cut to "GPU KV cache size: 53,1": not read as 531.
    text = V1_LOG.read_text()
    cut = tmp_path / "cut.log"
    cut.write_text(text[: text.index("53,136") + 4])
    assert "ends before its KV pool line" in _from_log(capsys, tmp_path, cut)


def test_the_whole_log_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The control for the two above: the uncut log imports.
    out = tmp_path / "terms.yaml"
    argv = ["calibrate", "--from-log", str(V1_LOG), "--gpu", "h100-sxm", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["terms"]["logged"]["kv_pool_tokens"] == 53_136


# Field names of vllm/benchmarks/serve.py's result JSON (vllm bench serve --save-result).
VLLM_RESULT = {
    "max_concurrency": 8,
    "completed": 100,
    "total_input_tokens": 100 * 1000,
    "total_output_tokens": 100 * 200,
    "mean_ttft_ms": 120.0,
    "mean_tpot_ms": 20.0,
}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([VLLM_RESULT], "must be a JSON object"),  # a list of runs, not one run
        ({"benchmarks": [{"metrics": {}}]}, "not a serving-benchmark result"),  # GuideLLM-like
        ({**VLLM_RESULT, "mean_tpot_ms": "20 ms"}, "mean_tpot_ms"),
        ({**VLLM_RESULT, "mean_ttft_ms": "fast"}, "mean_ttft_ms"),
        ({k: v for k, v in VLLM_RESULT.items() if k != "total_output_tokens"}, "total_output"),
        ({**VLLM_RESULT, "completed": -3}, "completed"),
        ({**VLLM_RESULT, "completed": 0.5}, "whole number"),  # found by tests/fuzz
        ({**VLLM_RESULT, "max_concurrency": 2.5}, "whole number"),
        ('{"completed": 100, "mean_tpot_ms": 2', None),  # cut short: not JSON
    ],
)
def test_a_benchmark_file_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, says: str | None
) -> None:
    bench = tmp_path / "result.json"
    bench.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "terms.yaml"
    line = run_error(
        capsys,
        "calibrate",
        "--from-bench",
        str(bench),
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h100-sxm",
        "--gpus",
        "1",
        "--out",
        str(out),
    )
    assert "result.json" in line
    if says:
        assert says in line
    assert not out.exists()
