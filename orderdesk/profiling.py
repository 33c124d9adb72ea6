"""ORDERDESK_PROFILE=<dir>: a cProfile of the whole process, written to <dir>/<name>-<pid>.prof when it exits
(every service through orderdesk.runtime.run, the gateway and the console through orderdesk.asgi.serve)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


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
        name = name or Path(sys.argv[0]).parent.name or "proc"
        profiler.dump_stats(os.path.join(folder, f"{name}-{os.getpid()}.prof"))
