"""Timing one GPU operator the way serving engines run it (PyTorch; imported only when
measuring).

Method (NVIDIA's and PyTorch's usual microbenchmark practice; see also Triton's
``do_bench``):
- every call is run eagerly once per input set first (module load, cuBLAS handles and
  autotuning stay out of the numbers);
- several input sets of random data (never zeros: zeros run faster than real data on
  tensor cores) are rotated so that consecutive calls do not read the same bytes; the
  sets together are at least ``L2_MULTIPLE`` times the L2 cache where memory allows, so
  each call reads its inputs from HBM as it would in a model whose layers have
  different weights (``l2_resident`` records where that was not possible);
- the calls are captured into a CUDA graph and the graph is replayed (as engines replay
  their decode steps), timed with CUDA events; small kernels are repeated inside the
  graph until one replay lasts about ``target_s``, so launch gaps do not count;
- the replay is timed ``repeats`` times and the median time per call is kept, with the
  10th and 90th percentiles as its spread.
Where capture fails the same calls run eagerly between events (``timing: eager``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

L2_MULTIPLE = 3
MAX_INPUT_SETS = 64
MIN_INPUT_SETS = 2
MAX_CALLS_PER_GRAPH = 512


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    samples: int
    calls_per_replay: int
    input_sets: int
    l2_resident: bool
    method: str  # "cuda_graph" or "eager"

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median_s,
            "p10_s": self.p10_s,
            "p90_s": self.p90_s,
            "samples": self.samples,
            "calls_per_replay": self.calls_per_replay,
            "input_sets": self.input_sets,
            "l2_resident": self.l2_resident,
            "timing": self.method,
        }


def input_set_count(bytes_per_set: float, l2_bytes: int, memory_cap_bytes: float) -> int:
    """Sets to rotate: enough to exceed L2_MULTIPLE x L2, within the memory cap."""
    wanted = math.ceil(L2_MULTIPLE * l2_bytes / max(bytes_per_set, 1.0))
    affordable = int(memory_cap_bytes // max(bytes_per_set, 1.0))
    return max(MIN_INPUT_SETS, min(wanted, affordable, MAX_INPUT_SETS))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _elapsed_s(run: Callable[[], None], on_gpu: bool) -> float:
    if not on_gpu:  # CPU (tests, a machine without a GPU): the host clock
        begin = time.perf_counter()
        run()
        return time.perf_counter() - begin
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    run()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) * 1e-3


def time_calls(
    calls: Sequence[Callable[[], Any]],
    *,
    target_s: float,
    repeats: int,
    l2_resident: bool,
    use_graph: bool = True,
) -> Timing:
    """Time one operator given one bound call per input set (see the module docstring).
    Without a GPU the calls run eagerly under the host clock (for tests)."""
    on_gpu = torch.cuda.is_available()
    use_graph = use_graph and on_gpu
    for call in calls:  # warm-up: load modules, create handles, pick kernels
        call()
    synchronize()

    def eager(count: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(count):
                calls[i % len(calls)]()

        return run

    # First estimate from an eager pass (an upper bound: it includes launch gaps).
    estimate = max(_elapsed_s(eager(len(calls)), on_gpu) / len(calls), 1e-7)
    per_replay = max(len(calls), min(MAX_CALLS_PER_GRAPH, math.ceil(target_s / estimate)))
    per_replay = max(1, per_replay)
    method = "eager"
    run: Callable[[], None] = eager(per_replay)
    if use_graph:
        try:
            graph = torch.cuda.CUDAGraph()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                eager(len(calls))()  # warm-up on the capture stream
            torch.cuda.current_stream().wait_stream(stream)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                eager(per_replay)()
            torch.cuda.synchronize()
            run = graph.replay
            method = "cuda_graph"
        except Exception:  # capture unsupported for this op: time it eagerly
            torch.cuda.synchronize()
            run = eager(per_replay)
    run()  # replay warm-up
    synchronize()
    samples = [_elapsed_s(run, on_gpu) / per_replay for _ in range(max(repeats, 1))]
    return Timing(
        median_s=statistics.median(samples),
        p10_s=_percentile(samples, 0.1),
        p90_s=_percentile(samples, 0.9),
        samples=len(samples),
        calls_per_replay=per_replay,
        input_sets=len(calls),
        l2_resident=l2_resident,
        method=method,
    )
