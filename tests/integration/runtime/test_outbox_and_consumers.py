"""The shared runtime on a real database and a real JetStream: outbox relay and idempotent consumers."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import nats
import nats.js.errors
import pytest
import sqlalchemy as sa

from devtools.localservers import LocalNats
from orderdesk import events, logs, metrics, outbox
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.db import utcnow
from orderdesk.outbox import OutboxRelay, inbox_table, outbox_table
from orderdesk.v1 import events_pb2
from tests.integration.fetched import FetchedMsg

ORDERS_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


@pytest.fixture
async def js(nats_url):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await events.ensure_streams(js)
    yield js
    await nc.close()


def _event(order_id: str, n: int) -> events_pb2.Event:
    return events.new_event(
        "order.confirmed",
        aggregate_id=order_id,
        version=n,
        order_id=order_id,
        order=events_pb2.OrderEvent(status="confirmed"),
    )


async def test_relay_publishes_every_committed_event_once_in_order(make_database, js):
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    sent = [_event(order_id, n) for n in range(1, 6)]
    async with db.transaction() as tx:
        for e in sent:
            await tx.emit(e)
    with pytest.raises(RuntimeError):  # a rolled-back transaction publishes nothing
        async with db.transaction() as tx:
            await tx.emit(_event(order_id, 99))
            raise RuntimeError("rollback")

    relay = OutboxRelay(db, js, "test")
    assert await relay.publish_pending() == 5
    assert await relay.publish_pending() == 0
    assert await relay.pending_count() == 0
    # A re-publish of the same rows (as after a crash before marking) is dropped by Nats-Msg-Id.
    async with db.begin() as conn:
        await conn.execute(outbox_table.update().values(published_at=None))
    assert await relay.publish_pending() == 5

    assert await _stored(js, order_id) == [1, 2, 3, 4, 5]


def _backlog(service: str) -> tuple[float, float]:
    return (
        metrics.OUTBOX_BACKLOG.labels(service)._value.get(),
        metrics.OUTBOX_OLDEST_AGE.labels(service)._value.get(),
    )


async def test_backlog_gauge_reads_the_true_backlog_without_a_count_per_round(make_database, js, nats_url):
    """A round that saw fewer rows than its limit and published them all knows the backlog is empty (what
    commits later wakes the next round); a full round or a failed one counts what it left behind."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    async with db.transaction() as tx:
        for n in range(1, 6):
            await tx.emit(_event(order_id, n))
    service = f"test-{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(db, js, service)
    relay.BATCH = 2
    assert await relay.publish_pending() == 2
    assert _backlog(service)[0] == 3 and _backlog(service)[1] >= 0  # a full round: the rest, counted
    assert await relay.publish_pending() == 2
    assert _backlog(service)[0] == 1
    statements = metrics.DB_STATEMENTS._value.get()
    assert await relay.publish_pending() == 1
    assert _backlog(service) == (0, 0)
    assert metrics.DB_STATEMENTS._value.get() - statements == 2  # SELECT and UPDATE, no COUNT

    async with db.transaction() as tx:
        await tx.emit(_event(order_id, 6))
    closed = await nats.connect(nats_url)
    await closed.close()
    relay.js = closed.jetstream()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await relay.publish_pending()
    assert _backlog(service)[0] == 1  # a failed round counts: the gauge (and its age alert) sees the stall
    relay.js = js
    assert await relay.publish_pending() == 1
    assert _backlog(service) == (0, 0)


async def test_consumer_applies_each_event_once_and_dead_letters_poison(make_database, js):
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    applied: list[int] = []
    failures = {"left": 2}

    async def handler(tx, event):
        if event.aggregate_version == 3 and failures["left"] > 0:  # fails twice, then succeeds
            failures["left"] -= 1
            raise RuntimeError("passing failure")
        if event.aggregate_version == 4:
            raise RuntimeError("poison")
        applied.append(event.aggregate_version)

    durable = f"test-{uuid.uuid4().hex[:8]}"
    # A short ack wait: should a delivery go astray under load (a pull request the client gave up
    # on), the server sends it again within seconds rather than after the default 30.
    sub = Subscription(durable, f"orderdesk.order.{order_id}.>", handler, max_deliver=4, ack_wait=4.0)
    consumer = EventConsumer(db, js, sub)
    await consumer.start()
    first = _event(order_id, 1)
    for e in [first, first, _event(order_id, 2), _event(order_id, 3), _event(order_id, 4)]:
        # the same event id twice: the second is a duplicate the inbox must skip
        await js.publish(events.subject(e), e.SerializeToString())
    dlq = await js.subscribe(f"{events.DLQ_ROOT}.{durable}", deliver_policy="all")
    task = asyncio.create_task(consumer.run())
    try:
        parked = await dlq.next_msg(timeout=30)
        for _ in range(200):
            if 3 in applied:
                break
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        task.cancel()
        await js.delete_consumer(events.STREAM, durable)  # leave a shared test server as we found it
    assert events_pb2.Event.FromString(parked.data).aggregate_version == 4
    assert sorted(applied) == [1, 2, 3]


