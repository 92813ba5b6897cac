"""Dashboard responsiveness: server-side re-render time of each page after an interaction.

Run: python benchmarks/bench_dashboard.py
Uses Streamlit's AppTest (the script run the server does on each interaction, without the
browser). For each page: first render, then the context slider moved to values not seen
before (uncached), then back to a value seen before (cached). Aim: interactions under
300 ms.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("capacity", "frontier", "cost", "compare")
NEW_CONTEXTS = (2**13, 2**15, 2**16, 2**18, 2**19)


def timed_run(at: AppTest) -> float:
    start = time.perf_counter()
    at.run()
    assert not at.exception, at.exception
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    warmup_ms = timed_run(at)
    print(f"first load of the app (imports, catalog, first page): {warmup_ms:,.0f} ms")
    print(f"{'page':10s} {'first':>8s} {'new context (median / max)':>28s} {'cached':>8s}")
    for page in PAGES:
        at.switch_page(str(ROOT / "planner" / "ui" / "pages" / f"{page}.py"))
        first = timed_run(at)
        fresh = []
        for ctx in NEW_CONTEXTS:
            at.sidebar.select_slider(key="w_ctx").set_value(ctx)
            fresh.append(timed_run(at))
        at.sidebar.select_slider(key="w_ctx").set_value(NEW_CONTEXTS[0])
        cached = timed_run(at)
        print(
            f"{page:10s} {first:6.0f} ms {statistics.median(fresh):14.0f} / {max(fresh):4.0f} ms"
            f" {cached:6.0f} ms"
        )


if __name__ == "__main__":
    main()
