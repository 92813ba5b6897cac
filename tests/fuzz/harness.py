"""Run one fuzz input against kvplan and classify what happened.

Outcomes:
- ``ok``: exit 0 and every invariant of the output holds;
- ``user_error``: exit 2 with exactly one line on stderr (a KvplanError or argparse error),
  or a KvplanError from the Python API;
- ``traceback``: any other exception, or exit 1 (kvplan's internal-error line);
- ``hang``: the example ran past its deadline;
- ``invariant``: exit 0 with an output that breaks an invariant, or a user error that is
  not one line.

Invariants of outputs (JSON): every number finite and >= 0; plan memory parts sum to the
total; simulate requests conserved (arrived = finished + rejected + in flight),
percentiles ordered (p50 <= p90 <= p99), goodput, hit ratios and KV utilisation in [0, 1];
frontier concurrency non-increasing in context; active params <= total params;
migration requests conserved, hit ratios and SLO attainment in [0, 1], only savings and
extra costs signed.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.cli import main
from planner.errors import KvplanError

OK = "ok"
USER_ERROR = "user_error"
TRACEBACK = "traceback"
HANG = "hang"
INVARIANT = "invariant"
OUTCOMES = (OK, USER_ERROR, TRACEBACK, HANG, INVARIANT)
REL_TOL = 1e-9


class Hang(BaseException):
    """Raised by the deadline alarm inside a running example."""


@dataclass
class Result:
    outcome: str
    detail: str = ""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Hang in this (main) thread after ``seconds`` of wall time."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for one example (e.g. KVPLAN_HARDWARE_DIR)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# --------------------------------------------------------------------------- invariants
class InvariantError(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantError(message)


def walk_numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_numbers(item, f"{path}[{i}]")


def check_numbers(data: Any) -> None:
    for path, number in walk_numbers(data):
        check(math.isfinite(number), f"{path} = {number} is not finite")
        check(number >= 0, f"{path} = {number} is negative")


def check_ratio(value: Any, name: str) -> None:
    if value is not None:
        check(0 <= value <= 1 + REL_TOL, f"{name} = {value} outside [0, 1]")


def check_percentiles(row: dict[str, Any], name: str) -> None:
    values = [row.get(p) for p in ("p50", "p90", "p99")]
    present = [v for v in values if v is not None]
    if present:
        check(len(present) == 3, f"{name}: some percentiles missing {values}")
        check(
            present[0] <= present[1] * (1 + REL_TOL) and present[1] <= present[2] * (1 + REL_TOL),
            f"{name} percentiles out of order {values}",
        )


def check_plan(data: dict[str, Any]) -> None:
    mem = data["memory_per_gpu"]
    parts = sum(
        mem[k]
        for k in ("weights_bytes", "kv_bytes", "activation_bytes", "reserved_bytes", "free_bytes")
    )
    check(
        math.isclose(parts, mem["total_bytes"], rel_tol=REL_TOL),
        f"memory parts sum to {parts}, total {mem['total_bytes']}",
    )
    check_ratio(data.get("prefill", {}).get("prefix_hit_ratio"), "prefill.prefix_hit_ratio")
    traffic = data.get("traffic")
    if traffic:
        check_ratio(traffic.get("prefill_utilisation"), "traffic.prefill_utilisation")
        check(traffic["gpus_total"] == traffic["replicas"] * data["gpus_per_replica"], "gpus_total")


def check_simulation(data: dict[str, Any]) -> None:
    req = data["requests"]
    check(
        req["arrived"] == req["finished"] + req["rejected"] + req["in_flight"],
        f"requests not conserved: {req}",
    )
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        check_percentiles(data[key], key)
    check_ratio(data["goodput"], "goodput")
    check_ratio(data["prefix_hit_ratio"], "prefix_hit_ratio")
    for cls in data["per_class"]:
        check_ratio(cls["goodput"], f"per_class[{cls['name']}].goodput")
        check_percentiles(cls["ttft_s"], "per_class.ttft_s")
    series = data["time_series"]
    for value in series["kv_utilization"]:
        check_ratio(value, "time_series.kv_utilization")
    times = series["time_s"]
    check(all(a <= b for a, b in itertools.pairwise(times)), "time_s not sorted")
    check(sum(data["rejections_by_reason"].values()) == req["rejected"], "rejection reasons")


def check_frontier(data: dict[str, Any]) -> None:
    contexts = data["context_tokens"]
    check(contexts == sorted(contexts), "contexts not sorted")
    for curve in data["curves"]:
        counts = curve["max_concurrent_sequences"]
        check(len(counts) == len(contexts), "one count per context")
        check(
            all(a >= b for a, b in itertools.pairwise(counts)),
            f"{curve['model']} on {curve['gpu']}: concurrency rises with context {counts}",
        )


def check_model_summary(data: dict[str, Any]) -> None:
    rows = data["models"] if "models" in data else [data.get("summary", data)]
    for row in rows:
        check(
            row["active_params"] <= row["total_params"],
            f"active params {row['active_params']} > total {row['total_params']}",
        )


def check_cache_curve(data: dict[str, Any]) -> None:
    for point in data["points"]:
        check_ratio(point["hit_ratio"], "points.hit_ratio")
    check_ratio(data["hit_ratio_unbounded"], "hit_ratio_unbounded")


# Migration figures that are differences and may be negative (a target fleet that costs
# more saves a negative amount; hours before decommission can cost less than the source).
SIGNED_MIGRATION_FIELDS = ("monthly_saving_usd", "extra_usd")


def check_migration(data: dict[str, Any]) -> None:
    for path, number in walk_numbers(data):
        check(math.isfinite(number), f"{path} = {number} is not finite")
        if not path.endswith(SIGNED_MIGRATION_FIELDS):
            check(number >= 0, f"{path} = {number} is negative")
        leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if "hit_ratio" in leaf or leaf == "slo_attainment" or leaf.startswith("slo_attainment_"):
            check_ratio(number, path)
    req = data["stats"]["requests"]
    check(
        req["arrived"] == req["finished"] + req["rejected"] + req["in_flight"],
        f"requests not conserved: {req}",
    )
    for row in data["class_hours"]:
        check(
            row["arrived"] >= row["finished"] + row["rejected"],
            f"class hour {row['fleet']}/{row['class']}/{row['hour']}: more done than arrived",
        )
        check(row["slo_met"] <= row["slo_decided"], "slo_met > slo_decided")


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "plan": check_plan,
    "simulate": check_simulation,
    "frontier": check_frontier,
    "model": check_model_summary,
    "cache-curve": check_cache_curve,
    "migrate": check_migration,
}
SIGNED_OUTPUTS = {"migrate"}  # commands whose checker does the sign checks itself


# --------------------------------------------------------------------------- running
def run_cli(argv: Sequence[str], seconds: float = 30.0) -> Result:
    """Run ``kvplan argv`` in-process under a deadline and classify the outcome."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with deadline(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    except Hang as hang:
        return Result(HANG, str(hang))
    except SystemExit as done:  # main() returns its status; argparse exiting is a finding too
        code = done.code if isinstance(done.code, int) else 1
    except BaseException as exc:  # anything else escaping main() is a finding
        return Result(TRACEBACK, f"{type(exc).__name__}: {exc}"[:500])
    stderr = err.getvalue().strip()
    if code == 2:
        lines = stderr.splitlines()
        if len(lines) == 1 and lines[0].startswith("kvplan"):
            return Result(USER_ERROR, lines[0][:300])
        return Result(INVARIANT, f"user error not one line: {stderr[:500]!r}")
    if code != 0:
        return Result(TRACEBACK, stderr[:500])
    text = out.getvalue()
    if not _json_on_stdout(argv):
        return Result(OK)
    try:
        data = json.loads(text, parse_constant=lambda c: _not_json(c))
        if argv[0] not in SIGNED_OUTPUTS:
            check_numbers(data)
        checker = CHECKS.get(argv[0])
        if checker is not None:
            checker(data)
    except InvariantError as bad:
        return Result(INVARIANT, str(bad)[:500])
    except (ValueError, KeyError, TypeError) as bad:
        return Result(INVARIANT, f"output: {type(bad).__name__}: {bad}"[:500])
    return Result(OK)