async def test_group_commit_applies_a_batch_in_one_transaction_and_falls_back_one_by_one(make_database, js):
    """group_commit: a fetched batch commits once; when one event fails, the batch is rolled back and
    handled one by one, so every event still takes effect exactly once and only the failing one is retried."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    committed: list[tuple[int, object]] = []  # (version, the transaction that applied it), once committed
    failures = {"left": 1}

    async def handler(tx, event):
        if event.aggregate_version == 5 and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("passing failure")
        version = event.aggregate_version
        tx.after_commit.append(lambda: committed.append((version, tx)))  # kept alive: ids stay distinct

    durable = f"test-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(
        db, js, Subscription(durable, f"orderdesk.order.{order_id}.>", handler, group_commit=True, batch=64)
    )
    await consumer.start()
    first = _event(order_id, 1)
    for e in [first, first, _event(order_id, 2), _event(order_id, 3)]:
        await js.publish(events.subject(e), e.SerializeToString())
    task = asyncio.create_task(consumer.run())
    try:
        for _ in range(100):
            if len(committed) == 3:
                break
            await asyncio.sleep(0.05)
        # One fetch, one transaction for the three (the duplicate of the first skipped by the inbox).
        assert [v for v, _ in committed] == [1, 2, 3]
        assert len({id(tx) for _, tx in committed}) == 1
        # Counted as one pull of four events (bench.backends prints events per pull).
        assert metrics.CONSUMER_PULLS.labels(durable)._value.get() == 1
        assert metrics.CONSUMER_PULLED.labels(durable)._value.get() == 4
        for e in [_event(order_id, 4), _event(order_id, 5), _event(order_id, 6)]:
            await js.publish(events.subject(e), e.SerializeToString())
        for _ in range(200):
            if len(committed) == 6:
                break
            await asyncio.sleep(0.05)
    finally:
        consumer.stop()
        task.cancel()
        await js.delete_consumer(events.STREAM, durable)
    # 5 failed inside the second batch: nothing of that batch was kept, then each went alone (5 retried).
    assert sorted(v for v, _ in committed) == [1, 2, 3, 4, 5, 6]
    assert len({id(tx) for v, tx in committed if v >= 4}) == 3


async def test_a_batch_claims_its_events_in_one_statement_and_skips_those_handled_before(make_database):
    """The inbox claim of a batch is one INSERT ... ON CONFLICT DO NOTHING RETURNING: an event handled
    before (alone) and a second copy within the batch are duplicates, the rest handled once, in order."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    handled: list[int] = []

    async def handler(tx, event):
        handled.append(event.aggregate_version)

    consumer = EventConsumer(
        db, None, Subscription(f"test-{uuid.uuid4().hex[:8]}", "orderdesk.>", handler, group_commit=True)
    )
    one, two, three = (_event(order_id, n) for n in (1, 2, 3))
    await consumer.handle(FetchedMsg(one))
    statements = metrics.DB_STATEMENTS._value.get()
    batch = [FetchedMsg(e) for e in (one, two, two, three)]
    assert await consumer.handle_together(batch)
    assert metrics.DB_STATEMENTS._value.get() - statements == 1
    assert handled == [1, 2, 3] and all(m.acked for m in batch)
    again = [FetchedMsg(e) for e in (three, two)]
    assert await consumer.handle_together(again)
    assert handled == [1, 2, 3] and all(m.acked for m in again)


