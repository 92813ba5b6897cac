"""Migration traffic: one stream of requests, seen by each fleet in its own tokens.

Requests are drawn hour by hour and class by class, each (class, hour, field) from its own
random stream ``default_rng([seed, tag, class, hour])``, so any window of hours gives the
same requests however the timeline is split (one process, or windows on Dask workers).
A class's arrivals are a non-homogeneous Poisson process with the traffic's daily pattern,
sampled by thinning at the hour's peak rate (Lewis & Shedler 1979).

Each request carries draws in *text* units (its own prompt and answer in source tokens, a
shared-prefix variant, session turns) and two uniform draws: one picks its fleet (the
target when below the class's target share at arrival), one decides whether a copy is
mirrored to the target (below the shadow share). A fleet turns the draws into its own
request (:class:`FleetView`): on the target, prompt and answer tokens scale by the class's
tokenizer ratio (per request; the shared prefix uses the mean), reasoning tokens come from
the target's reasoning mode, and prefix-cache keys live in the target's own namespace (a
new tokenizer shares no token ids with the old one: nothing cached on the source matches).
Multi-turn sessions stay on the fleet of their first turn; a follow-up's draws depend only
on (seed, session, turn), and the fleet decides whether reasoning stays in the history.
Mirrored copies answer single turns only (no follow-ups).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from planner.migrate.schema import (
    HOURS_PER_DAY,
    MAX_MIGRATION_HOURS,
    SECONDS_PER_HOUR,
    MigrationClass,
    MigrationScenario,
    Traffic,
)
from planner.migrate.timeline import SOURCE, TARGET, shadow_share, target_share
from planner.schema import (
    DEFAULT_REASONING_MODES,
    ReasoningMode,
    ReasoningModeSpec,
    SessionSpec,
)
from planner.sim.request import Request
from planner.sim.workload import (
    follow_up_context,
    request_keys,
    sample,
    sample_tokens,
    system_prompt_keys,
)

IntArray = np.ndarray
# Stream tags (default_rng([seed, tag, class, hour]) for open-loop draws).
_ARRIVAL = 101
_THIN = 102
_OWN = 103
_ANSWER = 104
_VARIANT = 105
_TURNS = 106
_ROUTE = 107
_MIRROR = 108
_RATIO = 109
_REASON = 110  # + fleet namespace
_SESSION = 120  # follow-up turns: default_rng([seed, _SESSION, session, turn])
_SESSION_REASON = 121
# Prefix-key namespaces per fleet (the simulator's single-fleet workloads use 1-3).
_KEY_NAMESPACE = {SOURCE: 0, TARGET: 1}
_SYSTEM_CLASS_OFFSET = 1_000  # system-prompt keys of fleet ns use class index + ns x this
_OWN_CONTENT = 20  # + ns
_TURN_CONTENT = 30  # + ns
# Request ids: (hour, class) blocks of 2^32 ids; mirrored copies and follow-ups above.
_RID_BLOCK_BITS = 32
_MAX_CLASSES_BITS = 8
# Hours before hour 0 (a warm-up lead) draw as hour PRE_START_HOURS + hour: a whole number
# of days (the same hour of the day) past the longest migration.
PRE_START_HOURS = 24 * (MAX_MIGRATION_HOURS // 24 + 10)
MIRROR_RID_OFFSET = 1 << 80
FOLLOW_UP_RID_OFFSET = 1 << 100
MAX_SESSION_TURNS = 1000


def class_rate_per_s(traffic: Traffic, share_percent: float, t_s: np.ndarray) -> np.ndarray:
    """A class's arrival rate at times t: mean x share x (1 + A cos(2 pi (h - peak) / 24))."""
    hours = np.asarray(t_s, dtype=np.float64) / SECONDS_PER_HOUR
    daily = 1.0 + traffic.daily_amplitude * np.cos(
        2 * np.pi * (hours - traffic.peak_hour) / HOURS_PER_DAY
    )
    return traffic.rate_per_s * share_percent / 100.0 * daily


