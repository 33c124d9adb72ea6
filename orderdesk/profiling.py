"""ORDERDESK_PROFILE=<dir>: a cProfile of the whole process, written to <dir>/<name>-<pid>.prof when it exits
(every service through orderdesk.runtime.run, the gateway and the console through orderdesk.asgi.serve).
Times are wall-clock, so a loop's waits count (which loop wakes); ORDERDESK_PROFILE_CLOCK=cpu times the main
thread's CPU instead, which is what to read for CPU per order on a busy machine, where wall time counts the
time the process sat preempted in whatever function it was in.

ORDERDESK_SQL_TRACE=<dir>: every statement a process runs (SQL only, never its parameters) and every COMMIT,
one per line, appended to <dir>/<name>-<pid>.sql: to see which statements an order costs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def _process_name() -> str:
    return Path(sys.argv[0]).parent.name or "proc"


def trace_statements(sync_engine, folder: str) -> None:
    """ORDERDESK_SQL_TRACE: the engine's statements and commits, appended to the process's file."""
    from sqlalchemy import event

    out = open(os.path.join(folder, f"{_process_name()}-{os.getpid()}.sql"), "a", buffering=1)  # noqa: SIM115

    def statement(_conn, _cursor, sql: str, *_rest) -> None:
        out.write(" ".join(sql.split()) + "\n")

    event.listen(sync_engine, "before_cursor_execute", statement)
    event.listen(sync_engine, "commit", lambda *_args: out.write("COMMIT\n"))


@contextlib.contextmanager
def profiled(name: str = "") -> Iterator[None]:
    """Profiles the block when ORDERDESK_PROFILE names a folder; `name` defaults to the module run
    (python -m services.orders -> "orders")."""
    folder = os.environ.get("ORDERDESK_PROFILE", "")
    if not folder:
        yield
        return
    import cProfile
    import time

    os.makedirs(folder, exist_ok=True)  # else the profile is lost at exit, after the whole run
    cpu = os.environ.get("ORDERDESK_PROFILE_CLOCK", "wall") == "cpu"
    profiler = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        name = name or _process_name()
        profiler.dump_stats(os.path.join(folder, f"{name}-{os.getpid()}.prof"))
