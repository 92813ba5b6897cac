"""Engine start-up logs: real excerpts from public issues (tests/fixtures/engine_logs,
sources in SOURCES.yaml) parsed to the numbers their lines print, malformed and foreign
logs refused with one line, and the imported terms bringing kvplan's KV pool to the log's
(acceptance: within 5%)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from planner.calibrate.logs import parse_log
from planner.calibrate.terms import load_terms, terms_from_log, write_terms
from planner.errors import ConfigError
from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.deployed import Deployed
from planner.plan.memory import kv_pool_tokens, memory_budget
from planner.schema import Deployment

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "engine_logs"
REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.date(2026, 11, 25)


def read(name: str) -> str:
    return (LOGS / name).read_text()


def test_every_fixture_has_a_source() -> None:
    sources = yaml.safe_load((LOGS / "SOURCES.yaml").read_text())
    assert set(sources) == {p.name for p in LOGS.glob("*.log")}
    assert all(s["url"].startswith("https://github.com/") for s in sources.values())


def test_vllm_v0_profiling_summary() -> None:
    # vllm-project/vllm#10517: every number below is printed in the four lines.
    p = parse_log(read("vllm_v0_llama31_8b_rtx3090_20k.log"), "log")
    assert p.engine == "vllm"
    v = p.values
    assert v["weights_gib"] == 14.9888  # "Loading model weights took 14.9888 GB"
    assert v["total_gpu_memory_gib"] == 23.58
    assert v["gpu_memory_utilization"] == 0.90
    assert v["non_torch_gib"] == 0.35
    assert v["available_kv_gib"] == 3.81  # kv_cache_size=3.81GiB
    assert v["activation_gib"] == pytest.approx(17.06 - 14.9888)  # peak torch - weights
    assert v["kv_blocks"] == 1952
    assert (v["max_model_len"], v["max_concurrency"]) == (20000, 1.56)


def test_vllm_v1_lines_with_worker_prefixes() -> None:
    # guqiong96/Lvllm#35: V1 lines behind "(EngineCore_DP0 pid=...) INFO ... [file:line]".
    v = parse_log(read("vllm_v1_lvllm_a40.log"), "log").values
    assert (v["weights_gib"], v["available_kv_gib"], v["kv_pool_tokens"]) == (11.55, 12.57, 53136)


def test_vllm_cuda_graph_profiling_line_gives_the_utilization() -> None:
    v = parse_log(read("vllm_v1_cudagraph_profiling_club3090_104.log"), "log").values
    assert v["gpu_memory_utilization"] == 0.88  # "--gpu-memory-utilization=0.8800 is ..."
    assert (v["kv_pool_tokens"], v["max_model_len"], v["max_concurrency"]) == (
        619202,
        262144,
        2.36,
    )


def test_sglang_server_args_and_rank_lines() -> None:
    # ajith-sirra-amd/Issues Kimi-K2.5 on 8x MI355X: TP0 and TP1 lines, read once.
    p = parse_log(read("sglang_kimi_k25_mi355x_tp8.log"), "log")
    assert p.engine == "sglang"
    assert p.values["weights_gib"] == 73.58
    assert p.values["kv_gib"] == 160.63  # "KV size: 160.63 GB" (SGLang's GB are GiB)
    assert p.values["kv_pool_tokens"] == 2454421
    assert p.values["gpu_memory_utilization"] == 0.8260405859375  # mem_fraction_static
    assert p.args["tensor_parallel_size"] == 8
    assert p.args["max_total_tokens"] is None


def test_sglang_k_and_v_sizes_add_up() -> None:
    p = parse_log(read("sglang_kv_line_only_21348.log"), "log")
    assert p.values["kv_gib"] == pytest.approx(8.23 + 8.23)
    assert p.values["kv_pool_tokens"] == 367404


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("vllm_v1_kv_lines_only_21348.log", "Model loading took"),
        ("vllm_v1_cudagraph_profiling_club3090_104.log", "Model loading took"),
        ("sglang_kv_line_only_21348.log", "Load weight end"),
    ],
)
def test_a_log_without_the_weights_line_says_which_line_is_missing(name: str, missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        terms_from_log(read(name), name, load_gpu("h100-sxm"), TODAY)


def test_a_foreign_log_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a vLLM or SGLang start-up log"):
        parse_log(read("llamacpp_foreign_ik_llama_259.log"), "llama.log")


def test_two_start_ups_with_different_pools_are_refused() -> None:
    text = read("vllm_v1_lvllm_a40.log") + "GPU KV cache size: 99,999 tokens\n"
    with pytest.raises(ConfigError, match="several engine start-ups"):
        parse_log(text, "log")


@pytest.mark.parametrize("digits", [40, 400])
def test_a_number_no_log_prints_is_refused_with_its_line(digits: int) -> None:
    # Fuzz finding: "GPU blocks: 111...1" (400 digits) parsed as float inf, then int(inf)
    # raised OverflowError; 40 digits (1e39 blocks) passed as a number.
    text = read("vllm_v0_llama31_8b_rtx3090_20k.log").replace(
        "GPU blocks: 1952", "GPU blocks: " + "1" * digits
    )
    with pytest.raises(
        ConfigError, match=r"'kv_blocks' line gives kv_blocks = 1111.* <= 1099511627776"
    ):
        parse_log(text, "log")
    kept = read("vllm_v0_llama31_8b_rtx3090_20k.log").replace(
        "GPU blocks: 1952", "GPU blocks: 1099511627776"
    )
    assert parse_log(kept, "log").values["kv_blocks"] == 2**40  # the bound itself is read


def test_both_engines_in_one_file_are_refused() -> None:
    text = read("vllm_v1_lvllm_a40.log") + read("sglang_kv_line_only_21348.log")
    with pytest.raises(ConfigError, match="both vLLM and SGLang"):
        parse_log(text, "log")


def test_a_capped_sglang_pool_is_refused() -> None:
    text = read("sglang_kimi_k25_mi355x_tp8.log").replace(
        "max_total_tokens=None", "max_total_tokens=20480"
    )
    with pytest.raises(ConfigError, match="--max-total-tokens 20480"):
        terms_from_log(text, "log", load_gpu("mi300x"), TODAY)


def test_a_log_from_a_bigger_gpu_than_named_is_refused() -> None:
    # 73.58 + 160.63 GiB per GPU cannot come from an 80 GB H100.
    with pytest.raises(ConfigError, match="--gpu"):
        terms_from_log(read("sglang_kimi_k25_mi355x_tp8.log"), "log", load_gpu("h100-sxm"), TODAY)


def test_v0_terms_reproduce_the_logged_pool(tmp_path: Path) -> None:
    """Acceptance: vllm-project/vllm#10517 (Llama-3.1-8B, 20K context, RTX 3090): with the
    log's terms kvplan's KV pool is within 5% of the log's 1,952 blocks x 16 = 31,232
    tokens (without them, on the stand-in profile, it is not)."""
    text = read("vllm_v0_llama31_8b_rtx3090_20k.log")
    gpu = load_gpu("a100-40gb")  # the RTX 3090 has no profile; its memory comes from the log
    doc = terms_from_log(text, "vllm.log", gpu, TODAY)
    d = doc["deployment"]
    assert d["gpu_memory_gib"] == 23.58 and d["gpu_memory_utilization"] == 0.9
    assert d["activation_gib"] == pytest.approx(17.06 - 14.9888, abs=1e-4)
    # vLLM V0: KV = 0.9 x total - weights - activation - reserve, so the reserve the rule
    # needs is 0.9 x 23.58 - 14.9888 - 2.0712 - 3.81 = 0.352 GiB (the log: non-torch 0.35).
    assert d["runtime_reserve_gib"] == pytest.approx(0.9 * 23.58 - 14.9888 - 2.0712 - 3.81, 1e-3)
    path = tmp_path / "terms.yaml"
    write_terms(path, doc)
    terms = load_terms(path)
    model = resolve_model(str(REPO / "benchmarks/validate/configs/llama-3.1-8b-instruct.json"))
    flags = {"gpus_per_replica": 1, "max_batched_tokens": 20000, "kv_block_tokens": 16}
    deployed = Deployed.build(model, gpu, Deployment.model_validate({**flags, **terms.deployment}))
    tokens = int(kv_pool_tokens(deployed, 20000, memory_budget(deployed)))
    assert abs(tokens / (1952 * 16) - 1) < 0.05
    plain = Deployed.build(model, gpu, Deployment.model_validate(flags))
    assert abs(int(kv_pool_tokens(plain, 20000)) / (1952 * 16) - 1) > 0.05


def test_unknown_deployment_fields_in_terms_are_refused(tmp_path: Path) -> None:
    doc = terms_from_log(read("vllm_v0_llama31_8b_rtx3090_20k.log"), "l", load_gpu("a100-40gb"))
    doc["deployment"]["replicas"] = 3
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"deployment\.replicas"):
        load_terms(path)
