"""Transactional outbox and its relay to JetStream.

A state change and its event rows commit together (`Tx.emit`). The relay then (a
moment later, with whatever else committed meanwhile: LINGER_SECONDS) publishes
pending rows in id order with `Nats-Msg-Id` = event id, so a
re-publish after a crash is dropped by JetStream's duplicate window, marks them
published after the ack, and retries with capped exponential backoff. Published rows are
pruned by orderdesk.retention (ORDERDESK_RETENTION_OUTBOX_DAYS); unpublished ones never.

Replicas: one relay per service database publishes at a time, the holder of the
lease `outbox-<service>` (orderdesk.leases: a PostgreSQL advisory lock; SQLite is one
process). Another replica takes over within seconds when the holder dies. The other
replicas' commits poke the holder over core NATS. Even an overlap (a holder that lost
its lease mid-batch) keeps each aggregate's order: both publish the oldest pending rows
first, JetStream keeps the first copy of each event id, and a row is marked only after
its ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)

from orderdesk import events, leases, metrics
from orderdesk.aio import within, woken
from orderdesk.db import Database, RowsInsert, UtcDateTime, utcnow

log = logging.getLogger("orderdesk.outbox")

messaging_metadata = MetaData()

outbox_table = Table(
    "outbox",
    messaging_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("subject", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    Index("ix_outbox_pending", "published_at", "id"),
)

inbox_table = Table(
    "inbox",
    messaging_metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
    Index(
        "ix_inbox_processed", "processed_at"
    ),  # pruning (orderdesk.retention); made by each service's migration
)


def create_messaging_tables(op) -> None:
    """Called from each service's first migration: every service has an outbox and an inbox."""
    for table in (outbox_table, inbox_table):
        op.create_table(table.name, *[c._copy() for c in table.columns])
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "id"])


# Templates built once, executed with parameters (see orderdesk.db): the relay runs them for every few events.
_INSERT = outbox_table.insert()
_PENDING = (
    select(outbox_table.c.id, outbox_table.c.event_id, outbox_table.c.subject, outbox_table.c.payload)
    .where(outbox_table.c.published_at.is_(None))
    .order_by(outbox_table.c.id)
    .limit(bindparam("batch"))
)
# SET published_at from the parameter of that name; the ids' parameter is not a column's name.
_MARK_PUBLISHED = update(outbox_table).where(outbox_table.c.id.in_(bindparam("ids", expanding=True)))
_BACKLOG = select(func.count(), func.min(outbox_table.c.created_at)).where(
    outbox_table.c.published_at.is_(None)
)


# A transaction's rows as tuples in one DB-API executemany (orderdesk.db.RowsInsert), created_at once.
_APPEND = RowsInsert(_INSERT, ("event_id", "subject", "payload"), constants=("created_at",))


def row(event) -> tuple[str, str, bytes]:
    """An event's outbox row: event_id, subject, payload (created_at is given to the rows together)."""
    return (event.event_id, events.subject(event), event.SerializeToString())


async def append_rows(conn, rows: list[tuple[str, str, bytes]]) -> None:
    """One statement for a transaction's events (executemany keeps their order, so ids follow emit order),
    all stamped with the time they are written, just before the commit."""
    await _APPEND.execute(conn, rows, created_at=utcnow())


def _headers(row) -> dict[str, str]:
    """Nats-Msg-Id (JetStream drops a re-publish) and the correlation id of the request that caused the event."""
    headers = {"Nats-Msg-Id": row.event_id}
    cid = events.correlation_id_of(row.payload)
    if cid:
        headers[events.CORRELATION_HEADER] = cid
    return headers