async def test_an_event_off_its_own_subject_is_dead_lettered_and_counted_not_handled(make_database, js):
    """A `shipment.delivered` published under another service's subject tree (where NATS lets that service
    publish) is refused: a consumer trusts an event only on the subject its one publisher owns."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    handled: list[str] = []

    async def handler(tx, event):
        handled.append(event.type)

    durable = f"test-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(
        db, js, Subscription(durable, f"orderdesk.*.{order_id}.>", handler, ack_wait=4.0)
    )
    await consumer.start()
    forged = events.new_event(
        "shipment.delivered",
        aggregate_id="SHP-1",
        version=1,
        order_id=order_id,
        shipment=events_pb2.ShipmentEvent(),
    )
    renamed = events_pb2.Event()  # typed as a shipment's event but naming the return aggregate
    renamed.CopyFrom(forged)
    renamed.event_id, renamed.aggregate_type = str(uuid.uuid4()), "return"
    genuine = _event(order_id, 1)
    await js.publish(f"orderdesk.return.{order_id}.delivered", forged.SerializeToString())  # not its subject
    await js.publish(events.subject(renamed), renamed.SerializeToString())  # its subject, another aggregate
    await js.publish(events.subject(genuine), genuine.SerializeToString())
    misplaced = metrics.EVENTS_MISPLACED.labels(durable)
    dlq = await js.subscribe(f"{events.DLQ_ROOT}.{durable}", deliver_policy="all")
    task = asyncio.create_task(consumer.run())
    try:
        parked = [await dlq.next_msg(timeout=30), await dlq.next_msg(timeout=30)]
        for _ in range(200):
            if handled:
                break
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        task.cancel()
        await js.delete_consumer(events.STREAM, durable)
    assert handled == ["order.confirmed"]
    assert {events_pb2.Event.FromString(m.data).event_id for m in parked} == {
        forged.event_id,
        renamed.event_id,
    }
    assert all(m.headers["Orderdesk-Error"].startswith("misplaced") for m in parked)
    assert misplaced._value.get() == 2


async def test_a_pull_reads_the_messages_already_queued_in_order_with_the_clients_accounting(
    make_database, js
):
    """A fetched batch arrives at once: all but the first are taken from the subscription's queue directly
    (no Task and timer per message, as `next_msg` makes); same messages, same order, same pending counts."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    durable = f"test-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(db, js, Subscription(durable, f"orderdesk.order.{order_id}.>", None, batch=4))
    await consumer.start()
    sent = [_event(order_id, n) for n in range(1, 7)]
    for e in sent:
        await js.publish(events.subject(e), e.SerializeToString())
    psub = consumer._psub
    waited = 0
    next_msg = psub._sub.next_msg

    async def counted(timeout):
        nonlocal waited
        waited += 1
        return await next_msg(timeout=timeout)

    psub._sub.next_msg = counted
    try:
        first = await consumer._pull(psub)  # the batch of 4
        second = await consumer._pull(psub)  # the other 2, then the server's "no more" status
        assert psub._sub.pending_msgs == 0 and psub._sub.pending_bytes == 0
        for msg in first + second:
            await msg.ack()
    finally:
        await js.delete_consumer(events.STREAM, durable)
    got = [events_pb2.Event.FromString(m.data).event_id for m in first + second]
    assert got == [e.event_id for e in sent] and len(first) == 4
    assert waited < len(sent)  # not one wait per message


async def _stored(js, order_id: str) -> list[int]:
    """The versions the stream holds for the order, in stream order."""
    sub = await js.subscribe(f"orderdesk.order.{order_id}.>", ordered_consumer=True, deliver_policy="all")
    got = []
    try:
        while True:
            msg = await sub.next_msg(timeout=1.0)
            got.append(events_pb2.Event.FromString(msg.data).aggregate_version)
    except nats.errors.TimeoutError:
        pass
    await sub.unsubscribe()
    return got


async def _pending_versions(db) -> list[int]:
    async with db.read() as conn:
        payloads = (
            await conn.execute(
                sa.select(outbox_table.c.payload)
                .where(outbox_table.c.published_at.is_(None))
                .order_by(outbox_table.c.id)
            )
        ).scalars()
        return [events_pb2.Event.FromString(p).aggregate_version for p in payloads]


async def _append(db, order_id: str, versions, *, subject_of=None) -> None:
    """Outbox rows as Tx.emit writes them; `subject_of(version)` may put a row elsewhere."""
    async with db.begin() as conn:
        for version in versions:
            event_id, subject, payload = outbox.row(_event(order_id, version))
            if subject_of is not None and subject_of(version):
                subject = subject_of(version)
            await outbox.append_rows(conn, [(event_id, subject, payload)])


