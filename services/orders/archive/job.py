"""The archive job: closed orders old enough move out of the hot tables, a small batch at a time.

One replica runs it (the lease `orders-archive`, like the allocator's), once every
ORDERDESK_ARCHIVE_INTERVAL_SECONDS. A pass reads the oldest ORDERDESK_ARCHIVE_BATCH candidates with their
versions, moves those still at that version in one transaction (services/orders/archive/store.py), pauses
so the service's own work goes first, and goes on until a batch comes back short. `orderdesk archive run`
(RunArchive) asks for a pass now on whichever replica it reaches: passes in one process take turns, and on
PostgreSQL every batch takes a transaction advisory lock, so two replicas' batches never interleave.
Measured: orderdesk_archive_orders_total{outcome} and orderdesk_archive_batch_seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from orderdesk import metrics
from orderdesk.config import ArchiveSettings
from orderdesk.db import Database, utcnow
from orderdesk.leases import PeriodicPasses
from services.orders.archive import rules
from services.orders.archive.store import OrderArchive

if TYPE_CHECKING:
    from orderdesk.runtime import ServiceRuntime

log = logging.getLogger("orderdesk.archive")

JOB = "orders-archive"
# One key for every replica and release: the batches of two passes (the job's, a RunArchive's) never interleave.
BATCH_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"orderdesk:orders-archive-batch").digest()[:8], "big", signed=True
)


@dataclass
class PassResult:
    archived: int = 0
    skipped: int = 0
    batches: int = 0
    seconds: float = 0.0


class Archiver(PeriodicPasses):
    what = "archive"
    logger = log
    BATCH_PAUSE_SECONDS = 0.02  # between two batches: the service's own work goes first

    def __init__(
        self,
        db: Database | None,
        settings: ArchiveSettings,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        super().__init__()
        self.db = db  # None until the runtime has started
        self.settings = settings
        self.clock = clock
        self.passes = 0
        self._turn = asyncio.Lock()

    async def run_pass(
        self, *, after_days: float | None = None, now: dt.datetime | None = None
    ) -> PassResult:
        """Archives every qualifying order, a batch per transaction; `after_days` overrides the setting
        (0: every closed order, however recent)."""
        assert self.db is not None, "the archive runs on a started runtime's database"
        now = now or self.clock()
        days = self.settings.after_days if after_days is None else after_days
        if after_days is not None and after_days <= 0:
            cutoff: dt.datetime | None = now + dt.timedelta(seconds=1)  # every closed order
        else:
            cutoff = rules.cutoff(now, days)
        result = PassResult()
        if cutoff is None:
            return result
        started = time.perf_counter()
        async with self._turn:
            while True:
                moved, read = await self._batch(cutoff, now)
                result.batches += 1 if read else 0
                result.archived += moved
                result.skipped += read - moved
                if read < self.settings.batch:
                    break
                await asyncio.sleep(self.BATCH_PAUSE_SECONDS)
        self.passes += 1
        result.seconds = time.perf_counter() - started
        if result.archived or result.skipped:
            log.info(
                "archive: %d closed order(s) unchanged since %s archived in %d batch(es), %.1f s; "
                "%d changed meanwhile, left hot",
                result.archived,
                cutoff.isoformat(),
                result.batches,
                result.seconds,
                result.skipped,
            )
        return result

    async def _batch(self, cutoff: dt.datetime, now: dt.datetime) -> tuple[int, int]:
        """One batch: candidates read, then moved in one transaction if still at the version read.
        Returns (moved, read)."""
        assert self.db is not None
        started = time.perf_counter()
        async with self.db.reading() as work:
            candidates = await work.repo(OrderArchive).candidates(cutoff, self.settings.batch)
        if not candidates:
            return 0, 0
        async with self.db.transaction() as tx:
            if self.db.dialect == "postgresql":
                await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BATCH_LOCK_KEY})
            moved = await tx.repo(OrderArchive).move(candidates, now)
        metrics.ARCHIVE_BATCH.observe(time.perf_counter() - started)
        metrics.ARCHIVE_ORDERS.labels("archived").inc(len(moved))
        metrics.ARCHIVE_ORDERS.labels("skipped").inc(len(candidates) - len(moved))
        return len(moved), len(candidates)

    def interval_seconds(self) -> float:
        return self.settings.interval_seconds

    async def one_pass(self) -> PassResult:
        return await self.run_pass()


def register(rt: ServiceRuntime, settings: ArchiveSettings | None = None) -> Archiver:
    """The archive job under the lease `orders-archive` (one replica at a time). Call it after `rt.start()`."""
    archiver = Archiver(rt.db, settings or ArchiveSettings.from_env())

    async def archive_while_held() -> None:
        await archiver.run()

    rt.add_singleton(JOB, archive_while_held, on_wake=lambda _payload: archiver.wake())
    return archiver
