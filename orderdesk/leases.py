"""Singleton jobs under replicas: exactly one replica of a service runs the outbox relay (or the allocator).

With several replicas on one PostgreSQL database, each replica competes for a lease
per job; the holder runs the job, the others wait and take over when it dies:

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held on a dedicated
  connection. The lock lives exactly as long as that session: when the holder dies
  (kill -9, crash, lost pod) the server ends the session and frees the lock, and a
  replica that tries every TRY_SECONDS takes over. The holder checks its session every
  CHECK_SECONDS and stops the job the moment the check fails (PostgreSQL restarted,
  network gone), so it stops before the server can give the lock to anyone else:
  a lost session is noticed within CHECK_SECONDS + CHECK_TIMEOUT (5 s), while
  server-side TCP keepalives let a vanished holder keep the lock for ~11 s.
- SQLite: one process owns the file, so the lease is always held and never checked
  (the job runs undisturbed: nothing wakes for it).

A replica that commits events or confirms an order while another holds the lease
pokes the holder over core NATS (`_orderdesk.wake.<job>`, nothing stored); the holder
also polls, so a lost poke only costs latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.engine import make_url

from orderdesk import metrics
from orderdesk.aio import wait_event, within

log = logging.getLogger("orderdesk.leases")

WAKE_ROOT = "_orderdesk.wake"


class Lease:
    """Always held: SQLite, one process per database file."""

    TRY_SECONDS = 1.0
    CHECK_SECONDS = 3.0  # a fraction of the ~11 s a vanished holder keeps the lock (see the module's note)
    exclusive = False  # True when other processes may compete for it

    def __init__(self, name: str):
        self.name = name
        self.held = False

    async def acquire(self) -> bool:
        self.held = True
        return True

    async def check(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


class AdvisoryLease(Lease):
    """A PostgreSQL session advisory lock on its own connection (not from the pool)."""

    CHECK_TIMEOUT = 2.0
    exclusive = True

    def __init__(self, name: str, database_url: str):
        super().__init__(name)
        # A stable 64-bit key per job name (the same in every replica and every release).
        self.key = int.from_bytes(
            hashlib.sha256(f"orderdesk:{name}".encode()).digest()[:8], "big", signed=True
        )
        self.dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = None

    async def _connect(self):
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=5,
                # The server notices a vanished holder within ~11 s and frees the lock.
                server_settings={
                    "tcp_keepalives_idle": "5",
                    "tcp_keepalives_interval": "2",
                    "tcp_keepalives_count": "3",
                    "application_name": f"orderdesk-lease-{self.name}",
                },
            )
        return self._conn

    async def acquire(self) -> bool:
        try:
            conn = await self._connect()
            self.held = bool(
                await within(conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key), self.CHECK_TIMEOUT)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("lease %s: acquire failed: %s", self.name, exc)
            await self._drop()
        return self.held

    async def check(self) -> bool:
        if not self.held or self._conn is None:
            return False
        try:
            await within(self._conn.fetchval("SELECT 1"), self.CHECK_TIMEOUT)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lease %s lost: %s", self.name, exc)
            await self._drop()
            return False

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed() and self.held:
            with contextlib.suppress(Exception):
                await within(self._conn.fetchval("SELECT pg_advisory_unlock($1)", self.key), 2)
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await within(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()


def for_database(database_url: str, name: str) -> Lease:
    """The lease of job `name` among the processes that share this database."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return AdvisoryLease(name, database_url)
    return Lease(name)


async def run_while_held(
    lease: Lease, work: Callable[[], Coroutine[Any, Any, None]], *, service: str = ""
) -> None:
    """Runs `work()` whenever `lease` is held and cancels it the moment the lease is lost; until cancelled
    or until `work()` returns (a clean stop)."""
    gauge = metrics.LEASE_HELD.labels(service or "-", lease.name)
    while True:
        if not await lease.acquire():
            await asyncio.sleep(lease.TRY_SECONDS)
            continue
        if lease.exclusive:
            log.info("lease %s acquired: running the job here", lease.name)
        gauge.set(1)
        task = asyncio.create_task(work(), name=f"lease:{lease.name}")
        try:
            while True:
                # A lease nobody else can take (SQLite) is never lost: no check, no wake-up.
                done, _ = await asyncio.wait({task}, timeout=lease.CHECK_SECONDS if lease.exclusive else None)
                if done:
                    task.result()  # a crash of the job is raised here
                    return
                if not await lease.check():
                    break
        finally:
            gauge.set(0)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.release())
        log.warning("lease %s lost: job stopped here; trying to take it again", lease.name)
        await asyncio.sleep(lease.TRY_SECONDS)


class Wakeup:
    """Pokes the holder of a lease from any replica over core NATS; coalesced (at most one message per
    payload every COALESCE_SECONDS). `on_wake(payload)` runs in every replica that receives it."""

    COALESCE_SECONDS = 0.005

    def __init__(self, nc, job: str, on_wake: Callable[[bytes], None], lease: Lease):
        self.nc = nc
        self.subject = f"{WAKE_ROOT}.{job}"
        self.on_wake = on_wake
        self.lease = lease
        self._pending: set[bytes] = set()
        self._sub = None

    async def start(self) -> None:
        if self.lease.exclusive and self.nc is not None:

            async def _received(msg) -> None:
                self.on_wake(msg.data)

            self._sub = await self.nc.subscribe(self.subject, cb=_received)

    def poke(self, payload: bytes = b"") -> None:
        """Wakes the job: here when this process holds the lease (or it is not exclusive), else via NATS."""
        if self.lease.held or not self.lease.exclusive or self.nc is None:
            self.on_wake(payload)
            return
        if payload in self._pending:
            return
        self._pending.add(payload)
        asyncio.get_running_loop().call_later(self.COALESCE_SECONDS, self._send, payload)

    def _send(self, payload: bytes) -> None:
        self._pending.discard(payload)
        if self.nc.is_connected:
            asyncio.get_running_loop().create_task(self._publish(payload))

    async def _publish(self, payload: bytes) -> None:
        with contextlib.suppress(Exception):  # best effort: the holder polls anyway
            await self.nc.publish(self.subject, payload)


class PeriodicPasses:
    """A leased job's loop, written once: a pass every interval, sooner when woken, sooner after a failure.

    A subclass sets `what` and `logger` (for the log) and implements `one_pass()` and `interval_seconds()`."""

    what = "job"
    logger = log
    FIRST_PASS_SECONDS = 60.0  # after start-up (or the interval, when shorter)
    RETRY_SECONDS = 60.0  # after a failed pass (or the interval, when shorter)

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A pass now (instead of at the end of the interval)."""
        self._wake.set()

    def interval_seconds(self) -> float:
        raise NotImplementedError

    async def one_pass(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        """Passes until cancelled (the lease lost, or shutdown); a failed pass is retried sooner."""
        interval = self.interval_seconds()
        delay = min(self.FIRST_PASS_SECONDS, interval)
        while True:
            await wait_event(self._wake, delay)
            self._wake.clear()  # here, not before the wait: a wake during the pass makes another one
            try:
                await self.one_pass()
                delay = interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(self.RETRY_SECONDS, interval)
                self.logger.warning("%s pass failed (retried in %.0f s): %s", self.what, delay, exc)