async def test_a_batch_publishes_in_order_with_its_headers_and_a_duplicate_ack_is_success(make_database, js):
    """The batch path sends what `js.publish` sends one by one: the rows in id order, each with Nats-Msg-Id
    and the correlation header; a row JetStream already holds (its ack says duplicate) counts as published."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    with logs.correlated("corr-batch"):
        sent = [_event(order_id, n) for n in range(1, 8)]
    already = sent[2]
    await js.publish(
        events.subject(already), already.SerializeToString(), headers={"Nats-Msg-Id": already.event_id}
    )
    async with db.transaction() as tx:
        for e in sent:
            await tx.emit(e)
    relay = OutboxRelay(db, js, "test")
    assert await relay.publish_pending() == 7
    assert await relay.pending_count() == 0
    assert await _stored(js, order_id) == [3, 1, 2, 4, 5, 6, 7]  # 3 once: its re-publish was a duplicate
    sub = await js.subscribe(f"orderdesk.order.{order_id}.>", ordered_consumer=True, deliver_policy="all")
    first = await sub.next_msg(timeout=1.0)
    second = await sub.next_msg(timeout=1.0)
    await sub.unsubscribe()
    assert second.headers["Nats-Msg-Id"] == sent[0].event_id
    assert second.headers[events.CORRELATION_HEADER] == "corr-batch"
    assert first.headers["Nats-Msg-Id"] == already.event_id


async def test_a_row_refused_midway_stops_the_batch_and_the_rest_is_retried(make_database, js):
    """A row no stream takes (no responders) fails; the rows before it are marked published, it and the
    rest stay pending, and a later round sends them (a later row JetStream already stored: a duplicate)."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    await _append(db, order_id, range(1, 6), subject_of=lambda v: v == 3 and f"nostream.{order_id}")
    relay = OutboxRelay(db, js, "test")
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await relay.publish_pending()
    assert await _pending_versions(db) == [3, 4, 5]
    async with db.begin() as conn:  # the operator's fix: the row back on its subject
        await conn.execute(
            outbox_table.update()
            .where(outbox_table.c.subject == f"nostream.{order_id}")
            .values(subject=f"orderdesk.order.{order_id}.confirmed")
        )
    assert await relay.publish_pending() == 3
    assert await _pending_versions(db) == []
    assert await _stored(js, order_id) == [1, 2, 4, 5, 3]  # 4 and 5 once each


async def test_a_publish_that_raises_midway_sends_none_after_it(make_database, js):
    """A row the client refuses to send (over the server's payload limit) fails the batch there: the rows
    before it are published and marked, it and the rows after it stay pending and were not sent."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    await _append(db, order_id, range(1, 3))
    async with db.begin() as conn:
        huge = _event(order_id, 3)
        huge.reason = "x" * (js._nc.max_payload + 1)
        await outbox.append_rows(conn, [outbox.row(huge)])
    await _append(db, order_id, range(4, 6))
    relay = OutboxRelay(db, js, "test")
    with pytest.raises(nats.errors.MaxPayloadError):
        await relay.publish_pending()
    assert await _pending_versions(db) == [3, 4, 5]
    assert await _stored(js, order_id) == [1, 2]


async def test_an_ack_missing_at_the_deadline_fails_its_row_and_those_after(make_database, js):
    """A publish nobody acknowledges (here a core subscriber, not a stream, takes the subject) fails at the
    round's deadline; the rows after it, though acknowledged, stay pending (retried, then deduplicated)."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    silent = await js._nc.subscribe(f"silent.{order_id}")
    await _append(db, order_id, range(1, 5), subject_of=lambda v: v == 2 and f"silent.{order_id}")
    relay = OutboxRelay(db, js._nc.jetstream(timeout=0.5), "test")
    with pytest.raises(nats.errors.TimeoutError):
        await relay.publish_pending()
    await silent.unsubscribe()
    assert await _pending_versions(db) == [2, 3, 4]
    assert await _stored(js, order_id) == [1, 3, 4]
    # The same relay's next round is not confused by the earlier round's acks.
    async with db.begin() as conn:
        await conn.execute(
            outbox_table.update()
            .where(outbox_table.c.subject == f"silent.{order_id}")
            .values(subject=f"orderdesk.order.{order_id}.confirmed")
        )
    assert await relay.publish_pending() == 3
    assert await _stored(js, order_id) == [1, 3, 4, 2]


async def test_a_nats_outage_during_a_batch_fails_it_and_the_next_round_sends_the_rest_once(
    make_database, tmp_path
):
    """The server goes away with a batch in flight: the round fails (acks missing or the client refusing
    to buffer), nothing unacknowledged is marked, and after the reconnect every event is stored once."""
    db = await make_database(ORDERS_MIGRATIONS)
    server = LocalNats(tmp_path / "nats").start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=1.0)
        await events.ensure_streams(js)
        order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
        await _append(db, order_id, range(1, 4))
        relay = OutboxRelay(db, js, "test")
        assert await relay.publish_pending() == 3
        await _append(db, order_id, range(4, 9))
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - whichever way the client reports the outage
            await relay.publish_pending()
        assert 4 in await _pending_versions(db)
        server.start()
        for _ in range(100):
            if nc.is_connected:
                break
            await asyncio.sleep(0.1)
        published = 0
        for _ in range(20):
            try:
                published += await relay.publish_pending()
            except Exception:
                await asyncio.sleep(0.3)  # JetStream may take a moment after a restart
            if not await _pending_versions(db):
                break
        assert await _pending_versions(db) == []
        assert await _stored(js, order_id) == [1, 2, 3, 4, 5, 6, 7, 8]
    finally:
        await nc.close()
        server.stop()


