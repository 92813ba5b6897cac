"""Pareto front of throughput per GPU against speed per user (both higher is better)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def pareto_mask(per_user: ArrayLike, per_gpu: ArrayLike) -> NDArray[np.bool_]:
    """True for points no other point beats on both axes (ties kept once, the first).

    Sorted by per-user speed, fastest first (then by per-GPU throughput), a point is on the
    front when its per-GPU throughput exceeds every faster point's.
    """
    x = np.asarray(per_user, dtype=np.float64)
    y = np.asarray(per_gpu, dtype=np.float64)
    mask = np.zeros(x.shape, dtype=bool)
    if x.size == 0:
        return mask
    order = np.lexsort((-y, -x))
    ys = y[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1]))
    mask[order[ys > best_before]] = True
    return mask
