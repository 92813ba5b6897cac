"""Calibrated GPU profiles (kvplan calibrate, our own H100/H200 measurements) against the
curves fitted to NVIDIA AIConfigurator's tables (hardware_profiles/fits), one command:

    python benchmarks/validate/calibrated_vs_aic.py

1. Operators: every raw measurement of a calibrated profile predicted by the profile's own
   curve and by each engine's AIConfigurator-fitted curve of the same operator (median of
   predicted / measured, and the share within 10%). The AIC curves never saw these
   measurements; the profile's own curve saw ~80% of them (its held-out error is in the
   profile's ``fit`` records).
2. Steps: kvplan's decode TPOT and prefill TTFT for Llama-3.1-70B (BF16) and DeepSeek-V3
   (FP8 block) on 8 GPUs, with the AIC-fitted defaults and with ``--gpu-profile``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from planner.calibrate.fit import gemm_bytes  # noqa: E402
from planner.calibrate.kernels import (  # noqa: E402
    attention_work,
    fastest_per_shape,
    grouped_work,
)
from planner.calibrate.profile import load_profile  # noqa: E402
from planner.calibrate.raw import (  # noqa: E402
    AttentionRecord,
    ElementwiseRecord,
    GemmRecord,
    GroupedRecord,
)
from planner.hardware import load_gpu  # noqa: E402
from planner.model.resolve import resolve_model  # noqa: E402
from planner.plan.deployed import Deployed  # noqa: E402
from planner.plan.efficiency.curves import Efficiency, op_seconds  # noqa: E402
from planner.plan.efficiency.load import load_fits  # noqa: E402
from planner.plan.perf import decode_time_s, prefill_time_s  # noqa: E402
from planner.schema import Deployment, GpuCalibration  # noqa: E402

PROFILES = {
    "h100-sxm": REPO / "hardware_profiles/calibrated/h100-sxm-2026-11-25.json",
    "h200": REPO / "hardware_profiles/calibrated/h200-2026-11-25.json",
}
ENGINES = ("vllm", "sglang", "trtllm")
GEMM_FORMATS = {"bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8_w128"}


def predicted_s(eff: Efficiency, r: object) -> float | None:
    """An operator measurement's time under ``eff``'s curve (None: not comparable)."""
    if isinstance(r, GemmRecord):
        m, n, k = (np.array([float(x)]) for x in (r.m, r.n, r.k))
        nbytes = gemm_bytes(m, n, k, GEMM_FORMATS[r.dtype])
        math = "bf16" if r.dtype == "bf16" else "fp8"
        t = eff.gemm_time(r.dtype, math, m, r.n, r.k, 2 * m * n * k, nbytes)  # type: ignore[arg-type]
        return float(op_seconds(t)[0])
    if isinstance(r, GroupedRecord) and not r.routing:
        rr, a, f, nbytes = grouped_work(r)
        t = eff.grouped_gemm_time("bf16", "bf16", rr, a, f, nbytes)  # type: ignore[call-arg]
        return float(op_seconds(t))
    if isinstance(r, AttentionRecord):
        flops, per_query, nbytes, seqs = attention_work(r)
        t = eff.attention_time(r.kind, "bf16", flops, per_query, nbytes, seqs)
        return float(op_seconds(t))
    if isinstance(r, ElementwiseRecord) and r.name in ("copy", "add", "silu"):
        return float(op_seconds(eff.memory_time(float(r.bytes))))
    return None


def curve_key(r: object) -> str:
    if isinstance(r, GemmRecord):
        return f"gemm.{r.dtype}"
    if isinstance(r, GroupedRecord):
        return "grouped_gemm.bf16"
    if isinstance(r, AttentionRecord):
        return f"attention.{r.kind}"
    return "elementwise"


def operator_table() -> None:
    print("1. operators: predicted / measured over each profile's own measurements")
    print(f"{'gpu':9} {'curve':22} {'n':>4}  {'source':28} {'median':>7} {'within 10%':>10}")
    for gpu_name, path in PROFILES.items():
        profile = load_profile(path)
        gpu = load_gpu(gpu_name)
        records = [
            r
            for r in profile.measurements
            if not isinstance(r, AttentionRecord) or r.q_tokens == 1 or r.q_tokens == r.context
        ]
        attention = fastest_per_shape([r for r in records if isinstance(r, AttentionRecord)])
        records = [r for r in records if not isinstance(r, AttentionRecord)] + attention
        effs = {"calibrated (own curve)": Efficiency(gpu, "vllm", profile.fits, "calibrated")}
        for engine in ENGINES:
            if load_fits(gpu_name, engine) is not None:
                effs[f"AIC-fitted {engine}"] = Efficiency(gpu, engine)
        by_curve: dict[str, list[object]] = {}
        for r in records:
            by_curve.setdefault(curve_key(r), []).append(r)
        for key, recs in sorted(by_curve.items()):
            for label, eff in effs.items():
                if eff.origin.get(key, "").startswith("analytic"):
                    continue  # this source has no fitted curve for the operator
                ratios = [
                    p / r.median_s  # type: ignore[attr-defined]
                    for r in recs
                    if (p := predicted_s(eff, r)) is not None
                ]
                if not ratios:
                    continue
                ratio = np.array(ratios)
                within = float(np.mean(np.abs(ratio - 1) <= 0.10))
                print(
                    f"{gpu_name:9} {key:22} {len(ratio):4d}  {label:28} "
                    f"{np.median(ratio):7.3f} {within:10.0%}"
                )


CASES = (
    ("llama-3.1-70b", {"gpus_per_replica": 8}, 8192),
    ("deepseek-v3", {"gpus_per_replica": 8}, 8192),
)


def step_table() -> None:
    print()
    print("2. steps on 8 GPUs (vLLM): AIC-fitted defaults vs calibrated profile")
    print(f"{'model':14} {'gpu':9} {'what':22} {'AIC-fitted':>11} {'calibrated':>11} {'ratio':>6}")
    for gpu_name, path in PROFILES.items():
        profile = load_profile(path)
        calibration = GpuCalibration(
            gpu=profile.gpu, label=profile.label, kernel_fits_json=profile.fits.model_dump_json()
        )
        gpu = load_gpu(gpu_name)
        for model_name, fields, context in CASES:
            model = resolve_model(model_name)
            plain = Deployed.build(model, gpu, Deployment.model_validate(fields))
            calibrated = Deployed.build(
                model, gpu, Deployment.model_validate({**fields, "gpu_calibration": calibration})
            )
            rows = [
                (f"decode b=1 ctx {context}", lambda d, c=context: decode_time_s(d, 1, c)),
                (f"decode b=64 ctx {context}", lambda d, c=context: decode_time_s(d, 64, c)),
                ("prefill 4K prompt", lambda d: prefill_time_s(d, 4096)),
                ("prefill 32K prompt", lambda d: prefill_time_s(d, 32768)),
            ]
            for what, fn in rows:
                a, c = fn(plain) * 1e3, fn(calibrated) * 1e3
                print(f"{model_name:14} {gpu_name:9} {what:22} {a:9.2f}ms {c:9.2f}ms {c / a:6.2f}")


if __name__ == "__main__":
    operator_table()
    step_table()
