"""Workloads: the requests a simulation serves, synthetic or replayed from a trace.

Synthetic traffic is an arrival process (Poisson, gamma renewal, piecewise-constant or
diurnal non-homogeneous Poisson) with a mix of request classes. A class draws its prompt and
answer lengths from distributions (constant, lognormal given its mean and log-space sigma,
or empirical from a file) and adds the reasoning tokens of its reasoning mode. Every prompt
is the class's shared system prompt (one of ``system_prompt_variants``; think-max prepends
its extra system prompt) followed by the request's own tokens, and carries prefix-cache keys
for its full ``block_tokens`` blocks (:func:`planner.sim.request.chain_keys`): blocks that
lie wholly inside the shared system prompt get content shared by every request with that
prompt; every other block is unique to its request.

Multi-turn sessions are closed loops: the first turn is an open-loop arrival; when a turn
finishes, the simulator asks :meth:`Workload.next_turn` for the next one, which arrives after
the user's think time and whose prompt extends the previous context (with or without the
reasoning tokens, ``SessionSpec.keep_reasoning``). A follow-up's random draws depend only on
(seed, session id, turn), never on simulated timing.

Traces: Mooncake JSONL (FAST'25 release format: ``timestamp`` ms, ``input_length``,
``output_length``, ``hash_ids`` of 512-token blocks) and a plain CSV
(``timestamp_s,input_tokens,output_tokens``).

Every random process draws from its own ``np.random.default_rng`` stream derived from the
scenario seed, so the same seed gives identical requests and changing one class does not
shift another's draws.

Formulas: a lognormal with mean m and log-space sigma s has mu = ln(m) - s^2/2 (since
E[X] = exp(mu + s^2/2)); a gamma with mean 1/rate and coefficient of variation cv has shape
1/cv^2 and scale cv^2/rate; a non-homogeneous Poisson process is sampled by thinning a
homogeneous one at the peak rate (Lewis & Shedler 1979).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from planner.errors import ConfigError
from planner.io import MAX_LINE_BYTES, MAX_TRACE_BYTES, parse_json, read_text
from planner.limits import (
    MAX_DURATION_S,
    MAX_EXPECTED_ARRIVALS,
    MAX_FOLLOW_UP_TURNS,
    MAX_PREFIX_BLOCKS,
)
from planner.schema import (
    ConstantDist,
    DiurnalArrivals,
    EmpiricalDist,
    GammaArrivals,
    LognormalDist,
    PiecewiseArrivals,
    PoissonArrivals,
    SessionSpec,
    SLOSpec,
    TraceSpec,
    WorkloadClass,
    WorkloadSpec,
)
from planner.sim.request import Request, chain_keys
from planner.units import MAX_TOKEN_COUNT

Dist = ConstantDist | LognormalDist | EmpiricalDist
ArrivalSpec = PoissonArrivals | GammaArrivals | PiecewiseArrivals | DiurnalArrivals
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MOONCAKE_BLOCK_TOKENS = 512
MS_PER_S = 1000.0  # Mooncake timestamps are milliseconds
# A renewal process may draw this many gaps before it must have covered the duration (the
# schema bounds the mean count at MAX_EXPECTED_ARRIVALS; a very bursty gamma can need more).
RENEWAL_DRAW_LIMIT = 10 * MAX_EXPECTED_ARRIVALS
FOLLOW_UP_RID_OFFSET = 10**9
TRACE_CLASS_NAME = "trace"

# Stream tags: each random process gets default_rng([seed, tag, ...]).
_ARRIVALS = 1
_CLASSES = 2
_INPUT = 3
_OUTPUT = 4
_REASONING = 5
_VARIANT = 6
_TURNS = 7
_SESSION = 8

# Content-id namespaces (the first element of the hashed tuple).
_SYSTEM_CONTENT = 1
_REQUEST_CONTENT = 2
_TURN_CONTENT = 3


# --------------------------------------------------------------------------- distributions
@lru_cache(maxsize=64)
def _empirical_values(path: str, column: str | None, mtime_ns: int) -> FloatArray:
    del mtime_ns  # part of the cache key only: a changed file is read again
    where = path
    text = read_text(path, max_bytes=MAX_TRACE_BYTES, what="empirical distribution file")
    values: list[float] = []
    if column is None:
        for lineno, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            values.append(_number(stripped, f"{where}:{lineno}", "value"))
    else:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ConfigError(
                "CSV has no such column",
                where=where,
                field="column",
                value=column,
                expected=("one of " + ", ".join(reader.fieldnames))
                if reader.fieldnames
                else "a header line",
            )
        for lineno, row in enumerate(reader, start=2):
            cell = (row.get(column) or "").strip()
            if not cell:
                continue
            values.append(_number(cell, f"{where}:{lineno}", column))
    if not values:
        raise ConfigError("empirical distribution file has no numbers", where=where)
    array = np.asarray(values, dtype=np.float64)
    if np.any(~np.isfinite(array)) or np.any(array < 0):
        raise ConfigError(
            "empirical distribution values must be finite and >= 0",
            where=where,
            expected="non-negative numbers",
        )
    return array


def _number(text: str, where: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError("not a number", where=where, field=field, value=text) from None


def empirical_values(dist: EmpiricalDist) -> FloatArray:
    """The numbers of an empirical distribution's file (cached while the file is unchanged)."""
    path = os.path.abspath(dist.file)
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except OSError:
        raise ConfigError("empirical distribution file not found", where=dist.file) from None
    return _empirical_values(path, dist.column, mtime_ns)


