"""Measure GEMM/GEMV and copy times on a real GPU, then set them beside kvplan's operator
model (kernel overhead + max(FLOPs / achievable FLOP/s, bytes / achievable bandwidth)).

On the GPU machine (needs only PyTorch):
    python benchmarks/device/validate_roofline.py measure > h100.json
Here (needs kvplan):
    python benchmarks/device/validate_roofline.py compare h100.json --profile h100-sxm
The comparison shows where the profile's fractions and kernel overheads hold and where not
(a later `kvplan calibrate` will fit them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HIDDEN = 7168
OUT = 4096
BATCHES = (1, 8, 32, 128, 512, 2048, 8192)
REPEATS = 50
BF16_BYTES = 2
COPY_BYTES = 2**30


def measure() -> list[dict[str, Any]]:
    import torch

    def time_us(fn: Any, graph: bool) -> float:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        calls = REPEATS
        run = fn
        if graph:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(REPEATS):
                    fn()
            run, calls = g.replay, 1
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            run()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) * 1e3 / REPEATS

    weight = torch.randn(OUT, HIDDEN, device="cuda", dtype=torch.bfloat16)
    rows: list[dict[str, Any]] = []
    for m in BATCHES:
        x = torch.randn(m, HIDDEN, device="cuda", dtype=torch.bfloat16)
        rows.append(
            {
                "op": "matmul",
                "m": m,
                "k": HIDDEN,
                "n": OUT,
                "eager_us": time_us(lambda x=x: x @ weight.T, False),
                "graph_us": time_us(lambda x=x: x @ weight.T, True),
            }
        )
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    rows.append(
        {"op": "copy", "bytes": COPY_BYTES, "eager_us": time_us(lambda: dst.copy_(src), False)}
    )
    return [{"device": torch.cuda.get_device_name(), "torch": torch.__version__}, *rows]


def compare(path: str, profile: str) -> None:
    from planner.hardware import load_gpu

    gpu = load_gpu(profile)
    eff = gpu.profile.efficiency
    meta, *rows = json.loads(Path(path).read_text())
    print(f"{meta['device']} (torch {meta['torch']}) vs profile {profile}")
    print(
        f"{'operator':28s} {'eager us':>9s} {'model':>8s} {'graph us':>9s} {'model':>8s} "
        f"{'TB/s':>6s} {'TFLOP/s':>8s}"
    )
    for r in rows:
        if r["op"] == "copy":
            moved = 2 * r["bytes"]  # read + write
            model = 1e6 * moved / gpu.achievable_bandwidth_bytes_per_s
            print(
                f"{'copy 1 GiB (read+write)':28s} {r['eager_us']:9.1f} {model:8.1f} "
                f"{'':9s} {'':8s} {moved / r['eager_us'] / 1e6:6.2f}"
            )
            continue
        m, k, n = r["m"], r["k"], r["n"]
        flops = 2 * m * k * n
        nbytes = (k * n + m * k + m * n) * BF16_BYTES
        roof_us = 1e6 * max(
            flops / gpu.achievable_flop_per_s("bf16"), nbytes / gpu.achievable_bandwidth_bytes_per_s
        )
        print(
            f"{f'bf16 {m}x{k}x{n}':28s} {r['eager_us']:9.1f} "
            f"{roof_us + eff.kernel_overhead_no_graphs_us:8.1f} {r['graph_us']:9.1f} "
            f"{roof_us + eff.kernel_overhead_us:8.1f} {nbytes / r['graph_us'] / 1e6:6.2f} "
            f"{flops / r['graph_us'] / 1e6:8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("measure")
    p = sub.add_parser("compare")
    p.add_argument("file")
    p.add_argument("--profile", default="h100-sxm")
    args = parser.parse_args()
    if args.cmd == "measure":
        json.dump(measure(), sys.stdout, indent=1)
    else:
        compare(args.file, args.profile)


if __name__ == "__main__":
    main()
