"""Prefill with a prefix cache: what a prompt costs when part of it is already cached.

A prompt of I tokens whose first C tokens hit the prefix cache computes only the I - C
uncached tokens, in chunks of ``max_batched_tokens``; each chunk still attends to every
token before it, cached ones included (vLLM's and SGLang's prefix caching skip the cached
tokens' computation, not their KV reads). Step times come from ``planner.plan.perf``
(``prefill_chunk`` and the ``StepModel`` parts): nothing here times an operator.

Two figures:
- ``prefill_time_s``: one prompt alone on an idle replica (what its TTFT is without
  queueing): its uncached chunks one after another. With data-parallel attention the
  prompt is one DP group's: that group's attention and dense layers run its chunk, the
  other groups run empty batches in step (vLLM's ``execute_dummy_batch``: a one-token
  dummy run, unpadded for a prefill step run without a CUDA graph, vllm-project/vllm
  ``vllm/v1/worker/dp_utils.py`` ``_synchronize_dp_ranks``, commit 00746147; SGLang's
  idle batch), so the experts see one chunk's tokens spread over the EP ranks and the
  all-to-all carries one group's tokens. ``prefill_times_by_busy_s`` gives the time with
  k = 1..DP groups prefilling at once (the DP groups' steps are one collective step).
- ``prefill_tokens_per_s``: prompt tokens per second, cached tokens included, of a replica
  that only prefills, every step filled to its token budget (``max_batched_tokens`` uncached
  tokens in every attention-DP group). Short prompts share a step; long ones span several.
  The average step carries B uncached tokens, B / U prompts' worth of sampling and B / U
  times one prompt's attention work (U = I - C), so the replica runs
  DP x (B / U) x I prompt tokens per step.

Under load a prompt's step is shared with the other DP groups' prompts: with each of the
other DP - 1 groups prefilling independently with probability u (the groups' prefill
utilisation), the service time of a prompt is D(u) = E[time with 1 + Binomial(DP - 1, u)
groups busy], and u = lambda_group D(u) (``prefill_service``): the lone-prompt time at low
load, the all-groups time as u -> 1.

The hit ratio R is a mean over requests: C = floor(R x I), at most I - 1 (an engine always
computes a prompt's last token to produce the first output token).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.stats import binom

from planner.errors import KvplanError
from planner.limits import MAX_PREFILL_CHUNKS
from planner.plan.deployed import Deployed
from planner.plan.perf import AttentionWork, StepModel, prefill_chunk, step_model

SERVICE_XTOL = 1e-12  # utilisation


def check_hit_ratio(prefix_hit_ratio: float, field: str = "prefix_hit_ratio") -> float:
    """The ratio, validated: a finite share of prompt tokens in [0, 1]."""
    if not isinstance(prefix_hit_ratio, int | float) or not 0.0 <= prefix_hit_ratio <= 1.0:
        raise KvplanError(
            "must be a share of prompt tokens",
            field=field,
            value=prefix_hit_ratio,
            expected="a number in [0, 1]",
        )
    return float(prefix_hit_ratio)


def cached_prompt_tokens(input_tokens: int, prefix_hit_ratio: float) -> int:
    """Prompt tokens served from the prefix cache: floor(R x I), at most I - 1."""
    ratio = check_hit_ratio(prefix_hit_ratio)
    if input_tokens <= 1:
        return 0
    return min(math.floor(ratio * input_tokens), input_tokens - 1)


def _check_split(input_tokens: int, cached_tokens: int) -> None:
    if not 0 <= cached_tokens < max(input_tokens, 1):
        raise KvplanError(
            "cached tokens must be fewer than the prompt's",
            field="cached_tokens",
            value=cached_tokens,
            expected=f"0 <= cached < {input_tokens}",
        )


def _chunks(deployed: Deployed, input_tokens: int, cached_tokens: int) -> list[tuple[int, int]]:
    """(chunk tokens, context at its end) of the uncached part: full chunks, then the rest.
    At most MAX_PREFILL_CHUNKS of them (bounded work: a 1M-token prompt in 1-token chunks
    is refused, naming max_batched_tokens)."""
    budget = deployed.deployment.max_batched_tokens
    uncached = input_tokens - cached_tokens
    if -(-uncached // budget) > MAX_PREFILL_CHUNKS:
        raise KvplanError(
            f"a {uncached:,}-token prefill would take more than {MAX_PREFILL_CHUNKS:,} chunks "
            "of this token budget",
            field="max_batched_tokens",
            value=budget,
            expected=f"at least {-(-uncached // MAX_PREFILL_CHUNKS):,} for this prompt",
        )
    full = uncached // budget
    out = [(budget, cached_tokens + (k + 1) * budget) for k in range(full)]
    if uncached - full * budget:
        out.append((uncached - full * budget, input_tokens))
    return out


def _prefill_s(
    deployed: Deployed, input_tokens: int, cached_tokens: int, busy: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One prompt's prefill with ``busy`` DP groups prefilling at once (vectorised)."""
    total = np.zeros(np.shape(busy))
    if input_tokens <= 0:
        return total
    _check_split(input_tokens, cached_tokens)
    chunks = _chunks(deployed, input_tokens, cached_tokens)
    budget = deployed.deployment.max_batched_tokens
    full_ends = [end for tokens, end in chunks if tokens == budget]
    if full_ends:
        ends = np.asarray(full_ends, dtype=np.int64)[:, None]
        step = prefill_chunk(deployed, budget, ends, busy[None, :])
        total = total + np.sum(np.broadcast_to(step.time_s, (len(full_ends), busy.size)), axis=0)
    for tokens, end in chunks:
        if tokens != budget:
            total = total + prefill_chunk(deployed, tokens, end, busy).time_s
    return np.asarray(total, dtype=np.float64)


