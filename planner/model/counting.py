"""Closed-form sums over the query positions of a causal attention call.

A call processes ``q`` query tokens that end at context length ``L``: the i-th of them
(i = 1..q) sees ``v = L - q + i`` tokens (itself included). Compressed attention sees
``floor(v / m)`` complete compressed entries, a top-k or sliding-window attention at most
``cap`` of them. All functions are vectorised over numpy arrays of ``L``.

The sums grow as L^2 / 2 (2^79 at the 2^40-token cap), beyond int64 from L of about
2^32. They are returned as float64: computed exactly in int64 (or Python ints for one
context) while that is safe, in float64 beyond, so they never wrap.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
# Below this n, n * (n - 1) and every other product here fits in int64.
INT64_SAFE_N = 2**31


def _prefix_floor_sum(n: IntArray, ratio: int) -> IntArray:
    """sum_{v=0}^{n-1} floor(v / ratio)."""
    full, rest = np.divmod(n, ratio)
    return np.asarray(ratio * full * (full - 1) // 2 + rest * full, dtype=np.int64)


def _float_floor_sum(n: FloatArray, ratio: int) -> FloatArray:
    """_prefix_floor_sum in float64 (exact below 2^53, rounded beyond)."""
    full, rest = np.divmod(n, ratio)
    return np.asarray(ratio * full * (full - 1) / 2 + rest * full, dtype=np.float64)


def prefix_capped_sum(n: ArrayLike, ratio: int = 1, cap: int | None = None) -> FloatArray:
    """sum_{v=0}^{n-1} min(floor(v / ratio), cap); cap None means no cap."""
    n_arr = np.maximum(np.asarray(n, dtype=np.int64), 0)
    if n_arr.size and int(n_arr.max()) > INT64_SAFE_N:
        n_float = n_arr.astype(np.float64)
        if cap is None:
            return _float_floor_sum(n_float, ratio)
        threshold = float(ratio * cap)
        below_f = _float_floor_sum(np.minimum(n_float, threshold), ratio)
        return np.asarray(below_f + cap * np.maximum(n_float - threshold, 0.0), np.float64)
    if cap is None:
        return np.asarray(_prefix_floor_sum(n_arr, ratio), dtype=np.float64)
    # floor(v / ratio) < cap exactly for v < ratio * cap; beyond that every term is cap.
    threshold = ratio * cap
    below = _prefix_floor_sum(np.minimum(n_arr, threshold), ratio)
    return np.asarray(below + cap * np.maximum(n_arr - threshold, 0), dtype=np.float64)


def visible_sum(
    query_tokens: int, context_tokens: ArrayLike, ratio: int = 1, cap: int | None = None
) -> FloatArray:
    """sum over the q queries ending at context L of min(floor(v / ratio), cap).

    Decode (q = 1) gives min(floor(L / ratio), cap); a full prefill (q = L) gives the
    causal triangle.
    """
    context = np.asarray(context_tokens, dtype=np.int64)
    if context.ndim == 0:  # one context (a prefill chunk in the simulator): integer math
        scalar = np.float64(_visible_sum_scalar(int(query_tokens), int(context), ratio, cap))
        return cast(FloatArray, scalar)  # a numpy scalar behaves as a 0-d array here
    if query_tokens == 1:  # decode: the single query sees all L tokens (hot path)
        entries = context // ratio if ratio != 1 else context
        capped = entries if cap is None else np.minimum(entries, cap)
        return capped.astype(np.float64)
    first_visible = context - query_tokens + 1
    return prefix_capped_sum(context + 1, ratio, cap) - prefix_capped_sum(first_visible, ratio, cap)


def _capped_scalar(n: int, ratio: int, cap: int | None) -> int:
    """prefix_capped_sum for one Python int (the same closed form)."""
    n = max(n, 0)
    if cap is not None:
        threshold = ratio * cap
        return _capped_scalar(min(n, threshold), ratio, None) + cap * max(n - threshold, 0)
    full, rest = divmod(n, ratio)
    return ratio * full * (full - 1) // 2 + rest * full


def _visible_sum_scalar(query_tokens: int, context: int, ratio: int, cap: int | None) -> int:
    if query_tokens == 1:
        entries = context // ratio
        return entries if cap is None else min(entries, cap)
    first_visible = context - query_tokens + 1
    return _capped_scalar(context + 1, ratio, cap) - _capped_scalar(first_visible, ratio, cap)
