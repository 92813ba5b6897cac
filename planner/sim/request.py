"""One request as the simulator tracks it (a slots dataclass: pydantic is too slow here).

Token bookkeeping: a request has ``input_tokens`` of prompt and will generate
``output_tokens`` (reasoning included). On (re)admission it must prefill
``prefill_target = input + generated`` tokens (recomputation after preemption or a
re-route); finishing the prefill emits one token. A decoding request with G generated
tokens runs its next step at context input + G and then holds KV for input + G tokens.
``block_keys`` are the chained prefix-cache keys of its full blocks, in order: the
prompt's (and, for multi-turn sessions, the output's too, so the next turn can reuse them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

WAITING = "waiting"
RUNNING = "running"
FINISHED = "finished"
REJECTED = "rejected"

# Why a request was rejected (every rejection carries one of these).
REJECT_QUEUE_TIMEOUT = "queue_timeout"
REJECT_TOO_LONG_FOR_MODEL = "exceeds_max_context"
REJECT_TOO_LONG_FOR_KV = "exceeds_kv_capacity"


def chain_keys(content_ids: Iterable[int], parent: int = 0) -> list[int]:
    """Prefix-cache keys: each block's key hashes its parent's key and its own content, so
    equal keys mean equal prefixes (Python's tuple-of-int hash is deterministic)."""
    keys = []
    key = parent
    for content in content_ids:
        key = hash((key, content))
        keys.append(key)
    return keys


@dataclass(slots=True, eq=False)
class Request:
    rid: int
    arrival_s: float
    input_tokens: int
    output_tokens: int
    class_index: int = 0
    block_keys: list[int] = field(default_factory=list)
    reasoning_tokens: int = 0
    session_id: int = -1
    turn: int = 0
    # --- runtime state, owned by the simulator
    state: str = WAITING
    replica: int = -1
    admitted_once: bool = False
    computed_tokens: int = 0  # tokens of the current prefill target with KV computed
    prefill_target: int = 0  # tokens to (re)compute before decoding: input + generated
    decoding: bool = False
    generated: int = 0  # output tokens produced so far
    first_token_s: float = math.nan
    finish_s: float = math.nan
    cached_tokens: int = 0  # prefix-cache hit at first admission
    preemptions: int = 0
    reroutes: int = 0
    reject_reason: str = ""
    ready_s: float = -math.inf  # not schedulable before (host-tier loads); -inf: now
    shared_keys: list[int] = field(default_factory=list)  # cache blocks it references
    shared_epoch: int = 0
    private_blocks: int = 0  # blocks it owns outright (includes its fixed state)
    decode_steps: int = 0  # decode steps run (MTP: indexes its acceptance draws)
    kv_ready: bool = False  # disaggregated: its prompt's KV arrived from the prefill pool

    @property
    def context_tokens(self) -> int:
        """Tokens the next decode step attends over and holds KV for afterwards."""
        return self.input_tokens + self.generated

    @property
    def remaining_output(self) -> int:
        return self.output_tokens - self.generated
