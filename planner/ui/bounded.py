"""Heavy dashboard work in a child process with a time and a memory limit.

A page calls ``run_bounded(fn, *args, time_limit_s=..., progress=...)``: ``fn`` runs in a
process forked from a ``forkserver`` that has already imported the planner (so a run
starts in tens of milliseconds, not seconds), under an address-space limit
(``resource.RLIMIT_AS``, ``MEMORY_LIMIT_BYTES``). If it has not finished within
``time_limit_s`` the child is killed and :class:`WorkStopped` (a ``KvplanError``) says so
in one line; a child that runs out of memory or dies is reported the same way. The
server's own process never runs the work, so a slow or huge input cannot stall or swell it.

``fn`` must be a module-level function (it is pickled by reference); it may take a
keyword argument ``progress`` (a callable taking a fraction in [0, 1]) whose calls are
forwarded to the caller's ``progress``. What it returns is pickled back.

A child does not re-run the caller's main module (multiprocessing's usual preparation):
under Streamlit that module is the dashboard script itself, which would draw the whole app
again inside the child. ``_no_main_preparation`` drops it for the children started here.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue as queue_module
import resource
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import spawn
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from planner.errors import KvplanError

T = TypeVar("T")
MEMORY_LIMIT_BYTES = 4 * 2**30  # address space of one child: the planner needs ~1 GiB
POLL_S = 0.05
# Imported once by the fork server, so every child starts warm.
PRELOAD = ["planner.report.views", "planner.sim.run", "planner.ui.bounded", "planner.ui.sim_jobs"]

_context: Any = None


class WorkStopped(KvplanError):
    """Work stopped by its time or memory limit (or a crashed child)."""


_starting = threading.local()
_original_preparation = spawn.get_preparation_data


def _preparation_data(name: str) -> dict[str, Any]:
    """multiprocessing's preparation data, without the main module for our children."""
    data: dict[str, Any] = _original_preparation(name)
    if getattr(_starting, "active", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


spawn.get_preparation_data = _preparation_data


@contextlib.contextmanager
def _no_main_preparation() -> Iterator[None]:
    _starting.active = True
    try:
        yield
    finally:
        _starting.active = False


def _ctx() -> Any:
    global _context
    if _context is None:
        _context = mp.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(
    conn: Connection,
    progress_q: Any,
    memory_limit: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    with contextlib.suppress(ValueError, OSError):  # not every platform enforces RLIMIT_AS
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    kwargs: dict[str, Any] = {}
    if progress_q is not None:
        kwargs["progress"] = progress_q.put
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except KvplanError as err:
        conn.send(("error", str(err)))
    except MemoryError:
        conn.send(("memory", ""))
    finally:
        conn.close()


def run_bounded(
    fn: Callable[..., T],
    *args: Any,
    time_limit_s: float,
    what: str,
    progress: Callable[[float], None] | None = None,
    memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
) -> T:
    """``fn(*args)`` in a child process; its result, or a KvplanError (its own, or
    WorkStopped when the time or memory limit stopped it). ``what`` names the work in the
    message ("the simulation", "the Frontier page")."""
    ctx = _ctx()
    receive, send = ctx.Pipe(duplex=False)
    progress_q = ctx.Queue() if progress is not None else None
    child = ctx.Process(
        target=_child, args=(send, progress_q, memory_limit_bytes, fn, args), daemon=True
    )
    with _no_main_preparation():
        child.start()
    send.close()
    deadline = time.monotonic() + time_limit_s
    try:
        while True:
            if progress_q is not None and progress is not None:
                with contextlib.suppress(queue_module.Empty):
                    while True:
                        progress(float(progress_q.get_nowait()))
            if receive.poll(POLL_S):
                try:
                    status, payload = receive.recv()
                except EOFError:
                    child.join(5)
                    raise WorkStopped(
                        f"{what} stopped unexpectedly (exit code {child.exitcode}); it may have "
                        f"needed more than the {memory_limit_bytes / 2**30:.0f} GiB memory limit"
                    ) from None
                break
            if not child.is_alive() and not receive.poll(0):
                raise WorkStopped(
                    f"{what} stopped unexpectedly (exit code {child.exitcode}); it may have "
                    f"needed more than the {memory_limit_bytes / 2**30:.0f} GiB memory limit"
                )
            if time.monotonic() > deadline:
                raise WorkStopped(
                    f"{what} stopped at its {time_limit_s:g} s time limit; make it smaller "
                    "(fewer models or GPUs, a shorter run, a lower rate)"
                )
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receive.close()
        if progress_q is not None:
            progress_q.close()
            progress_q.cancel_join_thread()
    if status == "ok":
        return payload  # type: ignore[no-any-return]
    if status == "memory":
        raise WorkStopped(
            f"{what} needed more than the {memory_limit_bytes / 2**30:.0f} GiB memory limit; "
            "make it smaller"
        )
    raise KvplanError(payload)
