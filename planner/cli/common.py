"""Shared pieces of the `kvplan` command line: console, JSON output, argument types, the
deployment flags and a lazy progress bar."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn

from planner.errors import ConfigError, KvplanError
from planner.schema import Deployment
from planner.units import MAX_TOKEN_COUNT, parse_token_count
from planner.validation import read_document, validate

EXIT_USER_ERROR = 2
KV_DTYPE_CHOICES = ("bf16", "fp8")
ENGINE_CHOICES = ("vllm", "sglang", "trtllm")
GFLOP = 1e9

# Tables keep their columns readable when piped (rich falls back to 80 columns otherwise).
PIPED_CONSOLE_WIDTH = 160
console = Console() if sys.stdout.isatty() else Console(width=PIPED_CONSOLE_WIDTH)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= MAX_TOKEN_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOKEN_COUNT:,}, got {value}")
    return value


def share_arg(text: str) -> float:
    """A share in [0, 1] (e.g. a prefix-cache hit ratio)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


def token_arg(text: str) -> int:
    try:
        return parse_token_count(text)
    except KvplanError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class LazyProgress:
    """A progress bar that appears only once a run has taken longer than a second."""

    SHOW_AFTER_S = 1.0

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, fraction: float) -> None:
        if self.progress is None:
            if time.perf_counter() - self.start < self.SHOW_AFTER_S:
                return
            self.progress = Progress(
                *Progress.get_default_columns(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=1.0)
        self.progress.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def percentile_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100 (exclusive), got {text}")
    return value


def add_ttft_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ttft-slo-s",
        type=positive_float,
        default=None,
        help="time-to-first-token SLO in seconds, met at --ttft-percentile (default: none; "
        "the expected TTFT is still reported)",
    )
    p.add_argument(
        "--ttft-percentile",
        type=percentile_arg,
        default=90.0,
        help="percentile of TTFT the SLO applies to and the plan reports (default 90)",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_kv_dtype(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kv-dtype",
        choices=KV_DTYPE_CHOICES,
        default=None,
        help="store the main attention cache in this dtype (default: the model's "
        "reference serving stack)",
    )


def add_deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default=None,
        help="serving engine whose KV layout, admission and kernels to model (default vllm)",
    )
    p.add_argument("--gpus", type=int, default=None, help="GPUs per replica (default 8)")
    p.add_argument("--tp", type=int, default=None, help="attention tensor parallel size")
    p.add_argument("--ep", type=int, default=None, help="expert parallel size")
    p.add_argument("--mtp", action="store_true", help="MTP speculative decoding on")
    p.add_argument(
        "--deployment", default=None, help="YAML file with Deployment fields (flags override it)"
    )
    add_kv_dtype(p)


def deployment_from_args(args: argparse.Namespace) -> Deployment:
    base: dict[str, Any] = {}
    if args.deployment:
        raw = read_document(args.deployment)
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(
                "a deployment file must be a mapping of Deployment fields", where=args.deployment
            )
        base = raw or {}
    flags = {
        "engine": args.engine,
        "gpus_per_replica": args.gpus,
        "tensor_parallel": args.tp,
        "expert_parallel": args.ep,
        "kv_dtype": args.kv_dtype,
        "mtp": True if args.mtp else None,
    }
    merged = {**base, **{k: v for k, v in flags.items() if v is not None}}
    return validate(Deployment, merged, args.deployment or "command line")
