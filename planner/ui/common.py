"""Helpers shared by the dashboard pages: cached views, tables with CSV download, timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from planner.report import views
from planner.report.views import ViewConfig, rows_to_csv

# ViewConfig is a frozen dataclass: hash it by value.
_HASH: dict[str | type[Any], Callable[[Any], Any]] = {ViewConfig: repr}


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def capacity_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return views.capacity_rows(config)


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def frontier_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return views.frontier_rows(config)


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def cost_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return views.cost_rows(config)


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def api_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return views.api_rows(config)


@st.cache_data(show_spinner=False, hash_funcs=_HASH, max_entries=64)
def compare_rows(config: ViewConfig) -> list[dict[str, Any]]:
    return views.compare_rows(config)


def table(
    rows: list[dict[str, Any]],
    name: str,
    label: str = "Download table as CSV",
    columns: dict[str, Any] | None = None,
) -> None:
    """A table with a CSV download of exactly the rows shown."""
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