def expected_requests(s: MigrationScenario, start_h: float, end_h: float) -> float:
    """Mean open-loop requests in [start_h, end_h) over all classes (follow-ups not counted)."""
    t = np.linspace(start_h, end_h, max(2, int((end_h - start_h) * 12) + 1)) * SECONDS_PER_HOUR
    total = sum(class_rate_per_s(s.traffic, c.share_percent, t) for c in s.traffic.classes)
    return float(np.trapezoid(total, t)) if t[-1] > t[0] else 0.0


@dataclass
class Block:
    """Open-loop draws of one class in one hour (text units)."""

    class_index: int
    hour: int
    arrival_s: np.ndarray
    own: IntArray
    answer: IntArray
    variant: IntArray
    turns: IntArray
    route_u: np.ndarray
    mirror_u: np.ndarray
    ratio: np.ndarray

    def rid(self, i: int) -> int:
        return (((self.hour << _MAX_CLASSES_BITS) + self.class_index) << _RID_BLOCK_BITS) + i


def _rng(seed: int, tag: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag, *key])


def draw_block(s: MigrationScenario, class_index: int, hour: int) -> Block:
    """The class's open-loop draws in an hour. An hour before the migration (negative: the
    source's warm-up lead before hour 0) is drawn as hour ``PRE_START_HOURS + hour``, past
    any real hour and on the same hour of the day, and moved back to its own times: its
    streams and request ids are its own."""
    cls = s.traffic.classes[class_index]
    seed = s.seed
    if hour < 0:
        if hour < -PRE_START_HOURS:
            raise ValueError(f"hour {hour} is more than {PRE_START_HOURS} h before the start")
        block = draw_block(s, class_index, PRE_START_HOURS + hour)
        block.arrival_s = block.arrival_s - PRE_START_HOURS * SECONDS_PER_HOUR
        return block
    key = (class_index, hour)
    start = hour * SECONDS_PER_HOUR
    grid = np.linspace(start, start + SECONDS_PER_HOUR, 61)
    peak = float(np.max(class_rate_per_s(s.traffic, cls.share_percent, grid))) * 1.001
    arrivals = np.zeros(0)
    if peak > 0:
        rng = _rng(seed, _ARRIVAL, *key)
        count = int(rng.poisson(peak * SECONDS_PER_HOUR))
        candidates = np.sort(rng.uniform(start, start + SECONDS_PER_HOUR, count))
        keep = _rng(seed, _THIN, *key).uniform(0, peak, count) < class_rate_per_s(
            s.traffic, cls.share_percent, candidates
        )
        arrivals = candidates[keep]
    n = len(arrivals)
    variants = (
        _rng(seed, _VARIANT, *key).integers(0, cls.system_prompt_variants, n)
        if cls.system_prompt_variants > 1
        else np.zeros(n, dtype=np.int64)
    )
    turns = (
        np.minimum(sample_tokens(cls.session.turns, _rng(seed, _TURNS, *key), n), MAX_SESSION_TURNS)
        if cls.session is not None
        else np.zeros(n, dtype=np.int64)
    )
    ratio_spec = cls.target.tokenizer_ratio
    if ratio_spec.sigma > 0:
        mu = math.log(ratio_spec.mean) - ratio_spec.sigma**2 / 2
        ratio = _rng(seed, _RATIO, *key).lognormal(mu, ratio_spec.sigma, n)
    else:
        ratio = np.full(n, ratio_spec.mean)
    return Block(
        class_index=class_index,
        hour=hour,
        arrival_s=arrivals,
        own=sample_tokens(cls.input_tokens, _rng(seed, _OWN, *key), n),
        answer=sample_tokens(cls.output_tokens, _rng(seed, _ANSWER, *key), n),
        variant=np.asarray(variants, dtype=np.int64),
        turns=turns,
        route_u=_rng(seed, _ROUTE, *key).random(n),
        mirror_u=_rng(seed, _MIRROR, *key).random(n),
        ratio=ratio,
    )


@dataclass(frozen=True, slots=True)
class _SessionState:
    class_index: int
    turns: int
    ratio: float


