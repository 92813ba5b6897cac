"""All-reduce and all-to-all times over the GPUs of this machine (PyTorch distributed).

One process per GPU (``torch.multiprocessing``), NCCL between them; each message size is
run ``WARMUP`` times, then timed ``repeats`` times between barriers with CUDA events on
every rank, and the slowest rank's median is kept (a collective ends when its last rank
does). Message sizes are per GPU: the all-reduce's buffer, the all-to-all's whole send
buffer (1/n of it stays local). With fewer than two GPUs nothing is measured and the
result says so.

The same code runs over Gloo on the CPU (``backend="gloo"``), timed with the host clock:
that is how the tests check it without GPUs. NVLink multicast (NVLS) is left as the
environment sets it; this module never turns it on.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WARMUP = 3
REPEATS = 9
QUICK_REPEATS = 5
# Per-GPU message sizes: 4 KiB to 256 MiB by factors of 4 (quick: by 16).
SIZES_BYTES = tuple(2**e for e in range(12, 29, 2))
QUICK_SIZES_BYTES = tuple(2**e for e in range(12, 29, 4))
OPS = ("all_reduce", "all_to_all")
JOIN_TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(op: str, send: Any, recv: Any, on_gpu: bool) -> float:
    if on_gpu:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
    else:
        begin = time.perf_counter()
    if op == "all_reduce":
        dist.all_reduce(send)
    else:
        dist.all_to_all_single(recv, send)
    if on_gpu:
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) * 1e-3
    return time.perf_counter() - begin


def _worker(
    rank: int,
    world: int,
    backend: str,
    port: int,
    sizes: list[int],
    repeats: int,
    result_path: str,
) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    on_gpu = backend == "nccl"
    if on_gpu:
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=world)
    device = torch.device(f"cuda:{rank}" if on_gpu else "cpu")
    dtype = torch.bfloat16 if on_gpu else torch.float32
    width = torch.tensor([], dtype=dtype).element_size()
    gen = torch.Generator(device=device)
    gen.manual_seed(1000 + rank)
    records: list[dict[str, Any]] = []
    try:
        for op in OPS:
            for size in sizes:
                count = max(size // width // world, 1) * world  # all-to-all splits evenly
                send = torch.randn(count, generator=gen, device=device, dtype=torch.float32).to(
                    dtype
                )
                recv = torch.empty_like(send)
                for _ in range(WARMUP):
                    _timed(op, send, recv, on_gpu)
                samples = []
                for _ in range(repeats):
                    dist.barrier()
                    samples.append(_timed(op, send, recv, on_gpu))
                median = torch.tensor(
                    [statistics.median(samples), min(samples), max(samples)],
                    device=device,
                    dtype=torch.float64,
                )
                dist.all_reduce(median, op=dist.ReduceOp.MAX)
                slowest, low, high = (float(v) for v in median.tolist())
                records.append(
                    {
                        "op": "collective",
                        "name": op,
                        "gpus": world,
                        "message_bytes": count * width,
                        "dtype": str(dtype).removeprefix("torch."),
                        "backend": backend,
                        "kernel": f"torch.distributed {op} ({backend})",
                        "median_s": slowest,
                        "p10_s": low,
                        "p90_s": high,
                        "samples": repeats,
                        "timing": "cuda_events, slowest rank"
                        if on_gpu
                        else "host clock, slowest rank",
                    }
                )
        if rank == 0:
            Path(result_path).write_text(json.dumps(records))
    finally:
        dist.destroy_process_group()


def run_world(world: int, backend: str, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """Measure every op and size on ``world`` processes; the records of rank 0."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "collectives.json"
        mp.start_processes(
            _worker,
            args=(world, backend, _free_port(), sizes, repeats, str(result)),
            nprocs=world,
            join=True,
            start_method="spawn",
        )
        records: list[dict[str, Any]] = json.loads(result.read_text())
    return records


def group_sizes(gpus: int) -> list[int]:
    """2, 4, 8, ... up to the visible GPUs, and the visible count itself."""
    sizes = []
    n = 2
    while n <= gpus:
        sizes.append(n)
        n *= 2
    if gpus >= 2 and gpus not in sizes:
        sizes.append(gpus)
    return sizes


def measure_collectives(quick: bool, budget_s: float) -> dict[str, Any]:
    """NCCL collectives over every group size this machine has; a record saying why not
    when it has fewer than two GPUs."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus < 2:
        return {
            "measured": False,
            "reason": f"{gpus} GPU(s) visible: collectives need at least 2",
            "measurements": [],
        }
    if not dist.is_nccl_available():
        return {"measured": False, "reason": "PyTorch has no NCCL", "measurements": []}
    sizes = list(QUICK_SIZES_BYTES if quick else SIZES_BYTES)
    repeats = QUICK_REPEATS if quick else REPEATS
    records: list[dict[str, Any]] = []
    skipped: list[int] = []
    deadline = time.monotonic() + budget_s
    for world in group_sizes(gpus):
        if time.monotonic() > deadline:
            skipped.append(world)
            continue
        records += run_world(world, "nccl", sizes, repeats)
    out: dict[str, Any] = {"measured": True, "gpus": gpus, "measurements": records}
    if skipped:
        out["reason"] = f"time budget: group sizes {skipped} not measured"
    return out