def sample(dist: Dist, rng: np.random.Generator, n: int) -> FloatArray:
    """``n`` draws from ``dist`` as floats."""
    if isinstance(dist, ConstantDist):
        return np.full(n, float(dist.value))
    if isinstance(dist, LognormalDist):
        if dist.sigma == 0:  # exact, and no draws consumed
            values: FloatArray = np.full(n, float(dist.mean))
        else:
            mu = math.log(dist.mean) - dist.sigma**2 / 2
            values = rng.lognormal(mu, dist.sigma, n)
        upper = dist.max if dist.max is not None else np.inf
        clipped: FloatArray = np.clip(values, dist.min, upper)
        return clipped
    if isinstance(dist, EmpiricalDist):
        return np.asarray(rng.choice(empirical_values(dist), size=n), dtype=np.float64)
    raise TypeError(f"unknown distribution {dist!r}")


def sample_tokens(dist: Dist, rng: np.random.Generator, n: int, minimum: int = 1) -> IntArray:
    """``n`` token counts from ``dist``: rounded to ints, at least ``minimum`` and at most
    the global token cap (a lognormal without ``max`` has an unbounded tail; a draw above
    the cap counts as the cap, longer than any model's context, and is rejected as such)."""
    drawn = np.clip(np.rint(sample(dist, rng, n)), minimum, MAX_TOKEN_COUNT)
    return drawn.astype(np.int64)


# --------------------------------------------------------------------------- arrivals
def _renewal(
    draw: Callable[[np.random.Generator, int], FloatArray],
    mean_gap_s: float,
    rng: np.random.Generator,
    duration_s: float,
) -> FloatArray:
    """Cumulative sums of i.i.d. gaps (``draw(rng, size)``) that fall in [0, duration_s)."""
    expected = duration_s / mean_gap_s
    chunk = int(expected + 6 * math.sqrt(expected) + 16)
    parts: list[FloatArray] = []
    start = 0.0
    drawn = 0
    while True:
        times = start + np.cumsum(draw(rng, chunk))
        parts.append(times)
        if times[-1] >= duration_s:
            break
        start = float(times[-1])
        drawn += chunk
        if drawn > RENEWAL_DRAW_LIMIT:
            raise ConfigError(
                f"the arrival process drew {drawn:,} arrivals without reaching duration_s "
                f"{duration_s:g} (far more than its mean); lower the burstiness (cv)",
                field="workload.arrival",
            )
    times = np.concatenate(parts)
    return times[times < duration_s]


def _piecewise(
    points: Sequence[tuple[float, float]], rng: np.random.Generator, duration_s: float
) -> FloatArray:
    starts = [p[0] for p in points]
    parts: list[FloatArray] = []
    for i, (start, rate) in enumerate(points):
        end = min(starts[i + 1] if i + 1 < len(points) else duration_s, duration_s)
        if end <= start or rate <= 0:
            continue
        count = rng.poisson(rate * (end - start))
        parts.append(rng.uniform(start, end, count))
    if not parts:
        return np.zeros(0)
    return np.sort(np.concatenate(parts))