class AckedPublisher:
    """JetStream publishes of a batch of rows, in order, with their PubAcks awaited together.

    What `js.publish` does for one message (a core publish with a reply inbox, then the stream's PubAck or
    error on it), for a batch without its costs per message: no Task, request future and timer each, but
    one reply subscription (a wildcard under the connection's inbox prefix, made once), each row's reply
    subject its round and index, and one wait for the round's acks. Late acks of an earlier round (one
    that timed out) are ignored by the round's tag."""

    def __init__(self, nc):
        self.nc = nc
        self._prefix = ""
        self._round = 0
        self._rounds: dict[str, _Round] = {}  # by tag: the rounds awaiting acks (one, unless calls overlap)

    async def publish(self, rows, timeout: float) -> tuple[int, BaseException | None]:
        """Publishes the rows (subject, payload, event_id) in order: how many leading rows JetStream
        acknowledged (a duplicate's ack included), and the failure of the next one, if any (a publish that
        raised, an error or "no stream" answer, an ack missing `timeout` seconds after the last publish)."""
        if not self._prefix:
            # Set first: a call overlapping this one uses the same subscription (its SUB goes out before
            # any publish queued after it).
            self._prefix = f"{self.nc.new_inbox()}."
            try:
                await self.nc.subscribe(f"{self._prefix}>", cb=self._on_ack)
            except Exception as exc:  # no connection: the first row fails, as its publish would
                self._prefix = ""
                return 0, exc
        self._round += 1
        tag = str(self._round)
        waiting = self._rounds[tag] = _Round(len(rows))
        reply = f"{self._prefix}{tag}."
        publish = self.nc.publish
        raised: BaseException | None = None
        try:
            for index, row in enumerate(rows):
                try:
                    await publish(row.subject, row.payload, reply=f"{reply}{index}", headers=_headers(row))
                except Exception as exc:  # not sent: this row fails, the rest wait for a later round
                    raised = exc
                    break
                waiting.sent += 1
            if waiting.received < waiting.sent:
                waiting.all_in = asyncio.get_running_loop().create_future()
                with contextlib.suppress(TimeoutError):
                    await within(waiting.all_in, timeout)
        finally:
            del self._rounds[tag]
        for index in range(waiting.sent):
            failure = _ack_failure(waiting.acks[index])
            if failure is not None:
                return index, failure
        return waiting.sent, raised

    async def _on_ack(self, msg) -> None:
        tag, _, index = msg.subject[len(self._prefix) :].partition(".")
        waiting = self._rounds.get(tag)
        if waiting is None:
            return  # an earlier round's, come after its deadline
        slot = int(index)
        if waiting.acks[slot] is None:
            waiting.acks[slot] = msg
            waiting.received += 1
            if waiting.received == waiting.sent and waiting.all_in is not None and not waiting.all_in.done():
                waiting.all_in.set_result(None)


class _Round:
    __slots__ = ("acks", "sent", "received", "all_in")

    def __init__(self, size: int):
        self.acks: list = [None] * size
        self.sent = 0
        self.received = 0
        self.all_in: asyncio.Future | None = None


def _ack_failure(msg) -> BaseException | None:
    """None for a PubAck (a duplicate's too), else what `js.publish` would have raised for this answer."""
    import nats.errors
    import nats.js.errors

    if msg is None:
        return nats.errors.TimeoutError()
    status = msg.headers.get("Status") if msg.headers else None
    if status == "503":
        return nats.js.errors.NoStreamResponseError()
    if status is not None or not msg.data:
        return nats.js.errors.APIError(code=int(status) if status and status.isdigit() else None)
    if b'"error"' in msg.data:  # parsed only then: a PubAck without that key is a success
        answer = json.loads(msg.data)
        if "error" in answer:
            return nats.js.errors.APIError.from_error(answer["error"])
    return None