def prefill_time_s(
    deployed: Deployed, input_tokens: int, cached_tokens: int = 0, busy_groups: int = 1
) -> float:
    """Seconds to prefill one prompt of I tokens, C of them cached, on an idle replica
    (``busy_groups``: DP groups prefilling a prompt like it at once; 1 on an idle replica)."""
    busy = np.asarray([_check_busy(deployed, busy_groups)], dtype=np.float64)
    return float(_prefill_s(deployed, input_tokens, cached_tokens, busy)[0])


def prefill_times_by_busy_s(
    deployed: Deployed, input_tokens: int, cached_tokens: int = 0
) -> NDArray[np.float64]:
    """Index k - 1: seconds to prefill one prompt while k = 1..DP attention-DP groups
    prefill a prompt like it in the same steps."""
    busy = np.arange(1, deployed.attention_dp + 1, dtype=np.float64)
    return _prefill_s(deployed, input_tokens, cached_tokens, busy)


def _check_busy(deployed: Deployed, busy_groups: int) -> int:
    if not 1 <= busy_groups <= deployed.attention_dp:
        raise KvplanError(
            "must be a count of attention-DP groups",
            field="busy_groups",
            value=busy_groups,
            expected=f"1..{deployed.attention_dp}",
        )
    return busy_groups


def prefill_service(
    times_by_busy_s: NDArray[np.float64], group_rate_per_s: float
) -> tuple[float, float]:
    """(D, u): the mean service time of a prompt on one DP group receiving
    ``group_rate_per_s`` prompts/s, and that group's prefill utilisation, the least
    solution of u = rate x D(u) with D(u) = sum_j Binomial(j; DP - 1, u) x
    times_by_busy_s[j] (the other groups each prefilling with probability u). When even
    all-busy prefill cannot keep up (rate x times_by_busy_s[-1] >= 1) u is that product."""
    times = np.asarray(times_by_busy_s, dtype=np.float64)
    others = len(times) - 1
    if group_rate_per_s <= 0 or others == 0:
        return float(times[0]), group_rate_per_s * float(times[0])

    def service(u: float) -> float:
        return float(np.dot(binom.pmf(np.arange(others + 1), others, u), times))

    if group_rate_per_s * float(times[-1]) >= 1.0:
        return float(times[-1]), group_rate_per_s * float(times[-1])
    # f(u) = rate D(u) - u is positive at 0 and negative at 1; D is a polynomial close to
    # linear in u (step times grow about linearly with the busy groups): one root.
    u = float(brentq(lambda x: group_rate_per_s * service(x) - x, 0.0, 1.0, xtol=SERVICE_XTOL))
    return service(u), u