def diurnal_rate(spec: DiurnalArrivals, t_s: FloatArray) -> FloatArray:
    """Arrival rate per second at times ``t_s``."""
    phase = 2 * np.pi * (np.asarray(t_s) - spec.phase_s) / spec.period_s
    return spec.mean_rate_per_s * (1 + spec.amplitude * np.sin(phase))


def _diurnal(spec: DiurnalArrivals, rng: np.random.Generator, duration_s: float) -> FloatArray:
    peak = spec.mean_rate_per_s * (1 + spec.amplitude)
    count = rng.poisson(peak * duration_s)
    candidates = np.sort(rng.uniform(0, duration_s, count))
    keep = rng.uniform(0, peak, count) < diurnal_rate(spec, candidates)
    return candidates[keep]


def arrival_times(spec: ArrivalSpec, rng: np.random.Generator, duration_s: float) -> FloatArray:
    """Sorted arrival times in [0, duration_s) for an arrival process."""
    if duration_s <= 0:
        return np.zeros(0)
    if isinstance(spec, PoissonArrivals):
        rate = spec.rate_per_s
        times = _renewal(lambda g, n: g.exponential(1 / rate, n), 1 / rate, rng, duration_s)
    elif isinstance(spec, GammaArrivals):
        shape = 1 / spec.cv**2
        scale = 1 / (spec.rate_per_s * shape)
        times = _renewal(
            lambda g, n: g.gamma(shape, scale, n), 1 / spec.rate_per_s, rng, duration_s
        )
    elif isinstance(spec, PiecewiseArrivals):
        times = _piecewise(spec.points, rng, duration_s)
    elif isinstance(spec, DiurnalArrivals):
        times = _diurnal(spec, rng, duration_s)
    else:
        raise TypeError(f"unknown arrival process {spec!r}")
    return times.astype(np.float64)


# --------------------------------------------------------------------------- prefix keys
def _content(namespace: int, owner: int, turn: int, start: int, stop: int) -> list[int]:
    """Content ids of blocks start..stop-1 of one request: ``base + block index`` with a base
    hashed from (namespace, owner, turn), so they are unique to that request."""
    base = hash((namespace, owner, turn))
    return list(range(base + start, base + stop))


def system_prompt_keys(class_index: int, variant: int, blocks: int) -> list[int]:
    """Chained keys of the full blocks of a shared system prompt."""
    return chain_keys([hash((_SYSTEM_CONTENT, class_index, variant, b)) for b in range(blocks)])


def request_keys(
    shared: list[int], total_blocks: int, namespace: int, owner: int, turn: int = 0
) -> list[int]:
    """``shared`` leading keys, then keys of content unique to (namespace, owner, turn)."""
    shared = shared[:total_blocks]
    parent = shared[-1] if shared else 0
    own = chain_keys(_content(namespace, owner, turn, len(shared), total_blocks), parent)
    return shared + own


# --------------------------------------------------------------------------- workload
@dataclass(frozen=True, slots=True)
class _Session:
    class_index: int
    turns: int