async def test_a_transactions_events_are_written_as_its_outbox_rows_in_emit_order(make_database):
    """Tx.emit's rows (one executemany of tuples) hold what an insert of each event's row as a dict held:
    the event id, its subject, its bytes, a UTC created_at (the transaction's, just before its commit),
    ids in emit order, nothing published yet."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    sent = [_event(order_id, n) for n in (3, 1, 2)]
    before = utcnow()
    async with db.transaction() as tx:
        for e in sent:
            await tx.emit(e)
    after = utcnow()
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id))).all()
    assert [(r.event_id, r.subject, bytes(r.payload)) for r in rows] == [
        (e.event_id, events.subject(e), e.SerializeToString()) for e in sent
    ]
    assert all(r.published_at is None for r in rows)
    assert all(r.created_at.utcoffset() == dt.timedelta(0) and before <= r.created_at <= after for r in rows)


async def test_a_batch_claim_writes_the_inbox_rows_one_by_one_claims_write(make_database):
    """The batch's claim (one INSERT ... SELECT over the ids) stores the rows the single claims store, and
    answers the same: new ids claimed, ids claimed before not."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    handled: list[str] = []

    async def handler(tx, event):
        handled.append(event.event_id)

    sent = [_event(order_id, n) for n in range(1, 6)]
    alone = EventConsumer(db, None, Subscription("test-alone", "orderdesk.>", handler))
    together = EventConsumer(
        db, None, Subscription("test-together", "orderdesk.>", handler, group_commit=True)
    )
    await alone.handle(FetchedMsg(sent[1]))
    await together.handle(FetchedMsg(sent[1]))
    for e in sent:
        await alone.handle(FetchedMsg(e))
    assert await together.handle_together([FetchedMsg(e) for e in sent])
    assert handled == [sent[1].event_id] * 2 + [e.event_id for e in sent if e is not sent[1]] * 2
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(inbox_table))).all()
    by_consumer = {
        name: {r.event_id: r.processed_at for r in rows if r.consumer == name}
        for name in ("test-alone", "test-together")
    }
    assert set(by_consumer["test-alone"]) == set(by_consumer["test-together"]) == {e.event_id for e in sent}
    stamps = [*by_consumer["test-alone"].values(), *by_consumer["test-together"].values()]
    assert all(at.utcoffset() == dt.timedelta(0) for at in stamps)


async def test_a_consumers_outcomes_are_counted_per_event_alone_and_together(make_database):
    """EVENTS_CONSUMED per outcome (the consumer keeps its labelled counters): handled, duplicate and
    ignored events count one each, alone or in a batch."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"

    async def handler(tx, event):
        pass

    durable = f"test-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(
        db,
        None,
        Subscription(
            durable, "orderdesk.>", handler, wants=lambda e: e.aggregate_version != 9, group_commit=True
        ),
    )

    def counted(outcome: str) -> float:
        return metrics.EVENTS_CONSUMED.labels(durable, outcome)._value.get()

    one, two, ignored = _event(order_id, 1), _event(order_id, 2), _event(order_id, 9)
    await consumer.handle(FetchedMsg(one))
    await consumer.handle(FetchedMsg(one))
    await consumer.handle(FetchedMsg(ignored))
    assert (counted("handled"), counted("duplicate"), counted("ignored")) == (1, 1, 1)
    assert await consumer.handle_together([FetchedMsg(e) for e in (one, two, two, ignored)])
    assert (counted("handled"), counted("duplicate"), counted("ignored")) == (2, 3, 2)


async def test_overlapping_rounds_of_one_publisher_each_get_their_own_acks(js):
    """Each round's replies carry its tag: two rounds in flight at once on one connection are told apart."""
    from types import SimpleNamespace

    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"

    def rows(versions):
        return [
            SimpleNamespace(event_id=e.event_id, subject=events.subject(e), payload=e.SerializeToString())
            for e in (_event(order_id, v) for v in versions)
        ]

    publisher = outbox.AckedPublisher(js._nc)
    first, second = await asyncio.gather(
        publisher.publish(rows(range(1, 4)), 5.0), publisher.publish(rows(range(4, 9)), 5.0)
    )
    assert first == (3, None) and second == (5, None)
    assert sorted(await _stored(js, order_id)) == list(range(1, 9))
