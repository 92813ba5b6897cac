"""`kvplan plan`, `kvplan frontier` and `kvplan gpu list`: the JSON contracts, the
weights-don't-fit error and units in the table output."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from planner import load_model
from planner.cli import main
from planner.hardware import gpu_names, load_gpu
from planner.plan.deployed import Deployed
from planner.plan.memory import activation_bytes, memory_budget, weights_per_gpu
from planner.schema import Deployment
from tests.test_cli import run_error

GIB = 2**30
SECONDS_PER_HOUR = 3600
MEMORY_KEYS = (
    "weights_bytes",
    "kv_bytes",
    "activation_bytes",
    "reserved_bytes",
    "free_bytes",
    "total_bytes",
)
DECODE_KEYS = ("batch", "context_tokens", "step_time_s", "tokens_per_s", "bound")
# `kvplan plan` arguments by case: long and short contexts, attention DP, an explicit batch,
# MTP. (A KV pool too small for one sequence is an error: see OVERFULL.)
PLAN_CASES = {
    "v4-flash-h200-128k": "--model deepseek-v4-flash --gpu h200 --context 128K",
    "v4-pro-b200-1m": "--model deepseek-v4-pro --gpu b200 --context 1M",
    "v3.2-h200-attention-dp": "--model deepseek-v3.2 --gpu h200 --tp 4 --context 32K",
    "llama-a100-batch": "--model llama-3.1-70b --gpu a100-80gb --gpus 4 --context 8K --batch 16",
    "flash-mtp-1-token": "--model deepseek-v4-flash --gpu h20 --mtp --context 1",
}
OVERFULL = "--model llama-3.1-70b --gpu a100-40gb --gpus 4 --context 128K"


def args(command_line: str) -> list[str]:
    return command_line.split()


def reject_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=reject_constant)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return strict_json(captured.out)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- plan --json
@pytest.mark.parametrize("case", list(PLAN_CASES))
def test_plan_json_contract(capsys: pytest.CaptureFixture[str], case: str) -> None:
    argv = args(PLAN_CASES[case])
    report = run_json(capsys, "plan", *argv)
    assert isinstance(report["fits"], bool)

    memory = report["memory_per_gpu"]
    for key in MEMORY_KEYS:
        assert is_number(memory[key]), key
    parts = sum(memory[key] for key in MEMORY_KEYS if key != "total_bytes")
    assert parts == pytest.approx(memory["total_bytes"], abs=1.0)
    gpu = load_gpu(report["gpu"])
    assert memory["total_bytes"] == gpu.profile.hbm_gib * GIB

    assert is_int(report["max_concurrent_sequences"])
    assert report["max_concurrent_sequences"] >= 0

    decode = report["decode"]
    for key in DECODE_KEYS:
        assert key in decode, key
    assert is_int(decode["batch"]) and decode["batch"] >= 1
    assert is_int(decode["context_tokens"])
    assert decode["bound"] in ("memory", "compute")
    assert decode["step_time_s"] > 0
    # tokens/s = batch x tokens per step per sequence / step time (1 + MTP acceptance).
    per_step = 1 + 0.85 if "--mtp" in argv else 1.0  # default mtp_acceptance_rate 0.85
    assert decode["tokens_per_s"] == pytest.approx(
        decode["batch"] * per_step / decode["step_time_s"], rel=1e-9
    )

    assert report["prefill"]["tokens_per_s"] > 0
    cost = report["cost"]
    replica_usd_per_hour = gpu.profile.price.default_usd_per_gpu_hour * report["gpus_per_replica"]
    rates = {"input": report["prefill"]["tokens_per_s"], "output": decode["tokens_per_s"]}
    for kind, tokens_per_s in rates.items():
        price = cost[f"usd_per_million_{kind}_tokens"]
        assert is_number(price) and price > 0, kind
        # $ per hour / tokens per hour x one million.
        expected = replica_usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6
        assert price == pytest.approx(expected), kind


def test_plan_json_fits_flag_follows_kv(capsys: pytest.CaptureFixture[str]) -> None:
    roomy = run_json(capsys, "plan", *args(PLAN_CASES["v4-flash-h200-128k"]))
    assert roomy["fits"] is True
    assert roomy["memory_per_gpu"]["free_bytes"] >= 0


def test_plan_when_not_one_sequence_fits(capsys: pytest.CaptureFixture[str]) -> None:
    # Llama-3.1-70B keeps 80 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 327,680 B per
    # token, 81,920 B per GPU at TP 4: a 128K sequence needs 10 GiB per A100-40GB, more than
    # its KV pool. One line naming --context and the longest context that fits, instead of
    # figures with a negative free memory.
    line = run_error(capsys, "plan", *args(OVERFULL))
    assert "--context = 131072" in line and "not one sequence" in line
    longest = int(line.split("at most ")[1].split(" tokens")[0].replace(",", ""))
    assert 0 < longest < 131_072
    fitting = OVERFULL.replace("128K", str(longest))
    report = run_json(capsys, "plan", *args(fitting))
    assert report["max_concurrent_sequences"] >= 1 and report["memory_per_gpu"]["free_bytes"] >= 0
    run_error(capsys, "plan", *args(OVERFULL.replace("128K", str(longest + 64))))


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        ("--context 0", "--context"),
        ("--context 8K --batch 0", "--batch"),
        ("--context 8K --batch 100000", "--batch"),
        ("--context 8K --output-tokens -100000", "--output-tokens"),
        ("--context 8K --output-tokens 2M", "--output-tokens"),
        ("--context 2M", "--context"),
        ("--context 8K --rate inf", "--rate"),
        ("--context 8K --rate 10 --tpot-slo-ms nan", "--tpot-slo-ms"),
        ("--context 8K --gpus 0", "--gpus"),
        ("--context 8K --gpus 99999999999999999999", "--gpus"),
        ("--context 8K --rate 10 --input-tokens 1M --output-tokens 1M", "--input-tokens"),
    ],
)
def test_plan_out_of_range_flags_are_one_line(
    extra: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run_error(
        capsys, "plan", "--model", "deepseek-v4-flash", "--gpu", "h200", *extra.split()
    )
    assert flag in line


def test_token_flags_take_suffixes(capsys: pytest.CaptureFixture[str]) -> None:
    # The README: token counts accept 131072, 128K, 1M. --batch and --output-tokens too.
    argv = "plan --model deepseek-v4-flash --gpu h200 --context 8K --batch 1K --output-tokens 1K"
    report = run_json(capsys, *args(argv))
    assert report["decode"]["batch"] == 1024
    plain = run_json(capsys, *args(argv.replace("1K", "1024")))
    assert plain == report


def test_plan_traffic_section(capsys: pytest.CaptureFixture[str]) -> None:
    argv = args("plan --model deepseek-v4-flash --gpu h200 --context 8K")
    report = run_json(capsys, *argv, *args("--rate 10 --input-tokens 8K --output-tokens 1000"))
    traffic = report["traffic"]
    assert is_int(traffic["replicas"]) and traffic["replicas"] >= 1
    assert traffic["gpus_total"] == traffic["replicas"] * report["gpus_per_replica"]
    assert traffic["requests_per_s"] == 10
    assert traffic["mean_input_tokens"] == 8192
    assert traffic["mean_output_tokens"] == 1000
    # Enough replicas for the rate, and not one more than needed.
    per_replica = traffic["requests_per_s_per_replica"]
    assert traffic["replicas"] * per_replica >= 10
    assert (traffic["replicas"] - 1) * per_replica < 10


# --------------------------------------------------------------------------- frontier, gpu list
def test_frontier_json_one_curve_per_pair(capsys: pytest.CaptureFixture[str]) -> None:
    argv = args("frontier --model deepseek-v4-pro deepseek-v4-flash --gpu h200 --gpus 8")
    data = run_json(capsys, *argv)
    assert data["gpus_per_replica"] == 8
    contexts = data["context_tokens"]
    assert contexts == sorted(contexts) and all(is_int(c) for c in contexts)
    curves = data["curves"]
    assert [(c["model"], c["gpu"]) for c in curves] == [
        ("deepseek-v4-pro", "h200"),
        ("deepseek-v4-flash", "h200"),
    ]
    for curve in curves:
        assert curve["fits"] is True
        counts = curve["max_concurrent_sequences"]
        assert len(counts) == len(contexts)
        assert all(is_int(n) and n >= 0 for n in counts)
        assert counts == sorted(counts, reverse=True)


def test_gpu_list_json_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "gpu", "list")["gpus"]
    assert len(rows) == 10
    assert [row["name"] for row in rows] == gpu_names()
    for row in rows:
        assert row["hbm_gib"] > 0 and row["hbm_bandwidth_tb_per_s"] > 0
        assert "bf16" in row["peak_tflop_per_s"]
        assert row["usd_per_gpu_hour"] > 0


# --------------------------------------------------------------------------- errors and units
def test_weights_that_do_not_fit_are_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = args("plan --model deepseek-v4-pro --gpu h100-sxm --gpus 8 --context 128K")
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("kvplan: error:") and "Traceback" not in line

    # The shortfall, worked out here: weights + activations + (8% of HBM left by vLLM's
    # gpu_memory_utilization 0.92 + 2.44 GiB runtime reserve: non-torch 0.16 GiB, the TP and
    # EP groups' NCCL communicators 2 x 0.64 GiB, CUDA graphs 1 GiB) - HBM, per GPU.
    model, gpu = load_model("deepseek-v4-pro"), load_gpu("h100-sxm")
    deployed = Deployed.build(model, gpu, Deployment(gpus_per_replica=8))
    hbm = gpu.profile.hbm_gib * GIB
    need = sum(weights_per_gpu(deployed).values()) + activation_bytes(deployed)
    short_gib = (need + 0.08 * hbm + 2.44 * GIB - hbm) / GIB
    match = re.search(r"short by ([\d,.]+) GiB", line)
    assert match, line
    assert float(match.group(1).replace(",", "")) == pytest.approx(short_gib, abs=0.05)

    suggestion = re.search(r"(\d+) GPUs per replica would fit", line)
    assert suggestion, line
    gpus = int(suggestion.group(1))
    assert gpus > 8
    memory_budget(Deployed.build(model, gpu, Deployment(gpus_per_replica=gpus)))  # fits


def test_plan_table_has_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *args(PLAN_CASES["v4-flash-h200-128k"])]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = " ".join(captured.out.split())
    for unit in ("GiB", " ms", "tokens/s", "$"):
        assert unit in out, unit
    # Every figure of the memory table is in GiB and the six rows add up to the total.
    rows = dict(re.findall(r"[│|] (\w+) +[│|] +([\d,.]+) [│|]", captured.out))
    values = {k: float(v.replace(",", "")) for k, v in rows.items()}
    assert set(values) == {"weights", "kv", "activation", "reserved", "free", "total"}
    assert values["total"] == pytest.approx(load_gpu("h200").profile.hbm_gib, abs=0.01)
    parts = sum(v for k, v in values.items() if k != "total")
    assert parts == pytest.approx(values["total"], abs=0.05)


def test_frontier_concurrency_is_the_inverse_of_the_curve(capsys):
    # The longest context at which C sequences fit: C fit there, fewer than C fit one
    # KV block (64 tokens) further (the deployment's default block size).
    def v32_frontier(*extra: str) -> dict:
        main(
            [
                "frontier",
                "--model",
                "deepseek-v3.2",
                "--gpu",
                "h200",
                "--gpus",
                "8",
                *extra,
                "--json",
            ]
        )
        return json.loads(capsys.readouterr().out)["curves"][0]

    longest = v32_frontier("--concurrency", "16")["max_context_tokens_at_concurrency"]["16"]
    assert 0 < longest < 163_840
    at, beyond = v32_frontier("--contexts", f"{longest},{longest + 64}")["max_concurrent_sequences"]
    assert at >= 16 > beyond


def test_plan_prefix_hit_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    base = "plan --model deepseek-v3 --gpu h800 --gpus 16 --tp 1 --context 8K --input-tokens 4400"
    cold = run_json(capsys, *args(base))
    warm = run_json(capsys, *args(base + " --prefix-hit-ratio 0.56"))
    assert warm["prefill"]["cached_tokens"] == 2464  # floor(0.56 x 4,400)
    assert warm["prefill"]["prefix_hit_ratio"] == 0.56
    assert cold["prefill"]["cached_tokens"] == 0
    # Fewer tokens computed per prompt: faster prompts, cheaper input tokens.
    assert warm["prefill"]["tokens_per_s"] > cold["prefill"]["tokens_per_s"]
    assert warm["prefill"]["ttft_s"] < cold["prefill"]["ttft_s"]
    assert (
        warm["cost"]["usd_per_million_input_tokens"] < cold["cost"]["usd_per_million_input_tokens"]
    )


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "half"])
def test_plan_prefix_hit_ratio_out_of_range(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*args("plan --model deepseek-v3 --gpu h800 --context 8K"), "--prefix-hit-ratio", bad]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--prefix-hit-ratio" in line and bad in line


def test_plan_table_shows_expected_latency_at_load(capsys: pytest.CaptureFixture[str]) -> None:
    # An 8K prompt alone prefills in ~0.23 s here (V4 attention at 64 padded heads per
    # rank), so the SLO is 0.3 s.
    argv = "plan --model deepseek-v4-flash --gpu h200 --context 9K --input-tokens 8K --rate 14"
    report = run_json(capsys, *args(argv + " --ttft-slo-s 0.3 --ttft-percentile 99"))
    traffic = report["traffic"]
    assert traffic["ttft_slo_s"] == 0.3 and traffic["ttft_percentile"] == 0.99
    # The mean TTFT and the percentile both include the prefill; the percentile can sit
    # below the mean when few arrivals wait at all (under 1% busy: p99 wait is 0).
    assert traffic["prefill_s"] <= traffic["ttft_s"]
    assert traffic["prefill_s"] <= traffic["ttft_at_percentile_s"] <= 0.3
    assert main(args(argv + " --ttft-slo-s 0.3 --ttft-percentile 99")) == 0
    out = capsys.readouterr().out
    assert "TTFT SLO p99 0.3 s" in out
    expected = f"TTFT p99 {traffic['ttft_at_percentile_s']:,.3f} s"
    assert expected in out and f"TPOT {traffic['tpot_s'] * 1e3:,.1f} ms" in out


def test_plan_impossible_ttft_slo_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = "plan --model deepseek-v3.2 --gpu h200 --tp 1 --context 33K --input-tokens 32K"
    assert main(args(argv + " --rate 20 --ttft-slo-s 1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--ttft-slo-s" in err and "one prompt alone takes" in err


def test_plan_json_engine_admission_and_operator_breakdown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Llama-3.1-70B on 4 x H100 under vLLM at 8K, worked out in tests/test_engines.py
    # (test_vllm_logged_numbers_for_llama_on_4_h100): 30,238 blocks of 16 tokens, 512 per
    # 8,192-token request -> concurrency 30,238 / 512, logged size 30,238 x 16 = 483,808.
    report = run_json(
        capsys, "plan", *args("--model llama-3.1-70b --gpu h100 --gpus 4 --context 8K")
    )
    assert report["kv_pool_tokens"] == 483_808
    assert report["max_concurrency"] == pytest.approx(30_238 / 512)
    # The per-operator breakdown stays in the JSON and adds up to the step / TTFT.
    decode, prefill = report["decode"], report["prefill"]
    for phase, total in ((decode, decode["step_time_s"]), (prefill, prefill["ttft_s"])):
        ops = phase["by_operator_s"]
        assert {"attention:GQA", "projections", "dense_ffn", "all_reduce"} <= set(ops)
        assert sum(ops.values()) == pytest.approx(total, rel=1e-9)


def test_fit_hint_skips_gpu_counts_the_model_cannot_be_laid_out_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # DeepSeek-V3 (671B, FP8) on 8 x A100-40GB does not fit; the hint tries larger counts and
    # 24 GPUs (TP 24 does not divide the 128 attention heads) used to escape as a
    # tensor_parallel error instead of the shortfall and the count that fits.
    argv = ["plan", "--model", "deepseek-v3", "--gpu", "a100-40gb", "--gpus", "8"]
    assert main([*argv, "--context", "4096"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("kvplan: error: --gpus = 8: deepseek-v3 does not fit"), line
    suggestion = re.search(r"(\d+) GPUs per replica would fit", line)
    assert suggestion, line
    gpus = int(suggestion.group(1))
    assert 128 % gpus == 0
    model, gpu = load_model("deepseek-v3"), load_gpu("a100-40gb")
    memory_budget(Deployed.build(model, gpu, Deployment(gpus_per_replica=gpus)))  # fits
