"""Shared pieces of the `kvplan` command line: console, JSON output, argument types, the
deployment flags and a lazy progress bar."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TimeElapsedColumn

from planner import limits as lim
from planner.calibrate.profile import load_profile
from planner.calibrate.terms import load_terms
from planner.errors import ConfigError, KvplanError
from planner.hardware import load_gpu
from planner.schema import Deployment, GpuCalibration, Scenario
from planner.units import MAX_TOKEN_COUNT, parse_token_count
from planner.validation import read_document, validate

EXIT_USER_ERROR = 2
KV_DTYPE_CHOICES = ("bf16", "fp8")
ENGINE_CHOICES = ("vllm", "sglang", "trtllm")
GFLOP = 1e9

# Tables keep their columns readable when piped (rich falls back to 80 columns otherwise).
PIPED_CONSOLE_WIDTH = 160
console = Console() if sys.stdout.isatty() else Console(width=PIPED_CONSOLE_WIDTH)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``kvplan plan: error: argument --batch: ...`` and
    exit 2, no usage block (``-h`` still shows the full help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:  # quoted, so an empty or blank one shows
            self.error("unrecognized arguments: " + " ".join(shlex.quote(a) for a in extras))
        return parsed, extras


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def int_arg(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer from {low:,} to {high:,}")
        return value

    return parse


def float_arg(low: float, high: float, *, include_low: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in (low, high] (or [low, high])."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value >= low if include_low else value > low
        if not (math.isfinite(value) and above and value <= high):
            opener = "[" if include_low else "("
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number in {opener}{low:g}, {high:g}]"
            )
        return value

    return parse


def tokens_arg(low: int = 0) -> Callable[[str], int]:
    """An argparse type: a token count with an optional K/M/G suffix (128K, 1M), from
    ``low`` to the 2^40 cap."""

    def parse(text: str) -> int:
        try:
            value = parse_token_count(text)
        except KvplanError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err.message} ({err.expected})") from None
        if value < low:
            unit = "token" if low == 1 else "tokens"
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {low:,} {unit}")
        return value

    return parse


gpu_count_arg = int_arg(1, lim.MAX_GPUS_PER_REPLICA)
seed_arg = int_arg(0, lim.MAX_SEED)


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


token_arg = tokens_arg(0)


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
        type=float_arg(0, lim.MAX_SLO_S),
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
    p.add_argument("--gpus", type=gpu_count_arg, default=None, help="GPUs per replica (default 8)")
    p.add_argument("--tp", type=gpu_count_arg, default=None, help="attention tensor parallel size")
    p.add_argument("--ep", type=gpu_count_arg, default=None, help="expert parallel size")
    p.add_argument("--mtp", action="store_true", help="MTP speculative decoding on")
    p.add_argument(
        "--deployment", default=None, help="YAML file with Deployment fields (flags override it)"
    )
    add_kv_dtype(p)


def add_calibration_flags(
    p: argparse.ArgumentParser, engine_terms: bool = True, several: bool = False
) -> None:
    """--gpu-profile (kernel curves measured on the user's GPU) and, for commands that plan
    one deployment, --engine-terms (its engine's memory terms and step correction).
    ``several``: --gpu-profile may be given once per GPU (commands with several fleets)."""
    p.add_argument(
        "--gpu-profile",
        default=None,
        metavar="FILE",
        action="append" if several else "store",
        help="calibrated GPU profile (kvplan calibrate --gpu NAME --out FILE): its measured "
        "kernel curves are used on that GPU before the engine's fitted ones"
        + ("; once per GPU" if several else ""),
    )
    if engine_terms:
        p.add_argument(
            "--engine-terms",
            default=None,
            metavar="FILE",
            help="engine terms of this deployment (kvplan calibrate --from-log / --from-bench): "
            "memory fraction, reserve, activation peak, step-time correction; flags win",
        )


def gpu_calibration(path: str, gpus: Sequence[str]) -> GpuCalibration:
    """The curves of a calibrated profile, for a deployment on one of ``gpus``."""
    profile = load_profile(path)
    names = [load_gpu(g).name for g in gpus]
    if names and profile.gpu not in names:
        raise ConfigError(
            f"the calibrated profile is of {profile.gpu}, not of " + ", ".join(sorted(set(names))),
            field="--gpu-profile",
            value=path,
            expected=f"--gpu {profile.gpu}, or a profile calibrated on the GPU asked for",
        )
    return profile.calibration()


def calibration_summary(d: Deployment) -> dict[str, str | None]:
    """Which calibration a command's numbers used (its JSON's ``calibration``)."""
    return {
        "gpu_profile": d.gpu_calibration.label if d.gpu_calibration else None,
        "engine_terms": d.terms_source,
    }


def print_calibration(summary: dict[str, str | None]) -> None:
    """The lines a table output adds for ``calibration_summary``."""
    for key, label in (("gpu_profile", "operator curves"), ("engine_terms", "engine terms")):
        if summary[key]:
            console.print(f"{label}: {escape(str(summary[key]))}")


def engine_terms(path: str, gpus: Sequence[str]) -> dict[str, Any]:
    """The deployment fields of an engine-terms file, for a deployment on ``gpus``: the
    terms' reserve was solved for one GPU profile's memory, so another GPU is refused."""
    terms = load_terms(path)
    names = sorted({load_gpu(g).name for g in gpus})
    if names and names != [terms.gpu]:
        raise ConfigError(
            f"the engine terms were solved for {terms.gpu}, not for " + ", ".join(names),
            field="--engine-terms",
            value=path,
            expected=f"--gpu {terms.gpu}, or terms imported with --gpu of this deployment",
        )
    return dict(terms.deployment)


def calibration_updates(args: argparse.Namespace) -> dict[str, Any]:
    """Deployment fields from --gpu-profile and --engine-terms (none when not given)."""
    updates: dict[str, Any] = {}
    path = getattr(args, "gpu_profile", None)
    if path:
        gpus = getattr(args, "gpu", None)
        names = [gpus] if isinstance(gpus, str) else list(gpus or [])
        updates["gpu_calibration"] = gpu_calibration(path, names)
    terms_path = getattr(args, "engine_terms", None)
    if terms_path:
        gpus = getattr(args, "gpu", None)
        updates.update(engine_terms(terms_path, [gpus] if isinstance(gpus, str) else gpus or []))
    return updates


def with_calibration(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """A scenario with --gpu-profile's curves in every deployment it runs (the curves
    apply on their own GPU only) and --engine-terms in its deployment."""
    path = getattr(args, "gpu_profile", None)
    terms_path = getattr(args, "engine_terms", None)
    if not path and not terms_path:
        return scenario
    pools = scenario.disaggregation
    gpus = [scenario.gpu] + (
        [p.gpu or scenario.gpu for p in (pools.prefill, pools.decode)] if pools else []
    )
    calibration = gpu_calibration(path, gpus) if path else None
    if terms_path:
        if pools is not None:
            raise ConfigError(
                "engine terms describe one deployment; a disaggregated scenario has two: put "
                "the terms' fields in each pool's deployment",
                field="--engine-terms",
                value=terms_path,
            )
        given = scenario.deployment.model_dump(exclude_unset=True)
        terms = engine_terms(terms_path, [scenario.gpu])
        deployment = validate(Deployment, {**given, **terms}, "scenario deployment")
        scenario = scenario.model_copy(update={"deployment": deployment})
    # Scenario.with_gpu_calibration touches only the deployments the scenario runs (a
    # disaggregated one keeps its top-level deployment unset, so it still validates).
    return scenario if calibration is None else scenario.with_gpu_calibration(calibration)


def deployment_from_args(args: argparse.Namespace) -> Deployment:
    base: dict[str, Any] = {}
    if args.deployment:
        raw = read_document(args.deployment)
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(
                "a deployment file must be a mapping of Deployment fields", where=args.deployment
            )
        base = raw or {}
    base = {**base, **calibration_updates(args)}
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


# Internal field names a KvplanError may carry -> (the flag a user typed, its attribute on
# the parsed arguments, whether the flag has the field's units). Used to name the flag.
FLAG_FOR_FIELD: dict[str, tuple[str, str, bool]] = {
    "context": ("--context", "context", True),
    "context_tokens": ("--context", "context", True),
    "batch": ("--batch", "batch", True),
    "output_tokens": ("--output-tokens", "output_tokens", True),
    "input_tokens": ("--input-tokens", "input_tokens", True),
    "mean_input_tokens": ("--input-tokens", "input_tokens", True),
    "requests_per_s": ("--rate", "rate", True),
    "tpot_slo_s": ("--tpot-slo-ms", "tpot_slo_ms", False),
    "ttft_slo_s": ("--ttft-slo-s", "ttft_slo_s", True),
    "prefix_hit_ratio": ("--prefix-hit-ratio", "prefix_hit_ratio", True),
    "gpus_per_replica": ("--gpus", "gpus", True),
    "tensor_parallel": ("--tp", "tp", True),
    "expert_parallel": ("--ep", "ep", True),
    "engine": ("--engine", "engine", True),
    "kv_dtype": ("--kv-dtype", "kv_dtype", True),
    "mtp": ("--mtp", "mtp", True),
    "gpu": ("--gpu", "gpu", True),
    "model": ("--model", "model", True),
    "min_context": ("--min-context", "min_context", True),
    "seed": ("--seed", "seed", True),
    "block_tokens": ("--block-size", "block_size", True),
}


def flag_error(err: KvplanError, args: argparse.Namespace) -> KvplanError:
    """The error naming the command-line flag the user typed, when the value came from a
    flag (not from a file); otherwise the error as it is."""
    if err.where not in (None, "command line") or err.field not in FLAG_FOR_FIELD:
        return err
    flag, attribute, same_units = FLAG_FOR_FIELD[err.field]
    typed = getattr(args, attribute, None)
    if typed is None or typed is False:
        return err
    value = err.value if isinstance(typed, list) else typed
    return err.renamed(flag, value, keep_expected=same_units)
