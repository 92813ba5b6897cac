"""Least squares in log space with a held-out split, and the quality record kvplan stores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

HOLD_OUT_SHARE = 0.2
SEED = 7


@dataclass(frozen=True)
class Fit:
    params: np.ndarray
    points: int
    held_out: int
    median_rel_err: float
    p90_rel_err: float

    def quality(self, table: str, selection: str) -> dict[str, object]:
        return {
            "table": table,
            "selection": selection,
            "points": self.points,
            "held_out_points": self.held_out,
            "median_rel_err": round(self.median_rel_err, 4),
            "p90_rel_err": round(self.p90_rel_err, 4),
        }


def fit(
    model: Callable[[np.ndarray, np.ndarray], np.ndarray],
    measured_s: np.ndarray,
    x0: list[float],
    lower: list[float],
    upper: list[float],
    seed: int = SEED,
) -> Fit:
    """Fit ``model(params, row_mask) -> predicted seconds`` to ``measured_s`` on 80% of the
    rows (log error: relative, so small and large operators count alike) and report the
    error on the other 20%."""
    n = len(measured_s)
    hold = np.random.default_rng(seed).random(n) < HOLD_OUT_SHARE
    if hold.sum() == 0 or hold.sum() == n:
        hold = np.zeros(n, dtype=bool)
        hold[:: max(n // 5, 1)] = True
    train = ~hold
    log_t = np.log(measured_s)

    def residual(p: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(model(p, train), 1e-15)) - log_t[train]

    result = least_squares(residual, x0, bounds=(lower, upper))
    err = np.abs(model(result.x, hold) / measured_s[hold] - 1.0)
    return Fit(
        result.x,
        int(train.sum()),
        int(hold.sum()),
        float(np.median(err)),
        float(np.percentile(err, 90)),
    )