def _json_on_stdout(argv: Sequence[str]) -> bool:
    """--json as a flag, or --json - (simulate, migrate: --json takes a file)."""
    if "--json" not in argv:
        return False
    if argv[0] in ("simulate", "migrate"):
        i = list(argv).index("--json")
        return i + 1 < len(argv) and argv[i + 1] == "-"
    return True


def _not_json(constant: str) -> Any:
    raise InvariantError(f"JSON output contains {constant}")


def run_api(call: Callable[[], Any], check_result: Callable[[Any], None], seconds: float) -> Result:
    """Run a Python API call under a deadline: a result passing ``check_result``, or a
    KvplanError, or a finding."""
    try:
        with deadline(seconds):
            value = call()
            check_result(value)
    except Hang as hang:
        return Result(HANG, str(hang))
    except InvariantError as bad:
        return Result(INVARIANT, str(bad)[:500])
    except KvplanError as err:
        text = str(err)
        if "\n" in text:
            return Result(INVARIANT, f"error not one line: {text[:300]!r}")
        return Result(USER_ERROR, text[:300])
    except BaseException as exc:
        return Result(TRACEBACK, f"{type(exc).__name__}: {exc}"[:500])
    return Result(OK)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh private folder for one example's files."""
    with tempfile.TemporaryDirectory(prefix="kvplan-fuzz-") as folder:
        yield Path(folder)
