"""planner.parallel: the same results, in order, serially and on a local Dask cluster."""

from __future__ import annotations

import pytest

from planner.errors import KvplanError
from planner.parallel import map_tasks


def _square_plus_seeded_noise(item: tuple[int, int]) -> float:
    import numpy as np

    value, seed = item
    return value * value + float(np.random.default_rng(seed).random())


def test_serial_and_local_cluster_agree_in_order() -> None:
    items = [(i, 1000 + i) for i in range(7)]
    seen: list[float] = []
    serial = map_tasks(_square_plus_seeded_noise, items, scheduler="serial", progress=seen.append)
    dask = map_tasks(_square_plus_seeded_noise, items, workers=2)
    assert serial == dask
    # Hand check of the first item: 0^2 + the first draw of seed 1000.
    import numpy as np

    assert serial[0] == float(np.random.default_rng(1000).random())
    assert seen[-1] == 1.0 and len(seen) == len(items)


def test_bad_scheduler_is_one_line() -> None:
    with pytest.raises(KvplanError, match="scheduler"):
        map_tasks(abs, [1], scheduler="localhost:8786")


def test_unreachable_scheduler_is_one_line() -> None:
    with pytest.raises(KvplanError, match="cannot reach"):
        map_tasks(abs, [1], scheduler="tcp://127.0.0.1:1", connect_timeout_s=1)


def test_local_cluster_does_not_warn_when_the_dask_dashboard_port_is_taken() -> None:
    """Another cluster (or kvplan run) on Dask's default dashboard port 8787 must not put a
    'Port 8787 is already in use' warning into a planner's output."""
    import socket
    import warnings

    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))
    except OSError:
        holder.close()
        pytest.skip("port 8787 is held by something else here; the warning path is not isolated")
    holder.listen()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert map_tasks(abs, [-1, 2], workers=1) == [1, 2]
    finally:
        holder.close()
    assert not [w for w in caught if "already in use" in str(w.message)]
