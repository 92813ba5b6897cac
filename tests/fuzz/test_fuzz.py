"""The fuzz suite's CI slice: a bounded, derandomized (under CI) number of examples per
input surface. Every example must end in exit 0 with its output's invariants holding, or
one line and exit 2, within its deadline. ``python benchmarks/fuzz.py --examples N`` runs
the same strategies as a long campaign and counts outcomes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import OK, USER_ERROR
from tests.fuzz.strategies import SURFACES

# Examples per surface in CI: the whole slice stays well under a minute.
CI_EXAMPLES = {
    "cli": 25,
    "config.json": 20,
    "scenario": 8,
    "trace": 10,
    "gpu_profile": 10,
    "engine_profile": 8,
    "api": 40,
    "calibrate": 10,
    "fits": 8,
    "url": 10,
    "migrate": 4,
}


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_fuzz_surface(surface: str) -> None:
    @settings(
        max_examples=CI_EXAMPLES[surface],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=SURFACES[surface])
    def run(case: object) -> None:
        result = case.run()  # type: ignore[attr-defined]
        assert result.outcome in (OK, USER_ERROR), f"{result.outcome}: {result.detail}"

    run()


def test_surfaces_are_all_covered() -> None:
    assert set(CI_EXAMPLES) == set(SURFACES)
    assert isinstance(SURFACES["cli"], st.SearchStrategy)
