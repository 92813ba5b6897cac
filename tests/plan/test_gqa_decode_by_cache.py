"""GQA decode attention per KV-cache class, against measured kernels.

Expected values are measured kernel times: an excerpt of AIConfigurator 0.12.0's SGLang
0.5.14 generation-attention table on H200 (``tests/plan/data/aic_gqa_decode_h200_sxm_
sglang.csv``, written by ``benchmarks/fit/excerpt.py``) at Llama-3.1-70B's shape on 8
GPUs. In that table an FP8 cache moves half the bytes of a BF16 one in about the same time
(dequantisation in the kernel's inner loop), so a curve fitted to both caches at once
times BF16 too slow and FP8 too fast; the per-cache curves
(``attention_by_kv_cache`` in the fit files) follow each.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.efficiency import efficiency_for
from planner.plan.efficiency.curves import _overlay
from planner.plan.efficiency.load import fits_dir, fits_from_file
from planner.plan.perf import decode_step
from planner.schema import Deployment

DATA = Path(__file__).parent / "data"
LLAMA_LAYERS = 80
TABLE_CACHE = {"bf16": "bfloat16", "fp8": "fp8"}


def _rows(cache: str) -> list[dict[str, str]]:
    text = (DATA / "aic_gqa_decode_h200_sxm_sglang.csv").read_text().splitlines()
    lines = [ln for ln in text if not ln.startswith("#")]
    return [r for r in csv.DictReader(lines) if r["kv_cache_dtype"] == TABLE_CACHE[cache]]


def _ratios(cache: str) -> np.ndarray:
    deployment = Deployment(engine="sglang", gpus_per_replica=8, kv_dtype=cache)  # type: ignore[arg-type]
    deployed = Deployed.build(load_model("llama-3.1-70b"), load_gpu("h200"), deployment)
    out = []
    for r in _rows(cache):
        batch, context = int(r["batch_size"]), int(r["step"]) + 1
        step = decode_step(deployed, batch, context)
        per_layer = float(step.by_operator_s["attention:GQA"]) / LLAMA_LAYERS
        out.append(per_layer / (float(r["latency"]) * 1e-3))
    return np.array(out)


@pytest.mark.parametrize("cache", ["bf16", "fp8"])
def test_gqa_decode_matches_measured_kernels_per_cache(cache: str) -> None:
    ratio = _ratios(cache)
    assert len(ratio) == 5
    # Held-out error of these curves (h200/sglang.yaml): median 8-9%, p90 36-42%.
    assert np.median(np.abs(ratio - 1)) < 0.15, ratio
    assert np.all(np.abs(ratio - 1) < 0.35), ratio


def test_the_cache_picks_its_curve_and_other_caches_keep_the_shared_one() -> None:
    eff = efficiency_for(load_gpu("h200"), "sglang")
    fits = fits_from_file(fits_dir() / "h200" / "sglang.yaml")
    assert (
        eff.attention_curve("gqa_decode", "bf16")
        == fits.attention_by_kv_cache["bf16"]["gqa_decode"]
    )
    assert (
        eff.attention_curve("gqa_decode", "fp8") == fits.attention_by_kv_cache["fp8"]["gqa_decode"]
    )
    # No per-cache curve for FP16 caches or for prefill: the curve fitted to every cache.
    assert eff.attention_curve("gqa_decode", "fp16") == fits.attention["gqa_decode"]
    assert eff.attention_curve("gqa_prefill", "bf16") == fits.attention["gqa_prefill"]
    assert eff.origin["attention.gqa_decode[bf16 cache]"].startswith("fitted h200/sglang")


def test_a_calibrated_curve_replaces_the_per_cache_curves_of_its_op() -> None:
    base = fits_from_file(fits_dir() / "h200" / "sglang.yaml")
    mine = base.attention["gqa_decode"].model_copy(update={"latency_us": 1.0, "fit": None})
    top = base.model_copy(
        update={
            "gemm": {},
            "grouped_gemm": {},
            "grouped_gemm_by_shape": [],
            "attention": {"gqa_decode": mine},
            "attention_by_kv_cache": {},
            "elementwise": None,
            "collectives": {},
            "step_overhead_us": None,
        }
    )
    merged, keys = _overlay(base, top)
    assert merged.attention["gqa_decode"] == mine
    assert "gqa_decode" not in merged.attention_by_kv_cache.get("bf16", {})
    assert keys == {"attention.gqa_decode"}


def test_a_fit_file_without_per_cache_curves_still_loads(tmp_path: Path) -> None:
    src = (fits_dir() / "h200" / "trtllm.yaml").read_text()
    assert "attention_by_kv_cache" not in src  # TensorRT-LLM's caches stream alike on H200
    path = tmp_path / "h200" / "trtllm.yaml"
    path.parent.mkdir()
    path.write_text(src)
    assert fits_from_file(path).attention_by_kv_cache == {}
