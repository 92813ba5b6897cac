"""Data-parallel attention groups step together: how much a replica's decodes are held up
by the prefills of its groups.

With attention DP > 1 the groups run every forward pass together: the MoE layers'
collectives join them, and a group with nothing to run runs a dummy batch in step (vLLM
``vllm/v1/worker/dp_utils.py`` ``_synchronize_dp_ranks`` and ``execute_dummy_batch``,
vllm-project/vllm commit 00746147; SGLang's idle batch, ``prepare_mlp_sync_batch`` in
sgl-project/sglang ``python/sglang/srt/managers/scheduler.py``). So one group's prefill
chunk lengthens every group's step, and each group's decodes emit one token per step,
however long.

Each of the G groups receives lambda / G prompts/s and prefills a share u of the time
(``planner.plan.prefill.prefill_service``: u = (lambda / G) D(u)); the groups' prompts
arrive independently, so k groups prefill at a random moment with probability
pi_k = Binomial(k; G, u) and a step carries some prefill a share 1 - (1 - u)^G of the
time. A step with k groups prefilling lasts L_k = max(T_k / n, s(B)): T_k the prompt's
prefill with k groups busy (``prefill_times_by_busy_s``) over its n chunks, at least the
decode step s(B) it also carries. A sequence then emits t tokens per step it runs in:
    tokens/s = t [ (1 - u)^G / s(B) + sum_k w_k / L_k ],
with w_k = pi_k where the engine runs a group's decodes in its own prefill step
(``decodes_in_prefill_steps``: vLLM, TensorRT-LLM), and w_k = (1 - u) Binomial(k; G - 1, u)
where it does not (SGLang: a sequence waits through its own group's prefill steps, and
runs in the other groups'). TPOT = 1 / tokens/s = s(B) / (t (1 - H)), H the held share:
    H(u, B) = 1 - (1 - u)^G - s(B) sum_k w_k / L_k.
Every figure is closed form in u, and lambda(u) = G u / D(u) grows with u; the rate that
gives a share is found by root finding in u (``scipy.optimize.brentq``).

Not modelled: the decode tokens' own cost inside a prefill step, and any correlation of
the groups' arrivals (one router spreading a burst over every group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binom

from planner.plan.prefill import prefill_service

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Lockstep:
    """One DP > 1 replica's prefill, for the decodes' sake (see the module docstring)."""

    prefill_by_busy_s: FloatArray  # one prompt while k = 1..G groups prefill (index k-1)
    chunks: int  # prefill steps of one prompt
    decodes_in_prefill_steps: bool

    @property
    def groups(self) -> int:
        return len(self.prefill_by_busy_s)

    def service_s(self, u: ArrayLike) -> FloatArray:
        """D(u): a prompt's mean prefill while each other group prefills with prob. u."""
        u_a = np.asarray(u, dtype=np.float64)
        others = self.groups - 1
        k = np.arange(others + 1).reshape((-1,) + (1,) * u_a.ndim)
        pmf = binom.pmf(k, others, u_a)
        return np.asarray(np.tensordot(self.prefill_by_busy_s, pmf, axes=1), dtype=np.float64)

    def replica_rate(self, u: ArrayLike) -> FloatArray:
        """lambda(u) = G u / D(u): requests/s per replica at group utilisation u."""
        u_a = np.asarray(u, dtype=np.float64)
        return np.asarray(self.groups * u_a / self.service_s(u_a), dtype=np.float64)

    def utilisation(self, requests_per_s: float) -> float:
        """u at a rate per replica (``prefill_service``), at most 1."""
        _, u = prefill_service(self.prefill_by_busy_s, requests_per_s / self.groups)
        return min(u, 1.0)

    def held_share(self, u: ArrayLike, step_s: ArrayLike) -> FloatArray:
        """H(u, B): share of a sequence's time it emits nothing, for decode steps
        ``step_s`` (broadcast against ``u``)."""
        u_a = np.asarray(u, dtype=np.float64)[..., None]
        s = np.asarray(step_s, dtype=np.float64)
        groups = self.groups
        k = np.arange(1, groups + 1)
        if self.decodes_in_prefill_steps:
            weights = binom.pmf(k, groups, u_a)
        else:
            weights = (1.0 - u_a) * binom.pmf(k, groups - 1, u_a)
        # Weights on axis -1 (k), steps broadcast before it.
        step_k = self.prefill_by_busy_s / self.chunks
        lengths = np.maximum(step_k, s[..., None])
        runs = np.sum(weights / lengths, axis=-1)
        idle = (1.0 - u_a[..., 0]) ** groups
        return np.asarray(1.0 - idle - s * runs, dtype=np.float64)