class FleetView:
    """The requests one fleet serves, in its own tokens and prefix keys.

    ``class_index`` of a request is the class's index, plus the number of classes for a
    mirrored copy (so metrics keep production and mirrored traffic apart).
    """

    def __init__(self, s: MigrationScenario, fleet: str, max_context_tokens: int) -> None:
        self.s = s
        self.fleet = fleet
        self.ns = _KEY_NAMESPACE[fleet]
        self.classes = s.traffic.classes
        self.n_classes = len(self.classes)
        self.block_tokens = s.block_tokens
        self.max_context_tokens = max_context_tokens
        spec = s.fleets.source if fleet == SOURCE else s.fleets.target
        self._modes = [self._mode(spec.reasoning_modes, c) for c in self.classes]
        self._sessions_spec: list[SessionSpec | None] = [
            c.session.model_copy(update={"keep_reasoning": self._keep(c)}) if c.session else None
            for c in self.classes
        ]
        self._system_keys: dict[tuple[int, int], list[int]] = {}
        self._sessions: dict[int, _SessionState] = {}

    # ------------------------------------------------------------------ per-fleet rules
    def _mode(
        self, overrides: dict[ReasoningMode, ReasoningModeSpec], cls: MigrationClass
    ) -> ReasoningModeSpec:
        mode = cls.source.reasoning_mode if self.fleet == SOURCE else cls.target.reasoning_mode
        return overrides.get(mode) or DEFAULT_REASONING_MODES[mode]

    def _keep(self, cls: MigrationClass) -> bool:
        return cls.source.keep_reasoning if self.fleet == SOURCE else cls.target.keep_reasoning

    def scale(self, tokens: int, ratio: float) -> int:
        """Tokens on this fleet for text of ``tokens`` source tokens."""
        if self.fleet == SOURCE:
            return tokens
        return max(1, round(tokens * ratio))

    def system_tokens(self, class_index: int) -> int:
        cls = self.classes[class_index]
        base = cls.system_prompt_tokens
        if self.fleet == TARGET and base:
            base = max(1, round(base * cls.target.tokenizer_ratio.mean))
        return base + self._modes[class_index].extra_system_prompt_tokens

    def shared_prefix_keys(self, class_index: int, variant: int) -> list[int]:
        """Keys of the full blocks of a class's shared prefix (variant) on this fleet."""
        key = (class_index, variant)
        keys = self._system_keys.get(key)
        if keys is None:
            blocks = self.system_tokens(class_index) // self.block_tokens
            keys = system_prompt_keys(class_index + self.ns * _SYSTEM_CLASS_OFFSET, variant, blocks)
            self._system_keys[key] = keys
        return keys

    def _reasoning(self, class_index: int, rng: np.random.Generator, n: int) -> IntArray:
        return sample_tokens(self._modes[class_index].reasoning_tokens, rng, n, minimum=0)

    # ------------------------------------------------------------------ open loop
    def tokens(self, block: Block) -> tuple[IntArray, IntArray, IntArray]:
        """(prompt, output, reasoning) tokens of every request of a block on this fleet."""
        c = block.class_index
        n = len(block.arrival_s)
        reasoning = self._reasoning(c, _rng(self.s.seed, _REASON + self.ns, c, block.hour), n)
        own, answer = block.own, block.answer
        if self.fleet == TARGET:
            own = np.maximum(1, np.rint(own * block.ratio)).astype(np.int64)
            answer = np.maximum(1, np.rint(answer * block.ratio)).astype(np.int64)
        return self.system_tokens(c) + own, answer + reasoning, reasoning

    def placement(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        """(routed to this fleet, mirrored to it) for every request of a block."""
        name = self.classes[block.class_index].name
        to_target = block.route_u < target_share(self.s, name, block.arrival_s)
        if self.fleet == SOURCE:
            return ~to_target, np.zeros(len(to_target), dtype=bool)
        mirrored = ~to_target & (block.mirror_u < shadow_share(self.s, name, block.arrival_s))
        return to_target, mirrored

    def requests(self, block: Block, start_s: float, end_s: float) -> list[Request]:
        """This fleet's requests of a block arriving in [start_s, end_s): routed here, or
        (target) mirrored copies."""
        here, mirrored = self.placement(block)
        inside = (block.arrival_s >= start_s) & (block.arrival_s < end_s)
        chosen = np.flatnonzero(inside & (here | mirrored))
        if not chosen.size:
            return []
        inputs, outputs, reasoning = self.tokens(block)
        return [
            self._open_request(
                block, i, int(inputs[i]), int(outputs[i]), int(reasoning[i]), bool(mirrored[i])
            )
            for i in chosen.tolist()
        ]

    def _open_request(
        self,
        block: Block,
        i: int,
        input_tokens: int,
        output_tokens: int,
        reasoning: int,
        mirrored: bool,
    ) -> Request:
        c = block.class_index
        rid = block.rid(i) + (MIRROR_RID_OFFSET if mirrored else 0)
        turns = 0 if mirrored else int(block.turns[i])
        session_id = rid if turns > 0 else -1
        if session_id >= 0:
            self._sessions[session_id] = _SessionState(c, turns, float(block.ratio[i]))
        total = input_tokens + output_tokens
        keys: list[int] = []
        if total <= self.max_context_tokens:
            covered = total if session_id >= 0 else input_tokens
            shared = self.shared_prefix_keys(c, int(block.variant[i]))
            keys = request_keys(shared, covered // self.block_tokens, _OWN_CONTENT + self.ns, rid)
        return Request(
            rid=rid,
            arrival_s=float(block.arrival_s[i]),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            class_index=c + (self.n_classes if mirrored else 0),
            block_keys=keys,
            reasoning_tokens=reasoning,
            session_id=session_id,
            turn=0,
        )

    # ------------------------------------------------------------------ closed loop
    def next_turn(self, finished: Request, now_s: float, end_s: float) -> Request | None:
        """The session's next turn after ``finished`` completed at ``now_s`` (None when the
        session is over or the turn would arrive at or after ``end_s``)."""
        info = self._sessions.get(finished.session_id)
        if info is None:
            return None
        turn = finished.turn + 1
        if turn >= info.turns:
            self._sessions.pop(finished.session_id, None)
            return None
        cls = self.classes[info.class_index]
        session = self._sessions_spec[info.class_index]
        assert cls.session is not None and session is not None
        s = self.s
        rng = _rng(s.seed, _SESSION, finished.session_id, turn)
        think_s = max(0.0, float(sample(cls.session.think_time_s, rng, 1)[0]))
        new_user = self.scale(
            int(sample_tokens(cls.session.new_user_tokens, rng, 1)[0]), info.ratio
        )
        answer = self.scale(int(sample_tokens(cls.output_tokens, rng, 1)[0]), info.ratio)
        reasoning = int(
            self._reasoning(
                info.class_index,
                _rng(s.seed, _SESSION_REASON + self.ns, finished.session_id, turn),
                1,
            )[0]
        )
        arrival = now_s + think_s
        if arrival >= end_s:
            self._sessions.pop(finished.session_id, None)
            return None
        carried, reused = follow_up_context(finished, session)
        input_tokens = carried + new_user
        output_tokens = answer + reasoning
        keys: list[int] = []
        if input_tokens + output_tokens <= self.max_context_tokens:
            keys = request_keys(
                finished.block_keys[: reused // self.block_tokens],
                (input_tokens + output_tokens) // self.block_tokens,
                _TURN_CONTENT + self.ns,
                finished.session_id,
                turn,
            )
        return Request(
            rid=FOLLOW_UP_RID_OFFSET + finished.session_id * MAX_SESSION_TURNS + turn,
            arrival_s=arrival,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            class_index=finished.class_index,
            block_keys=keys,
            reasoning_tokens=reasoning,
            session_id=finished.session_id,
            turn=turn,
        )

    def end_session(self, request: Request) -> None:
        """Forget a session whose turn was rejected (no follow-up will come)."""
        self._sessions.pop(request.session_id, None)


def stream(view: FleetView, start_s: float, end_s: float) -> Iterator[Request]:
    """The fleet's open-loop requests arriving in [start_s, end_s), in arrival order
    (hour by hour; within an hour, classes merged by time, then rid)."""
    first = math.floor(start_s / SECONDS_PER_HOUR)
    last = math.ceil(end_s / SECONDS_PER_HOUR)
    for hour in range(first, last):
        hour_requests: list[Request] = []
        for c in range(view.n_classes):
            hour_requests += view.requests(draw_block(view.s, c, hour), start_s, end_s)
        hour_requests.sort(key=lambda r: (r.arrival_s, r.rid))
        yield from hour_requests
