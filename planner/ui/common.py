"""Helpers shared by the dashboard pages: the rows each page shows (cached, with a time and
memory limit on big views), tables with a rounded CSV download, labels, timing.

Where the work runs: a view of at most ``IN_PROCESS_MAX_PAIRS`` (model, GPU) pairs of
catalog models is computed in the server process (a few hundred ms at most); a bigger view,
or one with an uploaded model, runs in a child process under ``PAGE_TIME_LIMIT_S`` and the
memory limit of :mod:`planner.ui.bounded`, and the page says so if it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from planner.report import views
from planner.report.views import ViewConfig, rows_to_csv
from planner.ui.bounded import run_bounded

IN_PROCESS_MAX_PAIRS = 4
PAGE_TIME_LIMIT_S = 60.0
ROW_FUNCTIONS: dict[str, Callable[[ViewConfig], list[dict[str, Any]]]] = {
    "capacity": views.capacity_rows,
    "frontier": views.frontier_rows,
    "cost": views.cost_rows,
    "api": views.api_rows,
    "compare": views.compare_rows,
}

# ViewConfig is a frozen dataclass: hash it by value.
_HASH: dict[str | type[Any], Callable[[Any], Any]] = {ViewConfig: repr}


def page_rows(kind: str, config: ViewConfig) -> list[dict[str, Any]]:
    """The rows of one page kind for a view (uncached), bounded as the module says."""
    fn = ROW_FUNCTIONS[kind]
    if len(config.pairs) <= IN_PROCESS_MAX_PAIRS and not config.custom_models:
        return fn(config)
    return run_bounded(
        fn, config, time_limit_s=PAGE_TIME_LIMIT_S, what=f"computing the {kind} figures"
    )


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def _cached_rows(kind: str, config: ViewConfig) -> list[dict[str, Any]]:
    return page_rows(kind, config)


def capacity_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return _cached_rows("capacity", config)


def frontier_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return _cached_rows("frontier", config)


def cost_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return _cached_rows("cost", config)


def api_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return _cached_rows("api", config)


def compare_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return _cached_rows("compare", config)


def grid(count: int, per_row: int) -> list[Any]:
    """``count`` cells laid out ``per_row`` to a row, in reading order (row by row)."""
    cells: list[Any] = []
    while len(cells) < count:
        cells += st.columns(min(per_row, count))
    return cells[:count]


def plural(count: float, noun: str, plural_noun: str | None = None) -> str:
    """'1 replica', '4 replicas', '1,141 sequences'."""
    word = noun if round(count) == 1 else (plural_noun or f"{noun}s")
    return f"{count:,.0f} {word}"


def table(
    rows: list[dict[str, Any]],
    name: str,
    label: str = "Download table as CSV",
    columns: dict[str, Any] | None = None,
) -> None:
    """A table with a CSV download of exactly the rows shown (rounded by unit)."""
    st.dataframe(rows, width="stretch", hide_index=True, column_config=columns)
    st.download_button(
        label, rows_to_csv(rows), file_name=f"{name}.csv", mime="text/csv", key=f"csv_{name}"
    )


@contextmanager
def timed(page: str) -> Iterator[None]:
    """Show how long the page took to compute and draw on the server."""
    start = time.perf_counter()
    yield
    elapsed_ms = (time.perf_counter() - start) * 1e3
    st.session_state[f"render_ms_{page}"] = elapsed_ms
    st.caption(f"computed in {elapsed_ms:,.0f} ms (server side)")