class OutboxRelay:
    BATCH = 500
    MAX_BACKOFF = 30.0
    # The relay wakes when events commit (`Database.on_commit_with_events`: in this process at once, from
    # another replica over NATS, and after a NATS reconnect); this poll is only the safety net for a poke
    # that never came (a replica killed within the poke's few milliseconds, a NATS outage in between), so it
    # bounds how late such a row is sent. Rows left by a killed process: the next holder's first pass.
    POLL_SECONDS = 10.0
    # Woken by a commit, the relay waits this long before its pass, so that the commits of the next few
    # milliseconds go in the same round: each round wakes every consumer of its events, and each wake costs a
    # transaction, a pull and an ack there whether it carries one event or fifty. One partner's orders come
    # every 15 ms or so: at once, each set off its own cascade, on the cores its answer still needed (README
    # "CPU per order", the nineteenth session: one partner's p50 and CPU per order each fell by about a
    # quarter). Events reach their consumers that much later; a full batch or a backlog never waits.
    LINGER_SECONDS = 0.02

    def __init__(self, db: Database, js, service: str, *, nc=None, lease: leases.Lease | None = None):
        self.db = db
        self.js = js
        self.service = service
        self._wake = asyncio.Event()
        self._stopping = False
        self._held_at_stop = False
        self._publisher: AckedPublisher | None = None
        self.lease = lease or leases.for_database(db.url, f"outbox-{service}")
        self.wakeup = leases.Wakeup(nc, f"outbox-{service}", lambda _payload: self._wake.set(), self.lease)
        db.on_commit_with_events(self.wakeup.poke)

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relays while this replica holds the service's outbox lease; waits for it otherwise."""
        await self.wakeup.start()
        await leases.run_while_held(self.lease, self._relay, service=self.service)

    @property
    def may_flush(self) -> bool:
        """A final flush at shutdown: only by the replica that held the lease (or the only one)."""
        return not self.lease.exclusive or self._held_at_stop

    async def _relay(self) -> None:
        backoff = 0.1
        while not self._stopping:
            # Cleared before the pass, not after: a commit during the pass wakes the next one at once.
            self._wake.clear()
            try:
                published = await self.publish_pending()
                backoff = 0.1
                if published >= self.BATCH:
                    continue  # more waiting: no sleep
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.OUTBOX_PUBLISH_ERRORS.labels(self.service).inc()
                log.warning("outbox publish failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.MAX_BACKOFF)
                continue
            await woken(self._wake, self.POLL_SECONDS, self.LINGER_SECONDS)

    def stop(self) -> None:
        self._held_at_stop = self.lease.held
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        async with self.db.read() as conn:
            rows = (await conn.execute(_PENDING, {"batch": self.BATCH})).all()
        if not rows:
            self._set_backlog(0, None)  # none pending at the SELECT: nothing to count
            return 0
        # Publishes go in id order on one connection, so JetStream stores them in that
        # order; acks are awaited together. A failure stops the batch and the
        # unacknowledged rows are retried (duplicates are dropped by Nats-Msg-Id).
        # Acks awaited for as long after the last publish as `js.publish` waits for one (its context's timeout).
        acked, failure = await self._acks().publish(rows, self.js._timeout)
        done = [row.id for row in rows[:acked]]
        if done:
            async with self.db.begin() as conn:
                await conn.execute(_MARK_PUBLISHED, {"ids": done, "published_at": utcnow()})
            metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(done))
        if failure is None and len(rows) < self.BATCH:
            # The SELECT saw every pending row and all are now published: the backlog is whatever committed
            # since, and each such commit has woken the next round, which reads it. No COUNT per round.
            self._set_backlog(0, None)
        else:
            await self._update_backlog()  # rows left behind (a full batch or a failure): their true count
        if failure is not None:
            raise failure
        return len(done)

    def _acks(self) -> AckedPublisher:
        nc = self.js._nc  # the JetStream context's connection (a test may swap the context)
        if self._publisher is None or self._publisher.nc is not nc:
            self._publisher = AckedPublisher(nc)
        return self._publisher

    async def _update_backlog(self) -> None:
        async with self.db.read() as conn:
            count, oldest = (await conn.execute(_BACKLOG)).one()
        self._set_backlog(count, oldest)

    def _set_backlog(self, count: int, oldest) -> None:
        metrics.OUTBOX_BACKLOG.labels(self.service).set(count)
        if oldest is not None and oldest.tzinfo is None:
            from datetime import UTC

            oldest = oldest.replace(tzinfo=UTC)
        metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(
            (utcnow() - oldest).total_seconds() if oldest else 0
        )

    async def pending_count(self) -> int:
        async with self.db.read() as conn:
            return (
                await conn.execute(select(func.count()).where(outbox_table.c.published_at.is_(None)))
            ).scalar_one()
