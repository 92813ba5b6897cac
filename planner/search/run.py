"""Run a deployment search: every layout of the space, sized by the planner, priced.

For each model x GPU x engine, every layout (``planner.search.layouts``) is evaluated once
(``planner.plan.throughput.replica_times``: its decode step at every batch up to its
sequence cap, in one vectorised pass, and the prefill of one prompt). From those:
- aggregated: the replica count for the traffic (``size_with``, the same function as
  ``kvplan plan --rate``), priced;
- disaggregated: every (prefill layout, decode layout) pair of a model, its prefill pool
  and decode pool sized by ``planner.plan.disagg``; pairs are sized in order of a lower
  bound on their cost (prefill pool at its utilisation limit + decode pool), stopping once
  the bound exceeds the top-N found;
- the Pareto front of output tokens/s per GPU against tokens/s per user per model and GPU:
  every batch of every aggregated layout at the load it carries when exactly that batch is
  decoding (``ReplicaTimes.load_at_batches``: the sizing's fixed point, with the plan
  layer's prefill stall and TTFT), and every batch of every decode layout fed by the
  model's cheapest prefill pool per request (disaggregated).
A "deployment" counted in ``evaluated`` is one layout at one batch size (max_num_seqs):
every batch up to the first that misses the TPOT SLO (sizing), and the Pareto grid (every
batch to 64, then 128 log-spaced up to the sequence cap), or one disaggregated pair sized.
The search adds no step-time formula of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from planner.errors import KvplanError
from planner.hardware import load_gpu
from planner.model.resolve import resolve_model
from planner.plan.cost import HOURS_PER_MONTH, SECONDS_PER_MONTH
from planner.plan.deployed import Deployed
from planner.plan.disagg import (
    DisaggSizing,
    decode_pool_rate,
    prefill_pool_min_replicas,
    size_disaggregated,
)
from planner.plan.memory import InsufficientMemoryError, memory_budget
from planner.plan.throughput import (
    PREFILL_UTILISATION_LIMIT,
    ReplicaSizing,
    ReplicaTimes,
    decode_times_s,
    replica_times,
    size_with,
    ttft_at,
)
from planner.search.layouts import Layout, layouts_for
from planner.search.pareto import pareto_mask
from planner.search.spec import SearchSpec
from planner.units import MILLION

Mode = Literal["aggregated", "disaggregated"]
PARETO_DENSE_BATCHES = 64
PARETO_GRID_POINTS = 128


@dataclass
class Evaluated:
    """One layout with its times for the traffic, or why it cannot serve it."""

    layout: Layout
    times: ReplicaTimes | None
    reason: str = ""
    error: KvplanError | None = None

    @property
    def usd_per_gpu_hour(self) -> float:
        return load_gpu(self.layout.gpu).price_usd_per_hour


@dataclass(frozen=True)
class Pool:
    """One pool of identical replicas in a candidate deployment."""

    role: Literal["replica", "prefill", "decode"]
    layout: Layout
    deployed: Deployed
    replicas: int
    decode_batch: int | None  # mean decoding sequences per replica (None: prefill pool)
    utilisation: float | None  # prefill share of its time

    @property
    def gpus_total(self) -> int:
        return self.replicas * self.deployed.gpus

    def usd_per_month(self, which: str = "default") -> float:
        price = self.deployed.gpu.profile.price
        per_hour = {
            "default": price.default_usd_per_gpu_hour,
            "low": price.low_usd_per_gpu_hour,
            "high": price.high_usd_per_gpu_hour,
        }[which]
        return self.gpus_total * per_hour * HOURS_PER_MONTH


@dataclass(frozen=True)
class Candidate:
    """A priced deployment that meets the SLOs at the traffic."""

    mode: Mode
    model: str
    pools: tuple[Pool, ...]
    ttft_s: float  # mean
    ttft_at_percentile_s: float
    tpot_s: float
    kv_transfer_s: float = 0.0

    @property
    def gpus_total(self) -> int:
        return sum(p.gpus_total for p in self.pools)

    @property
    def usd_per_month(self) -> float:
        return sum(p.usd_per_month() for p in self.pools)

    @property
    def label(self) -> str:
        if self.mode == "aggregated":
            pool = self.pools[0]
            return f"{pool.replicas} x [{pool.layout.label}]"
        prefill, decode = self.pools
        return (
            f"prefill {prefill.replicas} x [{prefill.layout.label}] + "
            f"decode {decode.replicas} x [{decode.layout.label}]"
        )

    def sort_key(self) -> tuple[float, int, float, float]:
        """Cheapest first; among equal costs fewer GPUs, then the faster first token and
        output."""
        return (
            round(self.usd_per_month, 6),
            self.gpus_total,
            self.ttft_at_percentile_s,
            self.tpot_s,
        )


@dataclass(frozen=True)
class ParetoPoint:
    model: str
    gpu: str
    mode: Mode
    label: str
    batch: int
    tokens_per_s_per_user: float
    tokens_per_s_per_gpu: float
    ttft_s: float  # mean, at that load


@dataclass
class SearchResult:
    spec: SearchSpec
    best: Candidate
    top: list[Candidate]
    pareto: list[ParetoPoint]
    layouts: int
    deployments: int
    elapsed_s: float
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> layouts
    best_by_mode: dict[str, Candidate] = field(default_factory=dict)


# --------------------------------------------------------------------------- evaluation
def _reason(err: KvplanError) -> str:
    if isinstance(err, InsufficientMemoryError):
        return "weights do not fit"
    return err.args[0] if err.args else type(err).__name__


def evaluate_layout(layout: Layout, spec: SearchSpec) -> Evaluated:
    try:
        deployed = Deployed.build(
            resolve_model(layout.model_source), load_gpu(layout.gpu), layout.deployment
        )
        times = replica_times(
            deployed,
            spec.input_tokens,
            spec.output_tokens,
            spec.prefix_hit_ratio,
            budget=memory_budget(deployed, suggest=False),  # hints only for the error
            tpot_limit_s=spec.tpot_slo_s,
        )
    except KvplanError as err:
        return Evaluated(layout, None, _reason(err), err)
    return Evaluated(layout, times)


def _layouts(spec: SearchSpec) -> Iterator[Layout]:
    for model_name in spec.models:
        model = resolve_model(model_name)
        request_tokens = spec.input_tokens + spec.output_tokens
        if request_tokens > model.max_context_tokens:
            # Said here, before any layout: otherwise every layout fails on memory and the
            # error would blame the GPUs.
            raise KvplanError(
                f"a request of {spec.input_tokens:,} prompt + {spec.output_tokens:,} output "
                f"tokens is beyond {model.name}'s maximum context of "
                f"{model.max_context_tokens:,} tokens",
                field="input_tokens",
                value=spec.input_tokens,
                expected=f"at most {max(model.max_context_tokens - spec.output_tokens, 0):,} "
                f"with {spec.output_tokens:,} output tokens",
            )
        for gpu in spec.gpus:
            load_gpu(gpu)  # unknown names fail here, once
            for engine in spec.engines:
                yield from layouts_for(model, gpu, engine, spec, model_name)


# --------------------------------------------------------------------------- candidates
def _aggregated(ev: Evaluated, spec: SearchSpec) -> Candidate | str:
    assert ev.times is not None
    try:
        sizing: ReplicaSizing = size_with(
            ev.times, spec.requests_per_s, spec.tpot_slo_s, spec.ttft_slo_s, spec.ttft_percentile
        )
    except KvplanError as err:
        return _reason(err)
    pool = Pool(
        "replica",
        ev.layout,
        ev.times.deployed,
        sizing.replicas,
        sizing.batch,
        sizing.prefill_utilisation,
    )
    return Candidate(
        "aggregated",
        ev.layout.model,
        (pool,),
        sizing.ttft_s,
        sizing.ttft_at_percentile_s,
        sizing.tpot_s,
    )


def _disaggregated(prefill: Evaluated, decode: Evaluated, spec: SearchSpec) -> Candidate | str:
    assert prefill.times is not None and decode.times is not None
    try:
        sizing: DisaggSizing = size_disaggregated(
            prefill.times,
            decode.times,
            spec.requests_per_s,
            spec.tpot_slo_s,
            spec.ttft_slo_s,
            spec.ttft_percentile,
        )
    except KvplanError as err:
        return _reason(err)
    pools = (
        Pool(
            "prefill",
            prefill.layout,
            prefill.times.deployed,
            sizing.prefill.replicas,
            None,
            sizing.prefill.utilisation,
        ),
        Pool(
            "decode",
            decode.layout,
            decode.times.deployed,
            sizing.decode.replicas,
            sizing.decode.batch,
            0.0,
        ),
    )
    return Candidate(
        "disaggregated",
        prefill.layout.model,
        pools,
        sizing.prefill.ttft_s,
        sizing.prefill.ttft_at_percentile_s,
        sizing.decode.tpot_s,
        sizing.transfer_s,
    )


def _disagg_candidates(
    evaluated: list[Evaluated], spec: SearchSpec, top: int
) -> tuple[list[Candidate], int, dict[str, int]]:
    """Cheapest disaggregated pairs per model, sized in order of their cost lower bound."""
    found: list[Candidate] = []
    reasons: dict[str, int] = {}
    sized = 0
    by_model: dict[str, list[Evaluated]] = {}
    for ev in evaluated:
        if ev.times is not None:
            by_model.setdefault(ev.layout.model, []).append(ev)
    for group in by_model.values():
        prefills = []
        for ev in group:
            assert ev.times is not None
            if ev.layout.deployment.mtp:
                continue  # MTP drafts only in decode
            if spec.ttft_slo_s is not None and ev.times.prefill_s > spec.ttft_slo_s:
                continue
            low = prefill_pool_min_replicas(ev.times, spec.requests_per_s)
            prefills.append((low * ev.times.deployed.gpus * ev.usd_per_gpu_hour, ev))
        decodes = []
        for ev in group:
            assert ev.times is not None
            try:
                rate = decode_pool_rate(ev.times, spec.tpot_slo_s)
            except KvplanError:
                continue
            if rate <= 0:
                continue
            replicas = math.ceil(spec.requests_per_s / rate - 1e-9)
            decodes.append((replicas * ev.times.deployed.gpus * ev.usd_per_gpu_hour, ev))
        pairs = sorted(
            (
                (p_cost + d_cost, i, j)
                for i, (p_cost, _) in enumerate(prefills)
                for j, (d_cost, _) in enumerate(decodes)
            ),
        )
        local: list[Candidate] = []
        for bound, i, j in pairs:
            if len(local) >= top:
                worst = sorted(c.usd_per_month for c in local)[top - 1]
                if bound * HOURS_PER_MONTH > worst * (1 + 1e-9):
                    break
            sized += 1
            result = _disaggregated(prefills[i][1], decodes[j][1], spec)
            if isinstance(result, str):
                reasons[result] = reasons.get(result, 0) + 1
            else:
                local.append(result)
        found.extend(local)
    return found, sized, reasons


# --------------------------------------------------------------------------- Pareto
def pareto_batches(cap: int) -> np.ndarray:
    """Batches a layout's Pareto points are drawn at: every batch up to 64, then
    PARETO_GRID_POINTS log-spaced up to the sequence cap."""
    small = np.arange(1, min(cap, PARETO_DENSE_BATCHES) + 1)
    if cap <= PARETO_DENSE_BATCHES:
        return small
    grid = np.round(np.geomspace(PARETO_DENSE_BATCHES, cap, PARETO_GRID_POINTS)).astype(int)
    return np.unique(np.concatenate([small, grid]))


def _grid_steps(times: ReplicaTimes) -> tuple[np.ndarray, np.ndarray]:
    """(batches, decode step seconds) on the layout's Pareto grid: from the sizing curve
    where it reaches, the rest computed."""
    b = pareto_batches(times.curve.cap)
    known = len(times.curve.step_s)
    steps = np.empty(len(b), dtype=np.float64)
    inside = b <= known
    steps[inside] = times.curve.step_s[b[inside] - 1]
    if not np.all(inside):
        steps[~inside] = decode_times_s(times.deployed, b[~inside], times.curve_context_tokens)
    return b.astype(np.float64), steps


def _aggregated_points(ev: Evaluated, spec: SearchSpec) -> list[ParetoPoint]:
    """Every grid batch at the load where exactly it decodes, with the plan layer's TPOT
    (its prefill stall, DP groups in lockstep) and mean TTFT (``ReplicaTimes``)."""
    times = ev.times
    assert times is not None
    b, steps = _grid_steps(times)
    rate, tpot, service_s, utilisation = times.load_at_batches(b, steps)
    rho = rate * times.prefill_share_s
    ok = np.isfinite(rate) & (rho <= PREFILL_UTILISATION_LIMIT)
    ttft = np.array(
        [ttft_at(float(service_s[i]), float(utilisation[i]), 1, None) for i in np.flatnonzero(ok)]
    )
    gpus = times.deployed.gpus
    return _points(ev, "aggregated", ev.layout.label, b[ok], tpot[ok], gpus, ttft)


def _points(
    ev: Evaluated,
    mode: Mode,
    label: str,
    batches: np.ndarray,
    tpot: np.ndarray,
    gpus_per_request_rate: np.ndarray | float,
    ttft: np.ndarray | float,
) -> list[ParetoPoint]:
    per_user = 1.0 / tpot
    per_gpu = batches / tpot / gpus_per_request_rate
    mask = pareto_mask(per_user, per_gpu)
    ttft_a = np.broadcast_to(np.asarray(ttft, dtype=np.float64), per_user.shape)
    return [
        ParetoPoint(
            ev.layout.model,
            ev.layout.gpu,
            mode,
            label,
            int(batches[i]),
            float(per_user[i]),
            float(per_gpu[i]),
            float(ttft_a[i]),
        )
        for i in np.flatnonzero(mask)
    ]


def _disaggregated_points(
    ev: Evaluated, prefill_gpu_s_per_request: float, prefill_label: str, prefill_ttft_s: float
) -> list[ParetoPoint]:
    """Decode layout at every batch, fed by a prefill pool costing this many GPU-seconds
    per request: output tokens/s per GPU = output / (GPU-s per request of both pools)."""
    times = ev.times
    assert times is not None
    b, steps = _grid_steps(times)
    tpot = steps / times.curve.tokens_per_step
    rate = b / (times.output_tokens * tpot)  # requests/s per decode replica
    gpu_s = times.deployed.gpus / rate + prefill_gpu_s_per_request
    # per_gpu = batch / tpot / (GPUs per request/s x rate): pass the effective GPU count.
    effective_gpus = gpu_s * rate
    label = f"prefill [{prefill_label}] + decode [{ev.layout.label}]"
    return _points(ev, "disaggregated", label, b, tpot, effective_gpus, prefill_ttft_s)


def _pareto(evaluated: list[Evaluated], spec: SearchSpec) -> tuple[list[ParetoPoint], int]:
    points: list[ParetoPoint] = []
    counted = 0
    prefill_best: dict[tuple[str, str], tuple[float, str, float]] = {}
    if True in spec.disaggregated:
        for ev in evaluated:
            if ev.times is None or ev.layout.deployment.mtp:
                continue
            gpu_s = ev.times.deployed.gpus * ev.times.prefill_share_s / PREFILL_UTILISATION_LIMIT
            key = (ev.layout.model, ev.layout.gpu)
            if key not in prefill_best or gpu_s < prefill_best[key][0]:
                # TTFT of the pool at its utilisation limit, its DP engines behind one
                # router (as planner.plan.disagg sizes a prefill pool).
                rate = PREFILL_UTILISATION_LIMIT / ev.times.prefill_share_s
                ttft_s = ev.times.ttft_s(rate, ev.times.deployed.attention_dp, None)
                prefill_best[key] = (gpu_s, ev.layout.label, ttft_s)
    for ev in evaluated:
        if ev.times is None:
            continue
        grid = len(pareto_batches(ev.times.curve.cap))
        if False in spec.disaggregated:
            points.extend(_aggregated_points(ev, spec))
            counted += grid
        best = prefill_best.get((ev.layout.model, ev.layout.gpu))
        if best is not None:
            points.extend(_disaggregated_points(ev, best[0], best[1], best[2]))
            counted += grid
    # Keep each (model, GPU)'s front only.
    out: list[ParetoPoint] = []
    keys = sorted({(p.model, p.gpu) for p in points})
    for model, gpu in keys:
        group = [p for p in points if p.model == model and p.gpu == gpu]
        mask = pareto_mask(
            [p.tokens_per_s_per_user for p in group], [p.tokens_per_s_per_gpu for p in group]
        )
        front = [p for p, keep in zip(group, mask, strict=True) if keep]
        out.extend(sorted(front, key=lambda p: p.tokens_per_s_per_user))
    return out, counted


# --------------------------------------------------------------------------- search
def _with_hints(ev: Evaluated) -> str:
    """The memory error of a layout, with the GPU count or dtype that would fit."""
    layout = ev.layout
    deployed = Deployed.build(
        resolve_model(layout.model_source), load_gpu(layout.gpu), layout.deployment
    )
    try:
        memory_budget(deployed, suggest=True)
    except InsufficientMemoryError as err:
        return str(err)
    return str(ev.error)


def no_candidate_error(
    spec: SearchSpec, evaluated: list[Evaluated], reasons: dict[str, int]
) -> KvplanError:
    """One error saying why nothing in the space serves the traffic, and what would."""
    if not evaluated:
        return KvplanError(
            "the search space has no valid layout (GPU counts, TP sizes and the models' "
            "heads and experts do not combine)",
            field="gpus_per_replica",
            value=list(spec.gpus_per_replica),
        )
    fitting = [ev for ev in evaluated if ev.times is not None]
    if not fitting:
        memory = [ev for ev in evaluated if isinstance(ev.error, InsufficientMemoryError)]
        if memory:
            largest = max(memory, key=lambda ev: ev.layout.deployment.gpus_per_replica)
            return KvplanError(
                f"no GPU in the search space fits the model; the largest layout tried: "
                f"{_with_hints(largest)}",
                field="gpus_per_replica",
                value=list(spec.gpus_per_replica),
                expected="larger replicas, GPUs with more memory, or smaller weight formats",
            )
        first = evaluated[0]
        return KvplanError(
            f"no layout can serve the traffic: {first.reason}",
            field="input_tokens",
            value=spec.input_tokens,
        )
    fastest = min(fitting, key=lambda ev: ev.times.best_tpot_s if ev.times else math.inf)
    assert fastest.times is not None
    if fastest.times.best_tpot_s > spec.tpot_slo_s:
        return KvplanError(
            f"TPOT SLO cannot be met even at batch 1 by any layout: the fastest is "
            f"{fastest.times.best_tpot_s * 1e3:.1f} ms ({fastest.layout.label})",
            field="tpot_slo_s",
            value=spec.tpot_slo_s,
            expected=f">= {fastest.times.best_tpot_s:.4f} s, or faster GPUs",
        )
    quickest = min(fitting, key=lambda ev: ev.times.prefill_s if ev.times else math.inf)
    assert quickest.times is not None
    if spec.ttft_slo_s is not None and quickest.times.prefill_s > spec.ttft_slo_s:
        return KvplanError(
            f"TTFT SLO cannot be met by any layout: the fastest prefill of one prompt takes "
            f"{quickest.times.prefill_s:.3f} s ({quickest.layout.label})",
            field="ttft_slo_s",
            value=spec.ttft_slo_s,
            expected=f">= {quickest.times.prefill_s:.3f} s, a higher prefix hit ratio, or "
            "faster GPUs",
        )
    summary = "; ".join(f"{r} ({n} layouts)" for r, n in sorted(reasons.items()))
    return KvplanError(
        f"no deployment meets the SLOs at this rate: {summary}",
        field="requests_per_s",
        value=spec.requests_per_s,
    )


def run_search(spec: SearchSpec, progress: Callable[[float], None] | None = None) -> SearchResult:
    """The cheapest deployments meeting the SLOs, the top N, and the Pareto front."""
    start = time.perf_counter()
    layouts = list(_layouts(spec))
    evaluated = []
    for i, layout in enumerate(layouts):
        evaluated.append(evaluate_layout(layout, spec))
        if progress is not None:
            progress(0.8 * (i + 1) / max(len(layouts), 1))
    reasons: dict[str, int] = {}
    for ev in evaluated:
        if ev.times is None:
            reasons[ev.reason] = reasons.get(ev.reason, 0) + 1
    candidates: list[Candidate] = []
    deployments = 0
    for ev in evaluated:
        if ev.times is not None:
            deployments += len(ev.times.curve.step_s)  # every batch up to the TPOT limit
    if False in spec.disaggregated:
        for ev in evaluated:
            if ev.times is None:
                continue
            result = _aggregated(ev, spec)
            if isinstance(result, str):
                reasons[result] = reasons.get(result, 0) + 1
            else:
                candidates.append(result)
    if True in spec.disaggregated:
        disagg, sized, disagg_reasons = _disagg_candidates(evaluated, spec, spec.top)
        candidates.extend(disagg)
        deployments += sized
        for r, n in disagg_reasons.items():
            reasons[f"{r} (disaggregated)"] = reasons.get(f"{r} (disaggregated)", 0) + n
    if progress is not None:
        progress(0.9)
    pareto, points = _pareto(evaluated, spec)
    deployments += points
    if not candidates:
        raise no_candidate_error(spec, evaluated, reasons)
    candidates.sort(key=Candidate.sort_key)
    best_by_mode: dict[str, Candidate] = {}
    for c in candidates:
        best_by_mode.setdefault(c.mode, c)
    if progress is not None:
        progress(1.0)
    return SearchResult(
        spec,
        candidates[0],
        candidates[: spec.top],
        pareto,
        len(layouts),
        deployments,
        time.perf_counter() - start,
        reasons,
        best_by_mode,
    )


# --------------------------------------------------------------------------- JSON
def pool_dict(pool: Pool) -> dict[str, Any]:
    d = pool.deployed.deployment
    return {
        "role": pool.role,
        "gpu": pool.layout.gpu,
        "engine": pool.layout.engine,
        "replicas": pool.replicas,
        "gpus_per_replica": d.gpus_per_replica,
        "gpus_total": pool.gpus_total,
        "tensor_parallel": d.tp,
        "attention_data_parallel": d.attention_dp,
        "expert_parallel": d.ep,
        "mtp": d.mtp,
        "mtp_acceptance_rate": d.mtp_acceptance_rate if d.mtp else None,
        "kv_dtype": d.kv_dtype,
        "max_num_seqs": d.max_num_seqs,
        "max_batched_tokens": d.max_batched_tokens,
        "gpu_memory_utilization": d.gpu_memory_utilization,
        "decode_batch": pool.decode_batch,
        "prefill_utilisation": pool.utilisation,
        "usd_per_month": pool.usd_per_month(),
        "label": pool.layout.label,
    }


def candidate_dict(c: Candidate, spec: SearchSpec) -> dict[str, Any]:
    requests_per_month = spec.requests_per_s * SECONDS_PER_MONTH
    output_per_month = requests_per_month * spec.output_tokens
    tokens_per_month = requests_per_month * (spec.input_tokens + spec.output_tokens)
    usd = c.usd_per_month
    output_tokens_per_s = spec.requests_per_s * spec.output_tokens
    return {
        "mode": c.mode,
        "model": c.model,
        "label": c.label,
        "gpus_total": c.gpus_total,
        "usd_per_month": usd,
        "usd_per_month_range": [
            sum(p.usd_per_month("low") for p in c.pools),
            sum(p.usd_per_month("high") for p in c.pools),
        ],
        "usd_per_million_tokens": usd / tokens_per_month * MILLION,
        "usd_per_million_output_tokens": usd / output_per_month * MILLION,
        "ttft_s": c.ttft_s,
        "ttft_at_percentile_s": c.ttft_at_percentile_s,
        "tpot_s": c.tpot_s,
        "kv_transfer_s": c.kv_transfer_s if c.mode == "disaggregated" else None,
        "output_tokens_per_s_per_gpu": output_tokens_per_s / c.gpus_total,
        "output_tokens_per_s_per_user": 1.0 / c.tpot_s,
        "pools": [pool_dict(p) for p in c.pools],
    }


def result_dict(result: SearchResult) -> dict[str, Any]:
    spec = result.spec
    return {
        "traffic": {
            "requests_per_s": spec.requests_per_s,
            "mean_input_tokens": spec.input_tokens,
            "mean_output_tokens": spec.output_tokens,
            "prefix_hit_ratio": spec.prefix_hit_ratio,
        },
        "slo": {
            "tpot_s": spec.tpot_slo_s,
            "ttft_s": spec.ttft_slo_s,
            "ttft_percentile": spec.ttft_percentile,
        },
        "best": candidate_dict(result.best, spec),
        "best_by_mode": {m: candidate_dict(c, spec) for m, c in result.best_by_mode.items()},
        "top": [candidate_dict(c, spec) for c in result.top],
        "pareto": [
            {
                "model": p.model,
                "gpu": p.gpu,
                "mode": p.mode,
                "label": p.label,
                "batch": p.batch,
                "tokens_per_s_per_user": p.tokens_per_s_per_user,
                "tokens_per_s_per_gpu": p.tokens_per_s_per_gpu,
                "ttft_s": p.ttft_s,
            }
            for p in result.pareto
        ],
        "evaluated": {
            "layouts": result.layouts,
            "deployments": result.deployments,
            "elapsed_s": result.elapsed_s,
            "skipped": result.skipped,
        },
    }
