"""Workload generation: determinism, arrival statistics, prefix keys, sessions and traces.

Statistical checks use fixed seeds and tolerances of several standard errors, worked out in
the comments, so they pass by a wide margin rather than by luck of the seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from planner.errors import ConfigError, KvplanError
from planner.schema import (
    ConstantDist,
    DiurnalArrivals,
    EmpiricalDist,
    GammaArrivals,
    LognormalDist,
    PiecewiseArrivals,
    PoissonArrivals,
    ReasoningModeSpec,
    SessionSpec,
    SLOSpec,
    TraceSpec,
    WorkloadClass,
    WorkloadSpec,
)
from planner.sim.request import Request, chain_keys
from planner.sim.workload import (
    FOLLOW_UP_RID_OFFSET,
    arrival_times,
    build_workload,
    load_csv,
    load_mooncake,
    sample,
    sample_tokens,
)

SLO = SLOSpec(ttft_s=1.0, tpot_s=0.05)


def fields(r: Request) -> tuple[object, ...]:
    return (
        r.rid,
        r.arrival_s,
        r.input_tokens,
        r.output_tokens,
        r.class_index,
        tuple(r.block_keys),
        r.reasoning_tokens,
        r.session_id,
        r.turn,
    )


def mixed_spec() -> WorkloadSpec:
    session = SessionSpec(
        turns=LognormalDist(mean=3, sigma=0.5),
        think_time_s=LognormalDist(mean=5, sigma=0.5),
        new_user_tokens=LognormalDist(mean=200, sigma=0.5),
        keep_reasoning=True,
    )
    return WorkloadSpec(
        arrival=GammaArrivals(rate_per_s=20, cv=2),
        classes=[
            WorkloadClass(
                name="chat",
                share=3,
                input_tokens=LognormalDist(mean=800, sigma=1.0),
                output_tokens=LognormalDist(mean=200, sigma=0.8),
                system_prompt_tokens=2048,
                system_prompt_variants=3,
                slo=SLO,
            ),
            WorkloadClass(
                name="agent",
                share=1,
                input_tokens=LognormalDist(mean=5000, sigma=0.5),
                output_tokens=LognormalDist(mean=300, sigma=0.5),
                reasoning_mode="think-max",
                session=session,
                slo=SLOSpec(ttft_s=5, tpot_s=0.1),
            ),
        ],
    )


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_requests_and_different_seed_different() -> None:
    spec = mixed_spec()
    a = build_workload(spec, duration_s=60, block_tokens=64, seed=7)
    b = build_workload(spec, duration_s=60, block_tokens=64, seed=7)
    c = build_workload(spec, duration_s=60, block_tokens=64, seed=8)
    ra = [fields(r) for r in a.requests()]
    assert len(ra) > 500
    assert ra == [fields(r) for r in b.requests()]
    assert ra == [fields(r) for r in a.requests()]  # a second pass gives the same requests
    assert ra != [fields(r) for r in c.requests()]
    assert [r[0] for r in ra] == list(range(len(ra)))
    arrivals = [r[1] for r in ra]
    assert arrivals == sorted(arrivals) and arrivals[0] >= 0 and arrivals[-1] < 60
    assert a.class_names == ["chat", "agent"]
    assert a.slos == [SLO, SLOSpec(ttft_s=5, tpot_s=0.1)]


def test_follow_ups_depend_on_seed_session_and_turn_not_on_timing() -> None:
    spec = mixed_spec()
    a = build_workload(spec, duration_s=60, block_tokens=64, seed=7)
    b = build_workload(spec, duration_s=60, block_tokens=64, seed=7)
    first = next(r for r in a.requests() if r.session_id >= 0)
    b_first = next(r for r in b.requests() if r.session_id >= 0)
    early = a.next_turn(first, 1.0)
    late = b.next_turn(b_first, 3.0)
    assert early is not None and late is not None
    assert late.arrival_s == pytest.approx(early.arrival_s + 2.0)
    assert fields(early)[2:] == fields(late)[2:]
    assert early.rid == late.rid == FOLLOW_UP_RID_OFFSET
    again = a.next_turn(first, 1.0)
    assert again is not None and again.rid == FOLLOW_UP_RID_OFFSET + 1  # rids never repeat
    list(a.requests())  # a new pass restarts the follow-up counter
    restarted = a.next_turn(first, 1.0)
    assert restarted is not None and restarted.rid == FOLLOW_UP_RID_OFFSET


# --------------------------------------------------------------------------- distributions
def test_lognormal_mean_and_clipping() -> None:
    rng = np.random.default_rng(1)
    # Lognormal with sigma 1: sd = mean * sqrt(e - 1) = 1.31 mean; with 200k draws the
    # standard error of the sample mean is 0.29% of the mean, so 2% is about 7 SE.
    values = sample(LognormalDist(mean=1000, sigma=1.0, min=0), rng, 200_000)
    assert values.mean() == pytest.approx(1000, rel=0.02)
    clipped = sample(LognormalDist(mean=1000, sigma=1.0, min=100, max=3000), rng, 10_000)
    assert clipped.min() == 100 and clipped.max() == 3000
    assert np.all(sample(LognormalDist(mean=42, sigma=0), rng, 5) == 42)
    assert np.all(sample(ConstantDist(value=3.5), rng, 4) == 3.5)
    tokens = sample_tokens(ConstantDist(value=0.2), rng, 3)
    assert tokens.tolist() == [1, 1, 1]  # token counts are ints >= 1
    assert sample_tokens(ConstantDist(value=0), rng, 2, minimum=0).tolist() == [0, 0]


def test_empirical_from_lines_and_csv_column(tmp_path: Path) -> None:
    lines = tmp_path / "lengths.txt"
    lines.write_text("# input lengths\n10\n20\n\n30\n")
    values = sample(EmpiricalDist(file=str(lines)), np.random.default_rng(0), 3000)
    assert set(values.tolist()) == {10.0, 20.0, 30.0}
    table = tmp_path / "lengths.csv"
    table.write_text("id,tokens\n1,5\n2,7\n")
    values = sample(EmpiricalDist(file=str(table), column="tokens"), np.random.default_rng(0), 50)
    assert set(values.tolist()) == {5.0, 7.0}


def test_empirical_errors_name_file_and_problem(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match="nope.txt.*not found"):
        sample(EmpiricalDist(file=str(missing)), rng, 1)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ConfigError, match="empty.txt.*no numbers"):
        sample(EmpiricalDist(file=str(empty)), rng, 1)
    bad = tmp_path / "bad.txt"
    bad.write_text("12\ntwelve\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2.*'twelve'.*not a number"):
        sample(EmpiricalDist(file=str(bad)), rng, 1)
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="t.csv.*column.*'c'"):
        sample(EmpiricalDist(file=str(table), column="c"), rng, 1)
    assert issubclass(ConfigError, KvplanError)


# --------------------------------------------------------------------------- arrivals
def test_poisson_mean_interarrival() -> None:
    times = arrival_times(PoissonArrivals(rate_per_s=100), np.random.default_rng(3), 200.0)
    # ~20,000 exponential gaps: SE of their mean = mean / sqrt(20,000) = 0.7%; allow 3%.
    assert len(times) == pytest.approx(20_000, rel=0.03)
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(0.01, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    assert np.all(gaps >= 0) and times[0] >= 0 and times[-1] < 200


def test_gamma_mean_and_cv() -> None:
    times = arrival_times(GammaArrivals(rate_per_s=100, cv=3), np.random.default_rng(4), 2000.0)
    # ~200,000 gaps with cv 3: SE of the mean = 3 x mean / sqrt(200,000) = 0.67%; allow 3%.
    # Gamma shape k = 1/9 has excess kurtosis 6/k = 54, so the sample variance has relative
    # SE sqrt((2 + 54) / 200,000) = 1.7% and the sample CV about 0.85%; allow 5%.
    gaps = np.diff(times)
    assert len(gaps) > 150_000
    assert gaps.mean() == pytest.approx(0.01, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_piecewise_counts_per_segment() -> None:
    spec = PiecewiseArrivals(points=[(0, 50), (100, 200), (150, 0), (180, 10)])
    times = arrival_times(spec, np.random.default_rng(5), 200.0)
    # Expected counts: 50/s x 100 s = 5,000; 200/s x 50 s = 10,000; 0; 10/s x 20 s = 200.
    # Poisson SDs 71, 100, 0, 14: the tolerances below are 3.5 SD or more.
    counts = np.histogram(times, bins=[0, 100, 150, 180, 200])[0]
    assert counts[0] == pytest.approx(5_000, abs=250)
    assert counts[1] == pytest.approx(10_000, abs=350)
    assert counts[2] == 0
    assert counts[3] == pytest.approx(200, abs=50)
    assert np.all(np.diff(times) >= 0)


def test_diurnal_counts_follow_the_integrated_rate() -> None:
    spec = DiurnalArrivals(mean_rate_per_s=100, amplitude=0.5, period_s=100)
    times = arrival_times(spec, np.random.default_rng(6), 200.0)
    # Integral of 100 (1 + 0.5 sin(2 pi t / 100)) over [0, 50): 100 (50 + 0.5 x 100 / pi)
    # = 6,591.5 (high half); over [50, 100): 100 (50 - 15.92) = 3,408.5 (low half); each
    # half-period twice in 200 s. Poisson SD ~115 and ~83: allow 400 and 300.
    counts = np.histogram(times, bins=[0, 50, 100, 150, 200])[0]
    assert counts[0] == pytest.approx(6_591.5, abs=400)
    assert counts[2] == pytest.approx(6_591.5, abs=400)
    assert counts[1] == pytest.approx(3_408.5, abs=300)
    assert counts[3] == pytest.approx(3_408.5, abs=300)


def test_class_shares_are_normalised() -> None:
    spec = WorkloadSpec(
        arrival=PoissonArrivals(rate_per_s=200),
        classes=[
            WorkloadClass(
                name=n,
                share=s,
                input_tokens=ConstantDist(value=10),
                output_tokens=ConstantDist(value=5),
                slo=SLO,
            )
            for n, s in (("a", 3), ("b", 1))
        ],
    )
    requests = list(build_workload(spec, duration_s=100, block_tokens=16, seed=0).requests())
    # ~20,000 requests, share of class 0 = 3/4 with SE sqrt(0.75 x 0.25 / 20,000) = 0.3%.
    share = sum(r.class_index == 0 for r in requests) / len(requests)
    assert share == pytest.approx(0.75, abs=0.015)


# --------------------------------------------------------------------------- prefix keys
def test_shared_system_prompt_keys_and_unique_keys_elsewhere() -> None:
    # Block size 4; system prompt 10 tokens, own tokens 7: input 17 tokens = blocks
    # [0-3][4-7] wholly inside the system prompt (shared), [8-11] straddles it and
    # [12-15] is the request's own (unique); tokens 16 form no full block -> 4 keys.
    cls = WorkloadClass(
        name="chat",
        share=1,
        input_tokens=ConstantDist(value=7),
        output_tokens=ConstantDist(value=3),
        system_prompt_tokens=10,
        system_prompt_variants=2,
        slo=SLO,
    )
    spec = WorkloadSpec(arrival=PoissonArrivals(rate_per_s=50), classes=[cls])
    requests = list(build_workload(spec, duration_s=10, block_tokens=4, seed=1).requests())
    assert len(requests) > 100
    assert all(r.input_tokens == 17 and r.output_tokens == 3 for r in requests)
    assert all(len(r.block_keys) == 17 // 4 for r in requests)
    heads = {tuple(r.block_keys[:2]) for r in requests}
    assert len(heads) == 2  # one shared pair of keys per system-prompt variant
    assert len({h[0] for h in heads}) == 2
    tails = [k for r in requests for k in r.block_keys[2:]]
    assert len(tails) == len(set(tails)) == 2 * len(requests)  # unique to each request
    assert not set(tails) & {k for h in heads for k in h}


def test_think_max_extra_system_prompt_is_shared_and_reasoning_counted() -> None:
    # think-max overridden: 3 reasoning tokens, 4 extra system tokens. System prompt
    # 10 + 4 = 14 tokens (3 full blocks of 4, shared); own 7 -> input 21 (5 full blocks);
    # output = answer 3 + reasoning 3 = 6.
    cls = WorkloadClass(
        name="max",
        share=1,
        input_tokens=ConstantDist(value=7),
        output_tokens=ConstantDist(value=3),
        reasoning_mode="think-max",
        system_prompt_tokens=10,
        slo=SLO,
    )
    spec = WorkloadSpec(
        arrival=PoissonArrivals(rate_per_s=20),
        classes=[cls],
        reasoning_modes={
            "think-max": ReasoningModeSpec(
                reasoning_tokens=ConstantDist(value=3), extra_system_prompt_tokens=4
            )
        },
    )
    requests = list(build_workload(spec, duration_s=5, block_tokens=4, seed=2).requests())
    assert len(requests) > 20
    for r in requests:
        assert (r.input_tokens, r.output_tokens, r.reasoning_tokens) == (21, 6, 3)
        assert len(r.block_keys) == 5
        assert r.block_keys[:3] == requests[0].block_keys[:3]
    assert len({r.block_keys[3] for r in requests}) == len(requests)


def test_default_reasoning_modes_add_reasoning_tokens() -> None:
    cls = WorkloadClass(
        name="high",
        share=1,
        input_tokens=ConstantDist(value=100),
        output_tokens=ConstantDist(value=50),
        reasoning_mode="think-high",
        slo=SLO,
    )
    spec = WorkloadSpec(arrival=PoissonArrivals(rate_per_s=200), classes=[cls])
    requests = list(build_workload(spec, duration_s=50, block_tokens=64, seed=0).requests())
    reasoning = np.array([r.reasoning_tokens for r in requests])
    assert all(r.output_tokens == 50 + r.reasoning_tokens for r in requests)
    # Default think-high: lognormal mean 1,500, sigma 0.8, clipped at 32,768 (the clip
    # removes a negligible tail); ~10,000 draws, SE 0.9%: allow 4%.
    assert reasoning.mean() == pytest.approx(1500, rel=0.04)


# --------------------------------------------------------------------------- sessions
def session_workload(keep_reasoning: bool, turns: int = 3, duration_s: float = 100.0):
    # Block size 4; every turn: 6 answer + 3 reasoning = 9 output tokens, 5 new user tokens,
    # 2 s think time. First prompt: 10 tokens, no system prompt.
    cls = WorkloadClass(
        name="agent",
        share=1,
        input_tokens=ConstantDist(value=10),
        output_tokens=ConstantDist(value=6),
        reasoning_mode="think-high",
        session=SessionSpec(
            turns=ConstantDist(value=turns),
            think_time_s=ConstantDist(value=2),
            new_user_tokens=ConstantDist(value=5),
            keep_reasoning=keep_reasoning,
        ),
        slo=SLO,
    )
    spec = WorkloadSpec(
        arrival=PoissonArrivals(rate_per_s=1),
        classes=[cls],
        reasoning_modes={"think-high": ReasoningModeSpec(reasoning_tokens=ConstantDist(value=3))},
    )
    return build_workload(spec, duration_s=duration_s, block_tokens=4, seed=3)


def test_session_keep_reasoning_reuses_whole_previous_sequence() -> None:
    workload = session_workload(keep_reasoning=True)
    first = next(workload.requests())
    assert (first.session_id, first.turn) == (0, 0)
    assert (first.input_tokens, first.output_tokens) == (10, 9)
    # Session turns carry keys for the whole sequence: (10 + 9) // 4 = 4 blocks.
    assert len(first.block_keys) == 4
    second = workload.next_turn(first, now_s=first.arrival_s + 1.0)
    assert second is not None
    assert second.arrival_s == pytest.approx(first.arrival_s + 3.0)  # + think time 2 s
    assert (second.session_id, second.turn) == (0, 1)
    assert second.rid == FOLLOW_UP_RID_OFFSET
    # Prompt = 10 + 9 (reasoning kept) + 5 new = 24; output 9; keys (24 + 9) // 4 = 8,
    # the first 19 // 4 = 4 of them exactly the first turn's.
    assert (second.input_tokens, second.output_tokens, second.reasoning_tokens) == (24, 9, 3)
    assert len(second.block_keys) == 8
    assert second.block_keys[:4] == first.block_keys
    assert not set(second.block_keys[4:]) & set(first.block_keys)
    third = workload.next_turn(second, now_s=second.arrival_s + 1.0)
    assert third is not None and third.turn == 2
    # Prompt 24 + 9 + 5 = 38; reusable (24 + 9) // 4 = 8 keys = all of turn 2's.
    assert third.input_tokens == 38
    assert third.block_keys[:8] == second.block_keys
    assert len(third.block_keys) == (38 + 9) // 4
    assert workload.next_turn(third, now_s=third.arrival_s + 1.0) is None  # 3 turns


def test_session_without_reasoning_reuses_only_the_previous_prompt() -> None:
    workload = session_workload(keep_reasoning=False)
    first = next(workload.requests())
    second = workload.next_turn(first, now_s=first.arrival_s + 1.0)
    assert second is not None
    # Prompt = 10 + 6 (answer only) + 5 new = 21. Only the first prompt's full blocks
    # (10 // 4 = 2) are reusable; block 2 (tokens 8-11) now holds prompt + answer tokens,
    # which the first turn computed after its reasoning: new content.
    assert second.input_tokens == 21
    assert second.block_keys[:2] == first.block_keys[:2]
    assert second.block_keys[2] != first.block_keys[2]
    assert not set(second.block_keys[2:]) & set(first.block_keys)
    assert len(second.block_keys) == (21 + 9) // 4


def test_session_ends_at_last_turn_duration_and_for_plain_requests() -> None:
    single = session_workload(keep_reasoning=True, turns=1)
    first = next(single.requests())
    assert first.session_id == 0 and single.next_turn(first, first.arrival_s + 1) is None
    short = session_workload(keep_reasoning=True, duration_s=10.0)
    first = next(short.requests())
    assert short.next_turn(first, now_s=8.5) is None  # would arrive at 10.5 >= 10 s
    assert short.next_turn(first, now_s=7.5) is not None
    plain = Request(rid=5, arrival_s=0.0, input_tokens=10, output_tokens=5)
    assert short.next_turn(plain, now_s=1.0) is None


def test_sessions_get_distinct_ids_and_content() -> None:
    workload = session_workload(keep_reasoning=True)
    firsts = list(workload.requests())
    assert [r.session_id for r in firsts] == list(range(len(firsts)))
    follow = [workload.next_turn(r, r.arrival_s + 1) for r in firsts]
    keys = [k for r in follow if r is not None for k in r.block_keys[4:]]
    assert len(keys) == len(set(keys))


# --------------------------------------------------------------------------- traces
def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_mooncake_loader(tmp_path: Path) -> None:
    trace = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"timestamp": 2000, "input_length": 1100, "output_length": 7, "hash_ids": [0, 1, 5]},
            {"timestamp": 0, "input_length": 1024, "output_length": 3, "hash_ids": [0, 1]},
            "",
            {"timestamp": 1500, "input_length": 600, "output_length": 1, "hash_ids": [9, 10]},
        ],
    )
    requests = load_mooncake(trace, time_scale=0.5)
    assert [r.rid for r in requests] == [0, 1, 2]
    assert [r.arrival_s for r in requests] == [0.0, 0.75, 1.0]  # ms / 1000 x 0.5, sorted
    assert [(r.input_tokens, r.output_tokens) for r in requests] == [(1024, 3), (600, 1), (1100, 7)]
    assert requests[0].block_keys == chain_keys([0, 1])
    assert requests[2].block_keys == chain_keys([0, 1, 5])  # partial last block included
    assert requests[2].block_keys[:2] == requests[0].block_keys


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"timestamp": 1, "output_length": 3, "hash_ids": []}', r":2: field 'input_length'"),
        ('{"timestamp": 1, "input_length": 5, "output_length": -3}', r":2: field 'output_length'"),
        ('{"timestamp": -1, "input_length": 5, "output_length": 3}', r":2: field 'timestamp'"),
        ('{"timestamp": 1, "input_length": "5", "output_length": 3}', r":2: field 'input_length'"),
        (
            '{"timestamp": 1, "input_length": 5, "output_length": 3, "hash_ids": [1, "x"]}',
            r":2: field 'hash_ids'",
        ),
        (
            '{"timestamp": 1, "input_length": 5, "output_length": 3, "hash_ids": [1, 2]}',
            r":2: field 'hash_ids'",
        ),
        ('{"timestamp": 1, "input_length": 5', r":2: not valid JSON"),
        ("[1, 2, 3]", r":2: expected a JSON object"),
    ],
)
def test_mooncake_malformed_lines(tmp_path: Path, line: str, message: str) -> None:
    good = '{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [4]}'
    trace = write_jsonl(tmp_path / "bad.jsonl", [good, line])
    with pytest.raises(ConfigError, match=r"bad\.jsonl" + message):
        load_mooncake(trace)


def test_mooncake_needs_512_token_blocks_and_requests(tmp_path: Path) -> None:
    trace = write_jsonl(
        tmp_path / "t.jsonl",
        [{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [1]}],
    )
    with pytest.raises(ConfigError, match="field 'block_tokens' = 64"):
        load_mooncake(trace, block_tokens=64)
    empty = write_jsonl(tmp_path / "empty.jsonl", [""])
    with pytest.raises(ConfigError, match="empty.jsonl.*no requests"):
        load_mooncake(empty)
    with pytest.raises(ConfigError, match="missing.jsonl.*not found"):
        load_mooncake(tmp_path / "missing.jsonl")


def test_csv_loader(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("input_tokens,timestamp_s,output_tokens,note\n100,2.5,10,x\n50,0.5,5,y\n")
    requests = load_csv(trace, time_scale=2.0)
    assert [(r.rid, r.arrival_s, r.input_tokens, r.output_tokens) for r in requests] == [
        (0, 1.0, 50, 5),
        (1, 5.0, 100, 10),
    ]
    assert all(r.block_keys == [] for r in requests)


def test_csv_loader_errors(tmp_path: Path) -> None:
    no_header = tmp_path / "a.csv"
    no_header.write_text("1.0,10,5\n")
    with pytest.raises(ConfigError, match=r"a\.csv:1: field 'timestamp_s'"):
        load_csv(no_header)
    bad = tmp_path / "b.csv"
    bad.write_text("timestamp_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n")
    with pytest.raises(ConfigError, match=r"b\.csv:3: field 'input_tokens' = 'ten'"):
        load_csv(bad)
    short = tmp_path / "c.csv"
    short.write_text("timestamp_s,input_tokens,output_tokens\n0,10\n")
    with pytest.raises(ConfigError, match=r"c\.csv:2: field 'output_tokens'"):
        load_csv(short)
    zero = tmp_path / "d.csv"
    zero.write_text("timestamp_s,input_tokens,output_tokens\n0,0,5\n")
    with pytest.raises(ConfigError, match=r"d\.csv:2: field 'input_tokens' = 0"):
        load_csv(zero)


def test_trace_workload(tmp_path: Path) -> None:
    trace = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"timestamp": t, "input_length": 600, "output_length": 2, "hash_ids": [0, t]}
            for t in (0, 1000, 2000, 3000)
        ],
    )
    slo = SLOSpec(ttft_s=3, tpot_s=0.2)
    spec = WorkloadSpec(trace=TraceSpec(path=str(tmp_path / "elsewhere.jsonl"), slo=slo))
    workload = build_workload(spec, duration_s=2.0, block_tokens=512, seed=0, trace_path=str(trace))
    assert workload.class_names == ["trace"] and workload.slos == [slo]
    requests = list(workload.requests())
    assert [r.arrival_s for r in requests] == [0.0, 1.0]  # arrivals < duration_s only
    assert all(r.class_index == 0 and r.session_id == -1 for r in requests)
    assert requests[1].block_keys == chain_keys([0, 1000])
    again = list(workload.requests())
    assert again[0] is not requests[0]  # fresh objects: the simulator mutates them
    assert workload.next_turn(requests[0], 1.0) is None
    with pytest.raises(ConfigError, match="block_tokens"):
        build_workload(spec, duration_s=2.0, block_tokens=64, seed=0, trace_path=str(trace))


def test_trace_path_replays_csv_for_a_synthetic_spec(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp_s,input_tokens,output_tokens\n0,10,5\n1,20,6\n")
    workload = build_workload(
        mixed_spec(), duration_s=10, block_tokens=16, seed=0, trace_path=str(trace)
    )
    assert [r.input_tokens for r in workload.requests()] == [10, 20]
    assert workload.class_names == ["trace"]


def test_long_prompts_are_generated_quickly() -> None:
    # 1M-token prompts at 512-token blocks: 2,048 keys each.
    cls = WorkloadClass(
        name="long",
        share=1,
        input_tokens=ConstantDist(value=1_000_000),
        output_tokens=ConstantDist(value=10),
        slo=SLO,
    )
    spec = WorkloadSpec(arrival=PoissonArrivals(rate_per_s=10), classes=[cls])
    requests = list(build_workload(spec, duration_s=10, block_tokens=512, seed=0).requests())
    assert all(len(r.block_keys) == 1_000_000 // 512 for r in requests)
    assert math.isclose(len(requests), 100, rel_tol=0.35)
