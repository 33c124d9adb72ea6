"""ORDERDESK_PROFILE=<dir>: a cProfile of the whole process, written to <dir>/<name>-<pid>.prof when it exits
(every service through orderdesk.runtime.run, the gateway and the console through orderdesk.asgi.serve).

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

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        name = name or _process_name()
        profiler.dump_stats(os.path.join(folder, f"{name}-{os.getpid()}.prof"))
