"""Concurrency-vs-context frontier: how many sequences of each length fit, for several
models and GPUs at once. Contexts beyond a model's maximum admit 0 sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.errors import KvplanError
from planner.hardware import GPU
from planner.limits import MAX_FRONTIER_POINTS
from planner.model.model import Model
from planner.plan.deployed import Deployed
from planner.plan.memory import (
    InsufficientMemoryError,
    max_concurrent_sequences,
    max_context_tokens,
    memory_budget,
)
from planner.schema import Deployment


@dataclass(frozen=True)
class FrontierCurve:
    model: str
    gpu: str
    gpus_per_replica: int
    context_tokens: NDArray[np.int64]
    max_concurrent_sequences: NDArray[np.int64]  # per replica; 0 beyond max context
    fits: bool  # False when the weights alone do not fit
    reason: str = ""


def frontier_curve(
    model: Model, gpu: GPU, deployment: Deployment, context_tokens: ArrayLike
) -> FrontierCurve:
    contexts = np.asarray(context_tokens, dtype=np.int64)
    if np.any(contexts < 0):
        raise KvplanError("context must not be negative", field="context_tokens")
    deployed = Deployed.build(model, gpu, deployment)
    try:
        budget = memory_budget(deployed, suggest=False)
    except InsufficientMemoryError as err:
        zeros = np.zeros_like(contexts)
        return FrontierCurve(
            model.name, gpu.name, deployment.gpus_per_replica, contexts, zeros, False, str(err)
        )
    counts = max_concurrent_sequences(deployed, contexts, budget)
    counts = np.where(contexts <= model.max_context_tokens, counts, 0)
    return FrontierCurve(model.name, gpu.name, deployment.gpus_per_replica, contexts, counts, True)


def max_context_curve(
    model: Model, gpu: GPU, deployment: Deployment, concurrency: ArrayLike
) -> NDArray[np.int64] | None:
    """Longest context at which C sequences fit on one replica, per C; None if the weights
    do not fit."""
    deployed = Deployed.build(model, gpu, deployment)
    try:
        budget = memory_budget(deployed, suggest=False)
    except InsufficientMemoryError:
        return None
    return max_context_tokens(deployed, np.asarray(concurrency, dtype=np.int64), budget)


def frontier(
    models: list[Model], gpus: list[GPU], deployment: Deployment, context_tokens: ArrayLike
) -> list[FrontierCurve]:
    """One curve per (model, GPU) pair, same deployment and contexts for all."""
    return [frontier_curve(m, g, deployment, context_tokens) for m in models for g in gpus]


def log_spaced_contexts(
    low_tokens: int = 1024, high_tokens: int = 2**20, points: int = 64
) -> NDArray[np.int64]:
    """Context grid for plots: log-spaced, whole tokens, sorted and unique."""
    if not 1 <= points <= MAX_FRONTIER_POINTS:
        raise KvplanError(
            "not a number of points",
            field="points",
            value=points,
            expected=f"1 to {MAX_FRONTIER_POINTS:,}",
        )
    if low_tokens < 1 or high_tokens < low_tokens:
        raise KvplanError(
            "context range must satisfy 1 <= min <= max",
            field="min_context",
            value=(low_tokens, high_tokens),
        )
    grid = np.geomspace(low_tokens, high_tokens, points)
    return np.unique(np.round(grid).astype(np.int64))
