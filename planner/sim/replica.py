"""One serving replica: continuous batching with chunked prefill over paged KV blocks.

Each step the scheduler (vLLM V1 style) first serves running requests in arrival order
(decodes take one token; unfinished prefills take a chunk of the token budget), making room
by preempting the latest-arrived running request when blocks run out (recomputation: it
returns to the front of the queue and re-prefills prompt + generated tokens, mostly from
its own cached blocks). Then it admits waiting requests first-come-first-served while the
batch has sequence slots, token budget and blocks above the watermark, matching each one's
prompt against the prefix cache. Step durations come from ``planner.plan.perf.StepModel``.

Two modes, one answer. ``exact`` runs one step per event. ``fast`` runs a decode-only batch
for K iterations in one event (a "jump"); K ends at the first completion, at the first
iteration whose KV blocks could not be allocated, or at the first step boundary at or after
a time the scheduler would act on (a queue timeout or a host-tier load finishing), and a
jump is cut short at the next boundary when a request is routed here. State inside a jump
is materialised lazily by ``sync(t)`` with the same rule as exact mode: at time t a step
that ends at or after t has its blocks allocated but its tokens not yet emitted.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from planner.plan.perf import StepModel
from planner.sim.block_pool import BlockPool
from planner.sim.mtp import MTPDecoding
from planner.sim.request import (
    FINISHED,
    REJECT_QUEUE_TIMEOUT,
    REJECTED,
    RUNNING,
    WAITING,
    Request,
)

MAX_JUMP_ITERATIONS = 4096  # bounds the arrays a jump allocates


@dataclass(frozen=True)
class ReplicaConfig:
    block_tokens: int
    state_blocks: int  # fixed per-sequence state (sliding window, compressor tail)
    total_blocks: int
    max_num_seqs: int
    max_batched_tokens: int
    queue_timeout_s: float
    watermark_blocks: int
    host_tier_blocks: int
    host_load_s_per_block: float
    enable_prefix_cache: bool
    fast: bool


@dataclass
class Jump:
    """A run of decode-only iterations planned at ``start_s``."""

    start_s: float
    requests: list[Request]
    contexts: np.ndarray  # contexts at iteration 0
    ends_s: list[float]  # end time of each iteration
    remaining: np.ndarray  # output tokens each request had left at iteration 0
    soonest: int  # the fewest of them: no request finishes in a shorter jump
    # Blocks iterations 1..j need beyond iteration 0, for each j (None: none ever needed).
    need: np.ndarray | None
    allocated: int = 1  # iterations whose blocks are allocated (iteration 0 at schedule)
    emitted: int = 0  # iterations whose tokens are emitted
    applied: int = 0  # emitted iterations already added to the requests' ``generated``

    @property
    def length(self) -> int:
        return len(self.ends_s)


def link_dp_groups(engines: list[Replica], groups: int) -> None:
    """Engines ``k * groups .. (k + 1) * groups - 1`` are the attention-DP engines of one
    replica (their ``peers``)."""
    if groups <= 1:
        return
    for start in range(0, len(engines), groups):
        peers = engines[start : start + groups]
        for engine in peers:
            engine.peers = peers


def block_need(contexts: np.ndarray, k: int, block_tokens: int) -> np.ndarray | None:
    """Blocks that decode iterations 1..j of a jump need beyond iteration 0's, for each
    j < k, of sequences at these contexts at iteration 0 (which holds blocks for them); None
    if no sequence needs one. Iteration j needs a new block where j exceeds the tokens left
    in a sequence's last block (its slack)."""
    bs = block_tokens
    slack = (-contexts) % bs
    if k <= 1 or int(slack.min()) >= k - 1:
        return None
    if k - 1 <= bs:
        # At most one new block each, at iteration slack + 1: need[j] counts the
        # sequences whose slack is below j.
        below = np.bincount(np.minimum(slack, k - 1), minlength=k)
        return np.concatenate(([0], np.cumsum(below[: k - 1])))
    grid = contexts[:, None] + np.arange(k, dtype=np.int64)[None, :]
    held = -(-contexts // bs)
    need: np.ndarray = np.sum(-(-grid // bs) - held[:, None], axis=0)
    return need


class Replica:
    def __init__(
        self,
        index: int,
        env: simpy.Environment,
        config: ReplicaConfig,
        step_model: StepModel,
        on_finish: Callable[[Request, float], None],
    ) -> None:
        self.index = index
        self.env = env
        self.config = config
        self.step_model = step_model
        self.on_finish = on_finish
        self.pool = self._new_pool()
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # sorted by (arrival_s, rid): scheduling priority
        self.up = True
        self.jump: Jump | None = None
        self.busy = False
        self.preemptions = 0
        self.steps = 0
        self.events = 0
        self._wakeup = env.event()
        self._cut = env.event()
        self._abort = False
        self._round_contexts: np.ndarray | None = None  # decode contexts of this round
        self._outstanding_base: int | None = None  # see outstanding_tokens
        # MTP speculative decoding (planner.sim.mtp): tokens per decode step, step times.
        self.mtp: MTPDecoding | None = None
        # Disaggregated prefill (planner.sim.disagg): called when a request's prompt is
        # done (its first token emitted); the request then leaves this engine.
        self.on_prefilled: Callable[[Request, float], None] | None = None
        # The attention-DP engines of this engine's replica, itself included (empty: none):
        # their steps are one collective step, so a prefill step's experts see only the
        # busy engines' tokens (link_dp_groups).
        self.peers: list[Replica] = []
        self.process = env.process(self._loop())

    def _new_pool(self) -> BlockPool:
        c = self.config
        return BlockPool(c.total_blocks, c.host_tier_blocks, c.enable_prefix_cache)

    # ------------------------------------------------------------------ helpers
    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.config.block_tokens)

    def _token_blocks(self, r: Request) -> int:
        return len(r.shared_keys) + r.private_blocks - self.config.state_blocks

    def outstanding_tokens(self) -> int:
        """Prefill and decode tokens still to run for every request here. During a jump
        the requests' ``generated`` lag by the jump's unapplied iterations (see _apply).
        The sum over requests is computed once and then kept up to date by every change
        (submissions and admissions, computed prefill chunks, emitted tokens, finishes; a
        preemption or a fault has it computed again), so routing does not walk every
        request of every replica."""
        jump = self.jump
        total = self._outstanding_base
        if total is None:
            total = sum(
                [
                    r.prefill_target - r.computed_tokens + r.output_tokens - r.generated
                    for r in self.running
                ]
            ) + sum([r.input_tokens + r.output_tokens for r in self.waiting])
            self._outstanding_base = total
        if jump is not None:
            total -= (jump.emitted - jump.applied) * len(jump.requests)
        return total

    def kv_utilization(self) -> float:
        return self.pool.used_blocks / self.pool.total_blocks

    # ------------------------------------------------------------------ arrivals
    def submit(self, request: Request) -> None:
        request.replica = self.index
        request.state = WAITING
        self.waiting.append(request)
        if self._outstanding_base is not None:
            self._outstanding_base += request.input_tokens + request.output_tokens
        self._poke()

    def _poke(self) -> None:
        """Make the scheduler look again: wake it if idle, cut a jump short if jumping."""
        if not self.busy:
            if not self._wakeup.triggered:
                self._wakeup.succeed()
        else:
            self.cut()

    def cut(self) -> None:
        """End a running jump at its next step boundary (as exact mode would look again
        then); a no-op outside a jump."""
        if self.jump is not None and not self._cut.triggered:
            self._cut.succeed()

    # ------------------------------------------------------------------ main loop
    def _loop(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            if not self.up:
                self._wakeup = env.event()
                yield self._wakeup
                continue
            yield env.timeout(0)  # let every event at this instant (arrivals) land first
            self.events += 1
            batch = self._schedule(env.now)
            if batch is None:
                self.busy = False
                self._wakeup = env.event()
                timer = self._next_timer(env.now)
                if timer is None:
                    yield self._wakeup
                else:
                    yield self._wakeup | env.timeout(timer - env.now)
                continue
            self.busy = True
            decode, chunks = batch
            if chunks or not self.config.fast or self.mtp is not None:
                yield from self._run_single(decode, chunks)
            else:
                yield from self._run_jump(decode)

    def _next_timer(self, now: float) -> float | None:
        """When an idle replica must look again: a host-tier load finishing or a queue
        timeout falling due."""
        return self._next_deadline(now)

    # ------------------------------------------------------------------ scheduling
    def _expire(self, now: float) -> None:
        timeout = self.config.queue_timeout_s
        # Same predicate as the fast-mode deadline: now > arrival + timeout.
        if not any(not r.admitted_once and now > r.arrival_s + timeout for r in self.waiting):
            return
        kept: deque[Request] = deque()
        for r in self.waiting:
            if not r.admitted_once and now > r.arrival_s + timeout:
                r.state = REJECTED
                r.reject_reason = REJECT_QUEUE_TIMEOUT
                r.finish_s = now
                self._spend(r.input_tokens + r.output_tokens)
            else:
                kept.append(r)
        self.waiting = kept

    def _spend(self, tokens: int) -> None:
        """Take tokens off the kept outstanding_tokens sum (if it is kept)."""
        if self._outstanding_base is not None:
            self._outstanding_base -= tokens

    def _preempt_latest(self) -> Request:
        self._outstanding_base = None
        victim = self.running.pop()
        self.pool.release(victim, self._token_blocks_computed(victim))
        victim.computed_tokens = 0
        victim.decoding = False
        victim.state = WAITING
        victim.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(victim)
        return victim

    def _token_blocks_computed(self, r: Request) -> int:
        """Leading blocks whose tokens all have KV (cacheable on release)."""
        kv_tokens = r.context_tokens - 1 if r.decoding else r.computed_tokens
        return kv_tokens // self.config.block_tokens

    def _schedule(self, now: float) -> tuple[list[Request], list[tuple[Request, int]]] | None:
        cfg = self.config
        self._expire(now)
        self._round_contexts = None
        budget = cfg.max_batched_tokens
        bs = cfg.block_tokens
        state_blocks = cfg.state_blocks
        pool = self.pool
        running = self.running
        decode: list[Request] = []
        chunks: list[tuple[Request, int]] = []
        i = 0
        # With MTP a decode feeds its last token and a draft: two tokens of the budget and
        # a KV slot for the draft.
        decode_tokens, draft_slot = (1, 0) if self.mtp is None else (2, 1)
        if self.mtp is None and running and len(running) <= budget:
            decoding = [r.input_tokens + r.generated for r in running if r.decoding]
        else:
            decoding = []
        if decoding and len(decoding) == len(running):
            # Every running request decodes one token: if the blocks they need all fit,
            # the loop below would allocate them in order with no preemption; do it at once.
            contexts = np.array(decoding, dtype=np.int64)
            # A decoding request holds blocks for its last step's KV, context - 1 tokens
            # (decode_blocks_held): only one whose context starts a new block can need one.
            growers = []
            total = 0
            for j in np.flatnonzero((contexts - 1) % bs == 0).tolist():
                r = running[j]
                need = -(-decoding[j] // bs) - (
                    len(r.shared_keys) + r.private_blocks - state_blocks
                )
                if need > 0:
                    growers.append((r, need))
                    total += need
            if total <= pool.free_blocks + len(pool.evictable):
                for r, blocks in growers:
                    pool.allocate(blocks)
                    r.private_blocks += blocks
                decode = list(running)
                budget -= len(decode)
                i = len(running)
                self._round_contexts = contexts
        while i < len(running) and budget > 0:
            r = running[i]
            if r.decoding:
                tokens, kv_after = decode_tokens, r.input_tokens + r.generated + draft_slot
            else:
                tokens = min(r.prefill_target - r.computed_tokens, budget)
                kv_after = r.computed_tokens + tokens
            # Blocks for kv_after tokens beyond the token blocks it holds (_token_blocks).
            need = -(-kv_after // bs) - (len(r.shared_keys) + r.private_blocks - state_blocks)
            if need > 0:
                preempted = False
                while need > pool.free_blocks + len(pool.evictable):
                    if self._preempt_latest() is r:
                        preempted = True
                        break
                if preempted:
                    break  # r itself was preempted: it was the last running request
                pool.allocate(need)
                r.private_blocks += need
            budget -= tokens
            if r.decoding:
                decode.append(r)
            else:
                chunks.append((r, tokens))
            i += 1
        self._admit(now, budget, chunks, decode)
        if not decode and not chunks:
            return None
        return decode, chunks

    def _admit(
        self,
        now: float,
        budget: int,
        chunks: list[tuple[Request, int]],
        decode: list[Request],
    ) -> None:
        cfg = self.config
        bs = cfg.block_tokens
        while self.waiting and len(self.running) < cfg.max_num_seqs and budget > 0:
            r = self.waiting[0]
            if r.ready_s > now:
                break
            target = r.input_tokens + r.generated
            if r.kv_ready:
                if not self._admit_transferred(r, target):
                    break
                decode.append(r)
                budget -= 1 if self.mtp is None else 2
                continue
            hbm, host = self.pool.match(r.block_keys)
            cacheable = (target - 1) // bs  # at least one token is always computed
            hbm = min(hbm, cacheable)
            host = min(host, cacheable - hbm)
            cached = (hbm + host) * bs
            tokens = min(target - cached, budget)
            # Host-tier blocks need HBM blocks too: they are allocated as private blocks.
            need = cfg.state_blocks + self.blocks_for(cached + tokens) - hbm
            matched = r.block_keys[:hbm]
            available = self.pool.available_blocks - self.pool.idle_among(matched)
            if available - need < cfg.watermark_blocks:
                break
            if host and cfg.host_load_s_per_block > 0 and r.ready_s == -math.inf:
                # Load from the host tier first; look again when it has arrived.
                r.ready_s = now + host * cfg.host_load_s_per_block
                break
            self.waiting.popleft()
            self.pool.acquire(r, matched)
            self.pool.allocate(need)
            if host:
                self.pool.load_from_host(r.block_keys[hbm : hbm + host])
            r.private_blocks = need
            r.prefill_target = target
            r.computed_tokens = cached
            r.decoding = False
            r.ready_s = -math.inf
            if not r.admitted_once:
                r.admitted_once = True
                r.cached_tokens = cached
            r.state = RUNNING
            bisect.insort(self.running, r, key=lambda x: (x.arrival_s, x.rid))
            # Queued, it counted input + output; running, input + output - cached.
            self._spend(cached)
            chunks.append((r, tokens))
            budget -= tokens

    def _admit_transferred(self, r: Request, target: int) -> bool:
        """Disaggregated decode: a request whose prompt KV arrived from the prefill pool
        decodes in this step once its blocks fit (no prefill here); False if they do not
        yet."""
        cfg = self.config
        draft_slot = 0 if self.mtp is None else 1
        need = cfg.state_blocks + self.blocks_for(target + draft_slot)
        if self.pool.available_blocks - need < cfg.watermark_blocks:
            return False
        self.waiting.popleft()
        self.pool.allocate(need)
        r.private_blocks = need
        r.prefill_target = target
        r.computed_tokens = target
        r.decoding = True
        r.kv_ready = False  # a preempted request recomputes here like any other
        r.state = RUNNING
        bisect.insort(self.running, r, key=lambda x: (x.arrival_s, x.rid))
        self._spend(r.input_tokens + r.generated)  # now only its output left counts
        return True

    # ------------------------------------------------------------------ running steps
    def _decode_contexts(self, decode: list[Request]) -> np.ndarray:
        if self._round_contexts is not None and len(self._round_contexts) == len(decode):
            return self._round_contexts  # computed by this round's schedule, same order
        return np.array([r.input_tokens + r.generated for r in decode], dtype=np.int64)

    def _step_time(self, decode: list[Request], chunks: list[tuple[Request, int]]) -> float:
        if self.mtp is not None:
            completing = sum(1 for r, t in chunks if r.computed_tokens + t >= r.prefill_target)
            spans = [(t, r.computed_tokens + t) for r, t in chunks]
            return self.mtp.times.step_time_s(self._decode_contexts(decode), spans, completing)
        model = self.step_model
        tokens = len(decode) + sum(t for _, t in chunks)
        # Logits for every decoding sequence and every prefill that completes in the step.
        sampled = len(decode) + sum(
            1 for r, t in chunks if r.computed_tokens + t >= r.prefill_target
        )
        # A prefill step while some DP engines idle: only the busy ones' tokens reach the
        # experts (decode-only steps keep the all-busy time, as a fast-mode jump does).
        busy = sum(1 for p in self.peers if p.busy) if chunks and self.peers else None
        base = model.step_overhead_s + model.linear_time_s(tokens, sampled, busy)
        if not chunks:
            return base + float(model.decode_attention_time_s(self._decode_contexts(decode)))
        spans = [(t, r.computed_tokens + t) for r, t in chunks]
        return base + model.mixed_attention_time_s(self._decode_contexts(decode), spans)

    def _wait_until(self, end_s: float) -> Generator[simpy.Event, Any, bool]:
        """Wait for end_s; True if a cut event arrived first. The same events as
        ``timeout | cut`` (the first of them to be processed triggers the event this
        process waits on), without SimPy's condition bookkeeping."""
        env = self.env
        wake = env.event()
        cut = self._cut = env.event()

        def first(event: simpy.Event) -> None:
            if not wake.triggered:
                wake.succeed(event)

        cut.callbacks.append(first)
        env.timeout(end_s - env.now).callbacks.append(first)
        fired = yield wake
        return fired is cut and env.now < end_s

    def _run_single(
        self, decode: list[Request], chunks: list[tuple[Request, int]]
    ) -> Generator[simpy.Event, Any, None]:
        end_s = self.env.now + self._step_time(decode, chunks)
        self.jump = None
        self._abort = False
        # Only a fault cuts a single step (arrivals just queue for the next one).
        yield from self._wait_until(end_s)
        if self._abort:
            return
        yield self.env.timeout(0)  # same-instant arrivals see the step not yet committed
        if self._abort:
            return
        self.steps += 1
        for r, tokens in chunks:
            r.computed_tokens += tokens
            self._spend(tokens)
            if r.computed_tokens >= r.prefill_target:
                r.decoding = True
                self._emit(r, end_s)
        mtp = self.mtp
        if mtp is None:
            self._spend(len(decode))
        for r in decode:  # _emit inlined: a decoding request has its first token already
            if mtp is None:
                r.generated += 1
            else:
                tokens = mtp.tokens(r)
                r.generated += tokens
                self._spend(tokens)
            if r.generated >= r.output_tokens:
                self._finish(r, end_s)

    def _emit(self, r: Request, now: float) -> None:
        r.generated += 1
        self._spend(1)
        if r.generated == 1:
            r.first_token_s = now
        if r.generated >= r.output_tokens:
            self._finish(r, now)
        elif self.on_prefilled is not None:
            self._hand_off(r, now)

    def _hand_off(self, r: Request, now: float) -> None:
        """Disaggregated prefill: the prompt is done; its blocks go back to the pool (the
        prompt's stay cached) and the request leaves for the decode pool."""
        assert self.on_prefilled is not None
        self._spend(r.prefill_target - r.computed_tokens + r.output_tokens - r.generated)
        self.running.remove(r)
        self.pool.release(r, self._token_blocks_computed(r))
        r.shared_keys = []
        r.private_blocks = 0
        self.on_prefilled(r, now)

    def _finish(self, r: Request, now: float) -> None:
        self._spend(r.prefill_target - r.computed_tokens + r.output_tokens - r.generated)
        r.state = FINISHED
        r.finish_s = now
        self.running.remove(r)
        self.pool.release(r, self._token_blocks_computed(r))
        if self.mtp is not None:
            self.mtp.forget(r)
        self.on_finish(r, now)

    # ------------------------------------------------------------------ fast mode
    def _plan_jump(self, decode: list[Request], now: float) -> Jump:
        contexts = self._decode_contexts(decode)
        left = [r.output_tokens - r.generated for r in decode]
        remaining = np.array(left, dtype=np.int64)
        soonest = min(left)
        k = min(soonest, MAX_JUMP_ITERATIONS)
        need = block_need(contexts, k, self.config.block_tokens)
        if need is not None:
            k = int(np.searchsorted(need, self.pool.available_blocks, side="right"))
            k = max(k, 1)
        grid = contexts[:, None] + np.arange(k, dtype=np.int64)[None, :]
        model = self.step_model
        base = model.step_overhead_s + model.linear_time_s(len(decode), len(decode))
        attention = model.decode_attention_time_s(grid, axis=0)
        durations = base + np.asarray(attention, dtype=np.float64)
        # Sequential sums (np.add.accumulate adds left to right): now + d0, + d1, ...
        ends: list[float] = np.add.accumulate(np.concatenate(([now], durations)))[1:].tolist()
        deadline = self._next_deadline(now)
        if deadline is not None:
            # Stop at the first boundary at or after which the scheduler must act.
            cut = bisect.bisect_left(ends, deadline)
            ends = ends[: cut + 1]
        return Jump(now, list(decode), contexts, ends, remaining, soonest, need)

    def _next_deadline(self, now: float) -> float | None:
        """Earliest time a waiting request changes state by itself: host load done
        (schedulable at ready_s) or queue timeout (rejected once now - arrival > timeout,
        so at any boundary strictly after arrival + timeout: nudged by one ulp)."""
        times = []
        for r in self.waiting:
            if r.ready_s > now:
                times.append(r.ready_s)
            if not r.admitted_once:
                times.append(math.nextafter(r.arrival_s + self.config.queue_timeout_s, math.inf))
        return min(times) if times else None

    def _run_jump(self, decode: list[Request]) -> Generator[simpy.Event, Any, None]:
        jump = self._plan_jump(decode, self.env.now)
        self.jump = jump
        self._abort = False
        end_s = jump.ends_s[-1]
        while True:
            cut = yield from self._wait_until(end_s)
            if self._abort:
                return
            if not cut:
                break
            # Routed a new request: stop at the first boundary at or after now.
            index = bisect.bisect_left(jump.ends_s, self.env.now)
            del jump.ends_s[index + 1 :]
            end_s = jump.ends_s[-1]
        yield self.env.timeout(0)
        if self._abort:
            return
        self._commit(jump, jump.length, jump.length)
        self._apply(jump)
        self.jump = None
        # Requests whose last token came in the jump's last iteration (in batch order).
        if jump.length >= jump.soonest:
            for i in np.flatnonzero(jump.remaining <= jump.length).tolist():
                self._finish(jump.requests[i], end_s)

    def _commit(self, jump: Jump, started: int, done: int) -> None:
        """Allocate blocks for iterations [allocated, started) and emit the tokens of
        iterations [emitted, done)."""
        need = jump.need
        if started > jump.allocated and (
            need is None or need[started - 1] == need[jump.allocated - 1]
        ):
            jump.allocated = started  # no request crosses a block boundary
        if started > jump.allocated:
            bs = self.config.block_tokens
            before = -(-(jump.contexts + jump.allocated - 1) // bs)
            after = -(-(jump.contexts + started - 1) // bs)
            extra = after - before
            for i in np.flatnonzero(extra).tolist():
                r = jump.requests[i]
                self.pool.allocate(int(extra[i]))
                r.private_blocks += int(extra[i])
            jump.allocated = started
        if done > jump.emitted:
            self.steps += done - jump.emitted
            jump.emitted = done

    def _apply(self, jump: Jump) -> None:
        """Add the emitted iterations to each request's ``generated`` (done lazily: a sync
        in the middle of a jump only counts them, so routing does not touch every request)."""
        pending = jump.emitted - jump.applied
        if pending:
            for r in jump.requests:
                r.generated += pending
            jump.applied = jump.emitted
            if self._outstanding_base is not None:
                self._outstanding_base -= pending * len(jump.requests)

    def finalize(self, now: float) -> None:
        """Materialise the state at ``now`` completely (the end of a run)."""
        self.sync(now)
        if self.jump is not None:
            self._apply(self.jump)

    def sync(self, now: float) -> None:
        """Materialise a jump up to ``now`` (exact mode has nothing to do)."""
        jump = self.jump
        if jump is None:
            return
        done = bisect.bisect_left(jump.ends_s, now)  # iterations ending strictly before now
        done = min(done, jump.length - 1)  # the last iteration is committed by the loop
        self._commit(jump, min(done + 1, jump.length), done)

    # ------------------------------------------------------------------ faults
    def fail(self, now: float) -> list[Request]:
        """Go down: every queued and running request is handed back for re-routing."""
        self.finalize(now)
        self._abort = True
        self.jump = None
        self._outstanding_base = None
        if not self._cut.triggered:
            self._cut.succeed()
        displaced = [*self.running, *self.waiting]
        for r in displaced:
            r.computed_tokens = 0
            r.decoding = False
            r.shared_keys = []
            r.private_blocks = 0
            r.ready_s = -math.inf
            r.reroutes += 1
            r.state = WAITING
        self.running = []
        self.waiting = deque()
        self.pool = self._new_pool()  # a restarted engine has an empty cache
        self.up = False
        self.busy = False
        return displaced

    def recover(self) -> None:
        self.up = True
        if not self._wakeup.triggered:
            self._wakeup.succeed()
