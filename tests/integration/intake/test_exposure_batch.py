"""intake-order-exposure in group commit (SQLite and PostgreSQL): a fetched batch of orders' events in one
transaction, its rows read at once and written with multi-row statements, leaves exactly what the same
events one by one leave; a duplicate changes nothing; a failing event sends the batch one by one."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from orderdesk import metrics
from orderdesk.consumers import EventConsumer
from services.intake import consumers
from services.intake.store import ExposureRepository, customer_exposure, order_exposure
from tests.integration.fetched import handle_fetched
from tests.integration.intake.test_checks_service import deliver, order_event
from tests.integration.intake.test_intake_service import intake


def _consumer(service) -> EventConsumer:
    subscription = consumers.subscriptions(service)[0]
    assert subscription.durable == "intake-order-exposure"
    assert subscription.group_commit and subscription.batch_handler is not None
    return EventConsumer(service.db, None, subscription)


async def _books(service) -> tuple[dict, dict]:
    async with service.db.read() as conn:
        rows = {
            r.order_id: (r.customer_id, r.amount_micros, bool(r.open), r.version, r.settled_micros)
            for r in await conn.execute(select(order_exposure))
        }
        totals = {r.customer_id: r.open_micros for r in await conn.execute(select(customer_exposure))}
    return rows, totals


def changed(order_id: str, version: int, amount: str, **kw):
    """order.changed: the order, still confirmed, with a new total."""
    event = order_event(order_id, "confirmed", version, amount, **kw)
    event.type, event.event_id = "order.changed", f"{order_id}-{version}-changed-{amount}"
    return event


def _mixed() -> list:
    """Several events of one order (confirmed, changed twice, one stale, then cancelled), another order
    of the same customer and one of another customer, a prepaid order, and an order moved to another
    customer."""
    return [
        order_event("ORD-B1", "confirmed", 2, "100.00"),
        order_event("ORD-B2", "confirmed", 2, "40.00"),
        changed("ORD-B1", 3, "150.00"),
        changed("ORD-B1", 2, "999.00"),  # stale: older than what the row holds by then
        order_event("ORD-B3", "confirmed", 2, "70.00", customer="C0002"),
        order_event("ORD-B4", "confirmed", 2, "55.00", terms="PREPAID"),
        changed("ORD-B1", 4, "120.00"),
        changed("ORD-B2", 3, "45.00", customer="C0002"),
        order_event("ORD-B1", "cancelled", 5, "120.00"),
        order_event("ORD-B5", "confirmed", 2, "10.00"),
    ]


async def test_a_batch_leaves_what_one_by_one_leaves_with_a_few_statements(make_database):
    one_by_one, batched = await intake(make_database), await intake(make_database)
    for service in (one_by_one, batched):  # a row finance paid part of, and a booking intake made itself
        async with service.db.transaction() as tx:
            repo = tx.repo(ExposureRepository)
            await repo.settle("ORD-B5", "C0001", Decimal("10.00"), Decimal(0), Decimal("4.00"))
            await repo.add_to_totals({"C0001": 40_000_000})  # booked as an approval's claims book it
            await repo.add_orders([("ORD-B2", "C0001", 40_000_000)])
    await deliver(one_by_one, *_mixed())

    statements = metrics.DB_STATEMENTS._value.get()
    together, messages = await handle_fetched(_consumer(batched), *_mixed())
    assert together and all(m.acked for m in messages)
    # the inbox claim, one read, one insert, one update, one adjustment per batch (however many events)
    assert metrics.DB_STATEMENTS._value.get() - statements == 5

    assert await _books(batched) == await _books(one_by_one)
    rows, totals = await _books(batched)
    assert rows["ORD-B1"] == ("C0001", 120_000_000, False, 5, 0)
    assert rows["ORD-B2"] == ("C0002", 45_000_000, True, 3, 0)
    assert rows["ORD-B5"] == ("C0001", 10_000_000, True, 2, 4_000_000)
    assert "ORD-B4" not in rows
    assert totals == {"C0001": 6_000_000, "C0002": 115_000_000}


async def test_a_duplicate_in_a_batch_or_handled_before_changes_nothing(make_database):
    service = await intake(make_database)
    consumer = _consumer(service)
    first = order_event("ORD-D1", "confirmed", 2, "100.00")
    assert (await handle_fetched(consumer, first, order_event("ORD-D2", "confirmed", 2, "1.00")))[0]
    # The same events again (redelivered), a copy twice within the batch, and a new one.
    together, messages = await handle_fetched(
        consumer, first, changed("ORD-D1", 3, "30.00"), changed("ORD-D1", 3, "30.00")
    )
    assert together and all(m.acked for m in messages)
    rows, totals = await _books(service)
    assert rows["ORD-D1"][1:4] == (30_000_000, True, 3)
    assert totals == {"C0001": 31_000_000}
    # a re-published fact under a new event id (not caught by the inbox): the version keeps it out
    republished = changed("ORD-D1", 3, "77.00")
    republished.event_id = "ORD-D1-3-again"
    assert (await handle_fetched(consumer, republished, order_event("ORD-D2", "cancelled", 3, "1.00")))[0]
    rows, totals = await _books(service)
    assert rows["ORD-D1"][1:4] == (30_000_000, True, 3) and rows["ORD-D2"][2] is False
    assert totals == {"C0001": 30_000_000}


async def test_a_failing_event_sends_the_batch_one_by_one(make_database):
    """An unreadable amount fails the batch: nothing of it is kept, then each event goes alone; the good
    ones are applied, the bad one is retried (nak), and nothing is applied twice."""
    service = await intake(make_database)
    consumer = _consumer(service)
    batch = [
        order_event("ORD-F1", "confirmed", 2, "100.00"),
        order_event("ORD-F2", "confirmed", 2, "not a number"),
        changed("ORD-F1", 3, "80.00"),
    ]
    together, messages = await handle_fetched(consumer, *batch)
    assert not together
    assert [m.acked for m in messages] == [True, False, True] and messages[1].naked
    rows, totals = await _books(service)
    assert set(rows) == {"ORD-F1"} and rows["ORD-F1"][1:4] == (80_000_000, True, 3)
    assert totals == {"C0001": 80_000_000}
    # the good ones come again with a fixed one: only the new one changes anything
    batch[1] = order_event("ORD-F2", "confirmed", 2, "5.00")
    assert (await handle_fetched(consumer, *batch))[0]
    rows, totals = await _books(service)
    assert rows["ORD-F2"][1:4] == (5_000_000, True, 2) and totals == {"C0001": 85_000_000}
