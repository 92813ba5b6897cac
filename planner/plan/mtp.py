"""Step times of a replica decoding with MTP speculative decoding, for the simulator.

With one MTP module (DeepSeek-V3 technical report, arXiv 2412.19437, sec. 2.2 and 5.4.3)
every decoding sequence feeds two tokens through the main model each step: its last token
and the draft the MTP module proposed, verified together in the decode kernels' form (two
queries per sequence); the MTP module then drafts the next token for every decoding
sequence (one decoder layer and the LM head). The step emits the last token's successor
plus the draft when it is accepted. These are the same parts ``planner.plan.perf``'s
``decode_step`` composes for MTP (``linear_timeline`` with ``draft_tokens``, ``decode_work``
with two queries); here they are arranged for steps that mix decodes and prefill chunks,
with the decode-only linear part tabulated by batch. Nothing here times an operator.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from planner.plan.perf import AttentionWork, StepModel

MTP_QUERY_TOKENS = 2  # the sequence's last token and one draft


class MTPStepTimes:
    """Step times with MTP drafts for one engine (a StepModel, per DP group or not)."""

    def __init__(self, model: StepModel, max_decodes: int) -> None:
        self.model = model
        self.max_decodes = max_decodes

    def _linear_s(self, decodes: float, chunk_tokens: float, completing: float) -> float:
        m = self.model
        scale = float(m.group_scale)
        q = MTP_QUERY_TOKENS
        timeline = m.linear_timeline(
            (q * decodes + chunk_tokens) * scale,
            draft_tokens=decodes * scale,
            sampled_tokens=(q * decodes + completing) * scale,
        )
        return float(timeline.total_s())

    @cached_property
    def _decode_linear_s(self) -> NDArray[np.float64]:
        """Linear time of a decode-only step of n sequences, n = 0..max_decodes."""
        m = self.model
        scale = float(m.group_scale)
        n = np.arange(self.max_decodes + 1, dtype=np.float64)
        q = MTP_QUERY_TOKENS
        timeline = m.linear_timeline(
            q * n * scale, draft_tokens=n * scale, sampled_tokens=q * n * scale
        )
        return np.broadcast_to(timeline.total_s(), n.shape).astype(np.float64)

    def step_time_s(
        self,
        decode_contexts: NDArray[np.int64],
        chunks: list[tuple[int, int]],
        completing: int,
    ) -> float:
        """Seconds of a step with decoding sequences at these contexts (two queries each)
        and prefill chunks (tokens, context at the chunk's end), ``completing`` of which
        finish their prompt and sample."""
        m = self.model
        n = len(decode_contexts)
        if not chunks and n <= self.max_decodes:
            linear = float(self._decode_linear_s[n])
        else:
            linear = self._linear_s(n, sum(t for t, _ in chunks), completing)
        work = []
        for kind, _ in m.kinds:
            parts = []
            if n:
                parts.append(StepModel.decode_work(kind, decode_contexts, MTP_QUERY_TOKENS))
            parts += [StepModel.chunk_work(kind, t, end) for t, end in chunks]
            work.append(AttentionWork.total(parts))
        return m.step_overhead_s + linear + float(m.attention_time_s(work))