def decode_stall_share_s(
    deployed: Deployed,
    input_tokens: int,
    cached_tokens: int,
    batches: NDArray[np.int64],
    all_busy_s: float | None = None,
) -> NDArray[np.float64]:
    """Per decode batch B (replica-wide): the time one prompt's prefill adds to the steps of
    a replica decoding B sequences, as a share of the replica.

    Where the engine runs decodes in the same step as a prefill chunk
    (``decodes_in_prefill_steps``: vLLM, TensorRT-LLM), a chunk of c tokens turns a decode
    step of B sequences into one over c + B q tokens: it adds linear(c + B q) - linear(B q)
    plus the chunk's attention, and the decodes still emit their tokens in that step; the
    weight reads and the step's fixed costs are shared. Summed over the prompt's chunks
    (cut by the token budget as ``prefill_time_s`` cuts them, leaving out the decodes'
    share of the budget).

    Where prefill batches run alone (SGLang's default), decodes wait through the whole
    prefill. With data-parallel attention the groups step together (the MoE layers'
    collectives), so one group's chunk holds up every group's decodes: the time held is
    not a per-prompt figure but a nonlinear function of the load, which sizing takes from
    ``planner.plan.lockstep``; here such replicas get the all-groups prefill time per DP
    group (what the decodes would lose if every group's prompts arrived in the same
    steps), a lower bound kept for reference. ``all_busy_s``: that all-groups prefill
    time, if already known."""
    b = np.asarray(batches, dtype=np.float64)
    groups = deployed.attention_dp
    if not deployed.engine.profile.defaults.decodes_in_prefill_steps or groups > 1:
        if all_busy_s is None:
            all_busy_s = float(prefill_times_by_busy_s(deployed, input_tokens, cached_tokens)[-1])
        return np.full(b.shape, all_busy_s / groups)
    model = step_model(deployed)
    q = deployed.query_tokens_per_step
    drafts = b if deployed.deployment.mtp else 0.0
    decode_tokens = b * q
    base = model.linear_timeline(decode_tokens, drafts).total_s()
    extra = np.zeros(b.shape)
    sizes: dict[int, int] = {}
    for tokens, _ in _chunks(deployed, input_tokens, cached_tokens):
        sizes[tokens] = sizes.get(tokens, 0) + 1
    for tokens, count in sizes.items():
        # The chunk samples once (as prefill_chunk charges it).
        mixed = model.linear_timeline(
            decode_tokens + tokens, drafts, sampled_tokens=decode_tokens + 1
        ).total_s()
        extra = extra + count * (mixed - base)
    work = prompt_attention_work(deployed, input_tokens, cached_tokens)
    attention = float(model.attention_timeline(work).total_s())
    return np.asarray(extra + attention, dtype=np.float64)


def prefill_breakdown_s(
    deployed: Deployed, input_tokens: int, cached_tokens: int = 0
) -> dict[str, float]:
    """Seconds per operator class over one prompt's prefill (the steps prefill_time_s
    sums; without micro-batch overlap the classes add up to it)."""
    out: dict[str, float] = {}
    if input_tokens <= 0:
        return out
    _check_split(input_tokens, cached_tokens)
    chunks = _chunks(deployed, input_tokens, cached_tokens)
    budget = deployed.deployment.max_batched_tokens
    # Full chunks in one vectorised call (as prefill_time_s), the remainder on its own;
    # one DP group busy (a prompt alone).
    full_ends = np.asarray([end for tokens, end in chunks if tokens == budget], dtype=np.int64)
    steps = [prefill_chunk(deployed, budget, full_ends, 1)] if full_ends.size else []
    steps += [prefill_chunk(deployed, t, np.int64(end), 1) for t, end in chunks if t != budget]
    for step in steps:
        shape = np.shape(step.time_s)
        for name, t in step.by_operator_s.items():
            # An operator the same in every chunk (a launch) comes back once: count it per
            # chunk.
            per_chunk = np.broadcast_to(np.asarray(t, dtype=np.float64), shape)
            out[name] = out.get(name, 0.0) + float(np.sum(per_chunk))
    return out


def prompt_attention_work(
    deployed: Deployed, input_tokens: int, cached_tokens: int
) -> list[AttentionWork]:
    """Attention work of one prompt's uncached chunks, per attention kind of the model."""
    chunks = _chunks(deployed, input_tokens, cached_tokens)
    out = []
    for kind, _ in step_model(deployed).kinds:
        parts = [StepModel.chunk_work(kind, tokens, end) for tokens, end in chunks]
        out.append(AttentionWork.total(parts))
    return out


def packed_prefill_step_s(deployed: Deployed, input_tokens: int, cached_tokens: int) -> float:
    """One step of a prefill-only replica at its full token budget (every DP group runs
    max_batched_tokens uncached tokens of prompts shaped I, C)."""
    _check_split(input_tokens, cached_tokens)
    model = step_model(deployed)
    groups = deployed.attention_dp
    budget = deployed.deployment.max_batched_tokens
    prompts_per_group = budget / (input_tokens - cached_tokens)
    replica_prompts = prompts_per_group * groups
    timeline = model.linear_timeline(float(budget * groups), sampled_tokens=replica_prompts)
    work = [
        w.scaled(replica_prompts)
        for w in prompt_attention_work(deployed, input_tokens, cached_tokens)
    ]
    timeline.merge(model.attention_timeline(work))
    return float(timeline.result(model.step_overhead_s).time_s)


def prefill_tokens_per_s(deployed: Deployed, input_tokens: int, cached_tokens: int = 0) -> float:
    """Prompt tokens per second (cached ones included) of a replica that only prefills,
    at its full token budget (see the module docstring)."""
    if input_tokens <= 0:
        return 0.0
    step_s = packed_prefill_step_s(deployed, input_tokens, cached_tokens)
    prompts_per_step = (deployed.attention_dp * deployed.deployment.max_batched_tokens) / (
        input_tokens - cached_tokens
    )
    return prompts_per_step * input_tokens / step_s
