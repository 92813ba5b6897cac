"""MTP speculative decoding in the simulator: how many tokens each decode step emits.

Each decode step of a sequence verifies one draft token (one MTP module); the draft is
accepted with probability ``acceptance`` (DeepSeek-V3 technical report, arXiv 2412.19437,
sec. 5.4.3: 85-90% for the second token), so the step emits 2 tokens, else 1. The draws
are seeded per request: the n-th decode step of request ``rid`` draws the n-th number of
the stream ``default_rng([seed, MTP_STREAM, rid])``, so a run gives the same tokens however
its steps are grouped (exact or fast mode) and on whichever worker it runs. Acceptance 1.0
always emits 2 tokens per step, 0.0 always 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planner.plan.mtp import MTPStepTimes
from planner.sim.request import Request

MTP_STREAM = 17  # random-stream tag of the acceptance draws (see planner.sim.workload)
DRAWS_PER_REFILL = 256


@dataclass
class MTPDecoding:
    acceptance: float
    seed: int
    times: MTPStepTimes
    _streams: dict[int, tuple[np.random.Generator, list[bool]]] = field(default_factory=dict)

    def tokens(self, r: Request) -> int:
        """Tokens the request's next decode step emits (1, or 2 with an accepted draft),
        at most what it still has to generate."""
        if self.acceptance >= 1.0:
            accepted = True
        elif self.acceptance <= 0.0:
            accepted = False
        else:
            stream = self._streams.get(r.rid)
            if stream is None:
                rng = np.random.default_rng([self.seed, MTP_STREAM, r.rid])
                stream = (rng, [])
                self._streams[r.rid] = stream
            rng, pending = stream
            if not pending:
                pending.extend((rng.random(DRAWS_PER_REFILL) < self.acceptance).tolist()[::-1])
            accepted = pending.pop()
        r.decode_steps += 1
        return min(2 if accepted else 1, r.output_tokens - r.generated)

    def forget(self, r: Request) -> None:
        """A finished request's stream is not needed again."""
        self._streams.pop(r.rid, None)
