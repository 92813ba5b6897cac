"""Fitting kvplan's efficiency curves to measured operator times, with a held-out check.

Shared by ``kvplan calibrate`` (the user's own microbenchmarks) and ``benchmarks/fit``
(NVIDIA AIConfigurator's measured tables), so a fitted parameter means the same thing
whichever data it came from: the model functions are the curve forms of
``planner.plan.efficiency.curves``, fed the work (FLOPs, bytes, sequences) kvplan's own
model counts for the measured shape.

Each curve is fitted by least squares on the log of the time (relative error, so small
and large operators count alike) on a seeded share of the points, and its median and
90th-percentile relative error are reported on the points it did not see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from planner.dtypes import storage_format
from planner.plan.efficiency.curves import gemm_op, op_seconds
from planner.plan.efficiency.schema import GemmCurve

FloatArray = NDArray[np.float64]
HOLD_OUT_SHARE = 0.2
SEED = 7


@dataclass(frozen=True)
class Fit:
    params: FloatArray
    points: int
    held_out: int
    median_rel_err: float
    p90_rel_err: float
    folds: int | None = None  # cross-validated over this many folds (else a held-out share)
    # |predicted / measured - 1| of every point the error is judged on: the held-out points,
    # or with ``folds`` every point, each predicted by a fit that did not see its fold.
    held_out_rel_err: tuple[float, ...] = ()

    def quality(self, table: str, selection: str) -> dict[str, object]:
        """The ``fit`` record of a curve (``planner.plan.efficiency.schema.FitQuality``)."""
        if self.folds:
            selection += (
                f"; error by {self.folds}-fold cross-validation (every point predicted by a "
                "fit that did not see it), parameters fitted on all points"
            )
        return {
            "table": table,
            "selection": selection,
            "points": self.points,
            "held_out_points": self.held_out,
            "median_rel_err": round(self.median_rel_err, 4),
            "p90_rel_err": round(self.p90_rel_err, 4),
        }


def held_out_mask(n: int, seed: int = SEED, share: float = HOLD_OUT_SHARE) -> NDArray[np.bool_]:
    """Which of n points to keep out of the fit: a seeded random ``share`` of them, or
    every fifth point where the draw kept none or all."""
    hold = np.random.default_rng(seed).random(n) < share
    if n > 1 and (hold.sum() == 0 or hold.sum() == n):
        hold = np.zeros(n, dtype=bool)
        hold[:: max(n // 5, 2)] = True
    return hold


def fit(
    model: Callable[[FloatArray, NDArray[np.bool_]], FloatArray],
    measured_s: FloatArray,
    x0: list[float],
    lower: list[float],
    upper: list[float],
    seed: int = SEED,
    folds: int | None = None,
) -> Fit:
    """Fit ``model(params, row_mask) -> predicted seconds`` to ``measured_s``.

    Default: on the rows not held out (``held_out_mask``), with the relative error
    reported on the held-out rows. With ``folds`` (for small sets, where a fifth of the
    points is too few to judge): the parameters are fitted on every row and the error is
    cross-validated: each row is predicted by a fit that did not see its fold."""
    n = len(measured_s)
    log_t = np.log(measured_s)

    def solve(rows: NDArray[np.bool_]) -> FloatArray:
        def residual(p: FloatArray) -> FloatArray:
            return np.asarray(np.log(np.maximum(model(p, rows), 1e-15)) - log_t[rows])

        return np.asarray(least_squares(residual, x0, bounds=(lower, upper)).x, np.float64)

    if folds is not None and n >= 2 * folds:
        fold_of = np.random.default_rng(seed).permutation(n) % folds
        err = np.empty(n)
        for f in range(folds):
            test = fold_of == f
            err[test] = np.abs(model(solve(~test), test) / measured_s[test] - 1.0)
        everything = np.ones(n, dtype=bool)
        return Fit(
            solve(everything),
            n,
            n,
            float(np.median(err)),
            float(np.percentile(err, 90)),
            folds,
            tuple(float(e) for e in err),
        )
    hold = held_out_mask(n, seed)
    train = ~hold
    params = solve(train)
    check = hold if hold.any() else train
    err = np.abs(model(params, check) / measured_s[check] - 1.0)
    return Fit(
        params,
        int(train.sum()),
        int(hold.sum()),
        float(np.median(err)),
        float(np.percentile(err, 90)),
        held_out_rel_err=tuple(float(e) for e in err) if hold.any() else (),
    )


# --------------------------------------------------------------------------- GEMM
GEMM_X0 = [5.0, 0.8, 0.8, 64.0, 64.0, 64.0]
GEMM_LOWER = [0.0, 0.02, 0.02, 0.0, 0.0, 0.0]
GEMM_UPPER = [500.0, 1.0, 1.0, 1e5, 1e5, 1e5]


def gemm_bytes(m: FloatArray, n: FloatArray, k: FloatArray, fmt: str) -> FloatArray:
    """Weights (scales included) plus BF16 activations in and out, as kvplan counts them."""
    f = storage_format(fmt)
    weight = {(kk, nn): f.tensor_bytes(int(kk), int(nn)) for kk, nn in set(zip(k, n, strict=True))}
    w = np.array([weight[(kk, nn)] for kk, nn in zip(k, n, strict=True)], dtype=np.float64)
    return np.asarray(w + m * (k + n) * 2, dtype=np.float64)


def gemm_curve(p: FloatArray) -> GemmCurve:
    """GEMM parameters in fit order (latency, compute and bandwidth efficiency, half
    points of m, n, k) as a curve; the same order as ``GEMM_X0``."""
    return GemmCurve.model_construct(
        latency_us=float(p[0]),
        compute_efficiency=float(p[1]),
        bandwidth_efficiency=float(p[2]),
        half_m=float(p[3]),
        half_n=float(p[4]),
        half_k=float(p[5]),
        fit=None,
    )


def gemm_seconds(
    p: FloatArray,
    m: FloatArray,
    n: FloatArray,
    k: FloatArray,
    nbytes: FloatArray,
    peak_flop_per_s: float,
    bandwidth_bytes_per_s: float,
) -> FloatArray:
    """The GEMM curve's time for parameters ``p`` (see ``gemm_curve``)."""
    t = gemm_op(
        gemm_curve(p), peak_flop_per_s, bandwidth_bytes_per_s, m, n, k, 2 * m * n * k, nbytes
    )
    return op_seconds(t)


def gemm_entry(result: Fit, table: str, selection: str) -> dict[str, object]:
    """A fitted GEMM curve as the fit files write it."""
    p = result.params
    return {
        "latency_us": round(float(p[0]), 3),
        "compute_efficiency": round(float(p[1]), 4),
        "bandwidth_efficiency": round(float(p[2]), 4),
        "half_m": round(float(p[3]), 2),
        "half_n": round(float(p[4]), 2),
        "half_k": round(float(p[5]), 2),
        "fit": result.quality(table, selection),
    }
