"""Hand independent pieces of work to Dask, or run them in this process.

Everything else in kvplan is plain functions that give the same answer in one process or
spread over workers: a task carries its own inputs (seeds included), and results come back
in the order the tasks were given, whatever order workers finish in.

``scheduler`` chooses where tasks run:
- ``None`` (default): a ``distributed.LocalCluster`` of worker processes on this machine,
  started for the call and closed after it;
- ``"serial"``: in this process, one after another (no Dask; small jobs and tests);
- an address such as ``"tcp://10.0.0.5:8786"``: an existing Dask cluster the user runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from planner.errors import KvplanError

T = TypeVar("T")
R = TypeVar("R")

SERIAL = "serial"
SCHEDULER_PREFIXES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")
# Seconds to wait for an existing cluster to answer before giving up with one line.
CONNECT_TIMEOUT_S = 10


def check_scheduler(scheduler: str | None) -> str | None:
    """The scheduler argument, validated (raises KvplanError naming the value)."""
    if scheduler is None or scheduler == SERIAL:
        return scheduler
    if not isinstance(scheduler, str) or not scheduler.startswith(SCHEDULER_PREFIXES):
        raise KvplanError(
            "not a Dask scheduler address",
            field="scheduler",
            value=scheduler,
            expected="'serial', or an address such as tcp://HOST:8786",
        )
    return scheduler


def default_workers(tasks: int) -> int:
    """Worker processes for a local cluster: one per core, no more than there are tasks."""
    return max(1, min(os.cpu_count() or 1, tasks))


def map_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> list[R]:
    """``[fn(item) for item in items]``, run on Dask (see the module docstring).

    ``fn`` must be a module-level function and items picklable. ``progress`` receives the
    finished fraction (0..1) as tasks complete.
    """
    tasks: Sequence[T] = list(items)
    scheduler = check_scheduler(scheduler)
    if not tasks:
        return []
    if scheduler == SERIAL:
        out = []
        for i, item in enumerate(tasks):
            out.append(fn(item))
            if progress is not None:
                progress((i + 1) / len(tasks))
        return out
    return _map_on_dask(fn, tasks, scheduler, workers, progress, connect_timeout_s)


def _map_on_dask(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    scheduler: str | None,
    workers: int | None,
    progress: Callable[[float], None] | None,
    connect_timeout_s: float,
) -> list[R]:
    from distributed import Client, LocalCluster, as_completed

    # Dask logs cluster start-up and shutdown at INFO; a planner's output should not.
    for name in ("distributed", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or default_workers(len(tasks)),
            threads_per_worker=1,
            processes=True,
            # ":0": any free port. None still asks for 8787 and warns when another
            # cluster (or another kvplan run) holds it.
            dashboard_address=":0",
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=connect_timeout_s)
        except (OSError, TimeoutError) as err:
            raise KvplanError(
                f"cannot reach the Dask scheduler ({err.__class__.__name__})",
                field="scheduler",
                value=scheduler,
                expected="the address of a running Dask scheduler",
            ) from None
    try:
        futures = client.map(fn, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for done, future in enumerate(as_completed(futures), start=1):
            results[index[future.key]] = future.result()
            if progress is not None:
                progress(done / len(futures))
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