class Workload:
    """Open-loop requests in arrival order, plus follow-up turns of multi-turn sessions.

    ``requests()`` builds fresh Request objects on every call (the simulator mutates them)
    and restarts the follow-up rid counter, so one Workload can drive several runs.
    """

    def __init__(
        self,
        *,
        class_names: list[str],
        slos: list[SLOSpec],
        block_tokens: int,
        duration_s: float,
        seed: int,
        arrivals_s: FloatArray,
        class_index: IntArray,
        input_tokens: IntArray,
        output_tokens: IntArray,
        reasoning_tokens: IntArray,
        system_tokens: IntArray,
        variant: IntArray,
        session_id: IntArray,
        classes: list[WorkloadClass] | None = None,
        spec: WorkloadSpec | None = None,
        sessions: dict[int, _Session] | None = None,
        trace_keys: list[list[int]] | None = None,
        max_context_tokens: int = MAX_TOKEN_COUNT,
    ) -> None:
        self.class_names = class_names
        self.slos = slos
        self.block_tokens = block_tokens
        self.duration_s = duration_s
        self.seed = seed
        self._arrivals = arrivals_s
        self._class = class_index
        self._input = input_tokens
        self._output = output_tokens
        self._reasoning = reasoning_tokens
        self._system = system_tokens
        self._variant = variant
        self._session = session_id
        self._classes = classes or []
        self._spec = spec
        self._sessions = sessions or {}
        self._trace_keys = trace_keys
        self._system_keys: dict[tuple[int, int], list[int]] = {}
        self._follow_ups = 0
        # Requests longer than this are rejected on arrival: they get no prefix keys, so a
        # 2^40-token prompt never builds 2^31 of them.
        self.max_context_tokens = max_context_tokens

    def __len__(self) -> int:
        """Open-loop requests (follow-up turns not included)."""
        return len(self._arrivals)

    @property
    def has_sessions(self) -> bool:
        return bool(self._sessions)

    @property
    def class_modes(self) -> list[str]:
        """Reasoning mode of each class (``non-think`` for traces)."""
        return [c.reasoning_mode for c in self._classes] or ["non-think"]

    def _shared_keys(self, class_index: int, variant: int, system_tokens: int) -> list[int]:
        key = (class_index, variant)
        keys = self._system_keys.get(key)
        if keys is None:
            keys = system_prompt_keys(class_index, variant, system_tokens // self.block_tokens)
            self._system_keys[key] = keys
        return keys

    def requests(self) -> Iterator[Request]:
        self._follow_ups = 0
        block = self.block_tokens
        arrivals = self._arrivals.tolist()
        classes = self._class.tolist()
        inputs = self._input.tolist()
        outputs = self._output.tolist()
        reasoning = self._reasoning.tolist()
        system = self._system.tolist()
        variants = self._variant.tolist()
        sessions = self._session.tolist()
        for rid, arrival in enumerate(arrivals):
            if self._trace_keys is not None:
                keys = self._trace_keys[rid]
            elif inputs[rid] + outputs[rid] > self.max_context_tokens:
                keys = []  # rejected on arrival as longer than the model's context
            else:
                cls, inp, session = classes[rid], inputs[rid], sessions[rid]
                covered = inp + outputs[rid] if session >= 0 else inp
                shared = self._shared_keys(cls, variants[rid], system[rid])
                keys = request_keys(shared, covered // block, _REQUEST_CONTENT, rid)
            yield Request(
                rid=rid,
                arrival_s=arrival,
                input_tokens=inputs[rid],
                output_tokens=outputs[rid],
                class_index=classes[rid],
                block_keys=keys,
                reasoning_tokens=reasoning[rid],
                session_id=sessions[rid],
                turn=0,
            )

    def next_turn(self, finished: Request, now_s: float) -> Request | None:
        """The session's next turn after ``finished`` completed at ``now_s``, or None when
        the session is over (last turn reached, or the turn would arrive at or after
        ``duration_s``: arrivals stop then)."""
        info = self._sessions.get(finished.session_id)
        if info is None or finished.turn + 1 >= info.turns:
            return None
        assert self._spec is not None
        turn = finished.turn + 1
        cls = self._classes[info.class_index]
        session = cls.session
        assert session is not None
        rng = np.random.default_rng([self.seed, _SESSION, finished.session_id, turn])
        think_s = max(0.0, float(sample(session.think_time_s, rng, 1)[0]))
        new_user = int(sample_tokens(session.new_user_tokens, rng, 1)[0])
        answer = int(sample_tokens(cls.output_tokens, rng, 1)[0])
        mode = self._spec.reasoning(cls.reasoning_mode)
        reasoning = int(sample_tokens(mode.reasoning_tokens, rng, 1, minimum=0)[0])
        arrival = now_s + think_s
        if arrival >= self.duration_s:
            return None
        carried, reused = follow_up_context(finished, session)
        input_tokens = carried + new_user
        output_tokens = answer + reasoning
        block = self.block_tokens
        keys = (
            []  # rejected on arrival as longer than the model's context
            if input_tokens + output_tokens > self.max_context_tokens
            else request_keys(
                finished.block_keys[: reused // block],
                (input_tokens + output_tokens) // block,
                _TURN_CONTENT,
                finished.session_id,
                turn,
            )
        )
        if self._follow_ups >= MAX_FOLLOW_UP_TURNS:
            raise ConfigError(
                f"the sessions generated more than {MAX_FOLLOW_UP_TURNS:,} follow-up turns "
                "in one run; lower the turns, the rate or the duration",
                field="workload.classes.session.turns",
            )
        rid = FOLLOW_UP_RID_OFFSET + self._follow_ups
        self._follow_ups += 1
        return Request(
            rid=rid,
            arrival_s=arrival,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            class_index=finished.class_index,
            block_keys=keys,
            reasoning_tokens=reasoning,
            session_id=finished.session_id,
            turn=turn,
        )


def follow_up_context(finished: Request, session: SessionSpec) -> tuple[int, int]:
    """(tokens of history the next turn's prompt carries, leading tokens of it whose KV the
    finished turn computed in the same order and so can be reused)."""
    prompt, output = finished.input_tokens, finished.output_tokens
    if session.keep_reasoning:
        return prompt + output, prompt + output
    answer = output - finished.reasoning_tokens
    return prompt + answer, prompt


# --------------------------------------------------------------------------- synthetic
def _synthetic(
    spec: WorkloadSpec, duration_s: float, block_tokens: int, seed: int, max_context_tokens: int
) -> Workload:
    assert spec.arrival is not None
    classes = spec.classes
    arrivals = arrival_times(spec.arrival, np.random.default_rng([seed, _ARRIVALS]), duration_s)
    n = len(arrivals)
    shares = np.array([c.share for c in classes], dtype=np.float64)
    if len(classes) == 1:
        class_index = np.zeros(n, dtype=np.int64)
    else:
        class_index = (
            np.random.default_rng([seed, _CLASSES])
            .choice(len(classes), size=n, p=shares / shares.sum())
            .astype(np.int64)
        )
    own = np.zeros(n, dtype=np.int64)
    answer = np.zeros(n, dtype=np.int64)
    reasoning = np.zeros(n, dtype=np.int64)
    system = np.zeros(n, dtype=np.int64)
    variant = np.zeros(n, dtype=np.int64)
    turns = np.zeros(n, dtype=np.int64)
    for c, cls in enumerate(classes):
        idx = np.flatnonzero(class_index == c)
        m = len(idx)
        mode = spec.reasoning(cls.reasoning_mode)
        own[idx] = sample_tokens(cls.input_tokens, np.random.default_rng([seed, _INPUT, c]), m)
        answer[idx] = sample_tokens(cls.output_tokens, np.random.default_rng([seed, _OUTPUT, c]), m)
        reasoning[idx] = sample_tokens(
            mode.reasoning_tokens, np.random.default_rng([seed, _REASONING, c]), m, minimum=0
        )
        system[idx] = cls.system_prompt_tokens + mode.extra_system_prompt_tokens
        if cls.system_prompt_variants > 1:
            variant[idx] = np.random.default_rng([seed, _VARIANT, c]).integers(
                0, cls.system_prompt_variants, m
            )
        if cls.session is not None:
            turns[idx] = sample_tokens(
                cls.session.turns, np.random.default_rng([seed, _TURNS, c]), m
            )
    session_id = np.full(n, -1, dtype=np.int64)
    first_turns = np.flatnonzero(turns > 0)
    inputs = system + own
    outputs = answer + reasoning
    covered = np.where(turns > 0, inputs + outputs, inputs)
    keyed = np.where(inputs + outputs <= max_context_tokens, covered // block_tokens, 0)
    blocks = int(np.sum(keyed, dtype=np.float64))
    if blocks > MAX_PREFIX_BLOCKS:
        raise ConfigError(
            f"the requests span {blocks:,} prefix-cache blocks of {block_tokens} tokens; at "
            f"most {MAX_PREFIX_BLOCKS:,} per run (raise block_tokens, or lower the rate, "
            "the duration or the prompt lengths)",
            field="block_tokens",
            value=block_tokens,
        )
    session_id[first_turns] = np.arange(len(first_turns))
    sessions = {
        int(s): _Session(int(c), int(t))
        for s, c, t in zip(
            session_id[first_turns].tolist(),
            class_index[first_turns].tolist(),
            turns[first_turns].tolist(),
            strict=True,
        )
    }
    return Workload(
        class_names=[c.name for c in classes],
        slos=[c.slo for c in classes],
        block_tokens=block_tokens,
        duration_s=duration_s,
        seed=seed,
        arrivals_s=arrivals,
        class_index=class_index,
        input_tokens=inputs,
        output_tokens=outputs,
        reasoning_tokens=reasoning,
        system_tokens=system,
        variant=variant,
        session_id=session_id,
        classes=list(classes),
        spec=spec,
        sessions=sessions,
        max_context_tokens=max_context_tokens,
    )


# --------------------------------------------------------------------------- traces
def _open_lines(path: str | Path) -> list[str]:
    return read_text(path, max_bytes=MAX_TRACE_BYTES, what="trace file").splitlines()


def _count(value: object, where: str, field: str, minimum: int) -> int:
    expected = f"an integer from {minimum} to {MAX_TOKEN_COUNT:,} (2^40)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("not a number", where=where, field=field, value=value, expected=expected)
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(
            "not a whole number", where=where, field=field, value=value, expected=expected
        )
    if not minimum <= value <= MAX_TOKEN_COUNT:
        raise ConfigError("out of range", where=where, field=field, value=value, expected=expected)
    return int(value)


def _time(value: object, where: str, field: str, units_per_s: float = 1.0) -> float:
    """A trace timestamp in seconds: finite, >= 0 and within MAX_DURATION_S of the start
    (timestamps are relative to the trace's start, not Unix times)."""
    limit = MAX_DURATION_S * units_per_s
    expected = f"a number from 0 to {limit:,.0f}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            "not a finite number", where=where, field=field, value=value, expected=expected
        )
    if not 0 <= value <= limit:
        raise ConfigError(
            "time out of range (relative to the trace's start)",
            where=where,
            field=field,
            value=value,
            expected=expected,
        )
    return float(value) / units_per_s


def _sorted_requests(rows: list[tuple[float, int, int, list[int]]]) -> list[Request]:
    rows.sort(key=lambda row: row[0])  # stable: equal timestamps keep file order
    return [
        Request(rid=rid, arrival_s=t, input_tokens=i, output_tokens=o, block_keys=keys)
        for rid, (t, i, o, keys) in enumerate(rows)
    ]


def load_mooncake(
    path: str | Path, block_tokens: int = MOONCAKE_BLOCK_TOKENS, time_scale: float = 1.0
) -> list[Request]:
    """Requests of a Mooncake JSONL trace, sorted by arrival (rid = position).

    ``arrival_s = timestamp / 1000 * time_scale``; ``block_keys = chain_keys(hash_ids)``
    (every id, the partial last block's included).
    """
    if block_tokens != MOONCAKE_BLOCK_TOKENS:
        raise ConfigError(
            "Mooncake traces hash 512-token blocks",
            where=str(path),
            field="block_tokens",
            value=block_tokens,
            expected=str(MOONCAKE_BLOCK_TOKENS),
        )
    rows: list[tuple[float, int, int, list[int]]] = []
    for lineno, line in enumerate(_open_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if len(line) > MAX_LINE_BYTES:
            raise ConfigError(f"line longer than {MAX_LINE_BYTES:,} characters", where=where)
        record = parse_json(line, where)
        if not isinstance(record, dict):
            raise ConfigError("expected a JSON object", where=where)
        for field in ("timestamp", "input_length", "output_length"):
            if field not in record:
                raise ConfigError("missing field", where=where, field=field)
        arrival = _time(record["timestamp"], where, "timestamp", MS_PER_S) * time_scale
        input_tokens = _count(record["input_length"], where, "input_length", 1)
        output_tokens = _count(record["output_length"], where, "output_length", 1)
        hash_ids = record.get("hash_ids", [])
        if not isinstance(hash_ids, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) for h in hash_ids
        ):
            raise ConfigError("must be a list of integers", where=where, field="hash_ids")
        if len(hash_ids) > -(-input_tokens // block_tokens):
            raise ConfigError(
                "more block hashes than the prompt has blocks",
                where=where,
                field="hash_ids",
                value=len(hash_ids),
                expected=f"at most ceil(input_length / {block_tokens}) = "
                f"{-(-input_tokens // block_tokens)}",
            )
        rows.append((arrival, input_tokens, output_tokens, chain_keys(hash_ids)))
    if not rows:
        raise ConfigError("trace has no requests", where=str(path))
    return _sorted_requests(rows)


CSV_COLUMNS = ("timestamp_s", "input_tokens", "output_tokens")


def load_csv(path: str | Path, time_scale: float = 1.0) -> list[Request]:
    """Requests of a CSV trace with header ``timestamp_s,input_tokens,output_tokens``
    (other columns ignored), sorted by arrival. No prefix keys."""
    lines = _open_lines(path)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ConfigError(
            "trace has no header line", where=str(path), expected=",".join(CSV_COLUMNS)
        )
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            "header lacks a column",
            where=f"{path}:1",
            field=missing[0],
            expected="a header with " + ",".join(CSV_COLUMNS),
        )
    at = [header.index(c) for c in CSV_COLUMNS]
    rows: list[tuple[float, int, int, list[int]]] = []
    for lineno, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{path}:{lineno}"
        values: list[float] = []
        for column, index in zip(CSV_COLUMNS, at, strict=True):
            if index >= len(cells) or not cells[index].strip():
                raise ConfigError("missing value", where=where, field=column)
            values.append(_number(cells[index].strip(), where, column))
        arrival = _time(values[0], where, "timestamp_s") * time_scale
        input_tokens = _count(values[1], where, "input_tokens", 1)
        output_tokens = _count(values[2], where, "output_tokens", 1)
        rows.append((arrival, input_tokens, output_tokens, []))
    if not rows:
        raise ConfigError("trace has no requests", where=str(path))
    return _sorted_requests(rows)


def _trace(
    spec: WorkloadSpec, duration_s: float, block_tokens: int, seed: int, path: str
) -> Workload:
    trace = spec.trace
    assert trace is not None
    if trace.format == "mooncake":
        loaded = load_mooncake(path, block_tokens, trace.time_scale)
    else:
        loaded = load_csv(path, trace.time_scale)
    kept = [r for r in loaded if r.arrival_s < duration_s]
    n = len(kept)
    zeros = np.zeros(n, dtype=np.int64)
    return Workload(
        class_names=[TRACE_CLASS_NAME],
        slos=[trace.slo],
        block_tokens=block_tokens,
        duration_s=duration_s,
        seed=seed,
        arrivals_s=np.array([r.arrival_s for r in kept], dtype=np.float64),
        class_index=zeros,
        input_tokens=np.array([r.input_tokens for r in kept], dtype=np.int64),
        output_tokens=np.array([r.output_tokens for r in kept], dtype=np.int64),
        reasoning_tokens=zeros,
        system_tokens=zeros,
        variant=zeros,
        session_id=np.full(n, -1, dtype=np.int64),
        spec=spec,
        trace_keys=[r.block_keys for r in kept],
    )


def build_workload(
    spec: WorkloadSpec,
    *,
    duration_s: float,
    block_tokens: int,
    seed: int,
    trace_path: str | None = None,
    max_context_tokens: int = MAX_TOKEN_COUNT,
) -> Workload:
    """The workload a scenario describes: a trace when ``spec.trace`` is set (``trace_path``
    overrides its path, and turns a synthetic spec into a replay of that file: ``.csv`` as
    CSV, else Mooncake; only arrivals before ``duration_s`` are kept), else synthetic
    traffic over [0, duration_s). Relative file paths are taken from the current directory.
    Requests longer than ``max_context_tokens`` (the model's) get no prefix keys: the
    simulator rejects them on arrival.
    """
    if spec.trace is None and trace_path is not None:
        trace = TraceSpec.model_validate(
            {
                "path": trace_path,
                "format": "csv" if trace_path.lower().endswith(".csv") else "mooncake",
            }
        )
        spec = WorkloadSpec(trace=trace)
    if spec.trace is not None:
        return _trace(spec, duration_s, block_tokens, seed, trace_path or spec.trace.path)
    # numpy wants a seed >= 0
    return _synthetic(spec, duration_s, block_tokens, seed % 2**64, max_context_tokens)
