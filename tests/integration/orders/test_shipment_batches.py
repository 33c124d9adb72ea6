"""Orders' shipment consumer in group commits on a real database (SQLite and PostgreSQL): a fetched batch
in one transaction, each order read once and saved once, every event applied in stream order with the
same effect, and the same events published, as one transaction per event; a failing batch is handled
one by one instead, each event still once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from orderdesk import events
from orderdesk.consumers import EventConsumer
from orderdesk.outbox import inbox_table
from orderdesk.v1 import events_pb2, shipping_pb2
from services.orders.consumers import subscriptions
from services.orders.domain import Allocation
from services.orders.service import OrdersService
from services.orders.store import OrderRepository
from tests.integration.fetched import FetchedMsg
from tests.integration.orders.test_store import MIGRATIONS, published, request

DURABLE = "orders-shipment-events"


def shipment(order_id: str, status: str, version: int, kind: str = "") -> events_pb2.Event:
    """shipping's event about the order's one shipment (from W1, both units of SKU A) at `version`."""
    shipment_id = f"SHP-{order_id}"
    return events.new_event(
        f"shipment.{kind or status}",
        aggregate_id=shipment_id,
        version=version,
        order_id=order_id,
        actor="3pl",
        shipment=events_pb2.ShipmentEvent(
            shipment=shipping_pb2.Shipment(
                shipment_id=shipment_id,
                order_id=order_id,
                warehouse="W1",
                status=status,
                lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
                on_time=True,
                version=version,
                expected_delivery_date="2026-12-24" if kind == "delayed" else "",
            )
        ),
    )


# Two events for ORD-B1 (shipped, then delivered), a stale one for it after them (its shipment's v1), one
# for an order orders does not have, and ORD-B2 shipped then delayed by its carrier (an exception).
BATCH = [
    ("ORD-B1", "shipped", 2, ""),
    ("ORD-B1", "delivered", 3, ""),
    ("ORD-B1", "picked", 1, ""),
    ("ORD-NONE", "shipped", 2, ""),
    ("ORD-B2", "shipped", 2, ""),
    ("ORD-B2", "shipped", 3, "delayed"),
]


async def allocated_orders(make_database) -> OrdersService:
    orders = OrdersService(await make_database(MIGRATIONS))
    for order_id in ("ORD-B1", "ORD-B2"):
        await orders.create(request(order_id))
        async with orders.db.transaction() as tx:
            await orders.apply_to_order(
                tx, order_id, lambda o: o.apply_reservation(o.created_at, [Allocation("A", "W1", 2)], {})
            )
    return orders


def consumer(orders: OrdersService, wakes: list[str] | None = None) -> EventConsumer:
    found = subscriptions(
        orders,
        wake_allocator=lambda **_: None,
        allocate_soon=lambda _ids: None,
        wake_watch=lambda: (wakes if wakes is not None else []).append("watch"),
    )
    sub = {s.durable: s for s in found}[DURABLE]
    assert sub.group_commit and sub.batch_handler is not None
    return EventConsumer(orders.db, None, sub)


async def outcome(orders: OrdersService, since: int) -> tuple:
    """What the events left: each order's status, version, shipment (status, version), line counts,
    exceptions and history; the events published since `since` (order, type, version, the order's
    status in it); the consumer's inbox rows."""
    saved = {}
    for order_id in ("ORD-B1", "ORD-B2"):
        o = await orders.get(order_id, "")
        saved[order_id] = (
            o.status.value,
            o.version,
            [(s.status, s.version) for s in o.shipments.values()],
            [(line.shipped, line.delivered) for line in o.lines],
            [(e.exception_id, e.type.value) for e in o.exceptions],
            [h.status.value for h in o.history],
        )
    sent = [
        (e.order_id, e.type, e.aggregate_version, e.order.order.status)
        for e in (await published(orders))[since:]
    ]
    async with orders.db.read() as conn:
        inbox = (
            await conn.execute(
                select(func.count()).select_from(inbox_table).where(inbox_table.c.consumer == DURABLE)
            )
        ).scalar_one()
    return saved, sent, inbox


EXPECTED_EVENTS = [
    ("ORD-B1", "order.shipped", 4, "shipped"),  # the order as it was right after its own event
    ("ORD-B1", "order.completed", 5, "completed"),
    ("ORD-B2", "order.shipped", 4, "shipped"),
    ("ORD-B2", "order.exception", 6, "shipped"),  # v5: the delayed shipment recorded, no status change
]


async def test_a_batch_is_one_transaction_with_the_effect_of_one_per_event(make_database):
    # The same events, one transaction each (as before group commits), on a database of their own.
    alone = await allocated_orders(make_database)
    alone_since = len(await published(alone))
    one_by_one = consumer(alone)
    for order_id, status, version, kind in BATCH:
        msg = FetchedMsg(shipment(order_id, status, version, kind))
        await one_by_one.handle(msg)
        assert msg.acked
    expected = await outcome(alone, alone_since)

    orders = await allocated_orders(make_database)
    since = len(await published(orders))
    wakes: list[str] = []
    batched = consumer(orders, wakes)
    msgs = [FetchedMsg(shipment(*e)) for e in BATCH]
    assert await batched.handle_together(msgs)
    assert all(m.acked for m in msgs)
    got = await outcome(orders, since)
    assert got == expected
    saved, sent, inbox = got
    assert sent == EXPECTED_EVENTS
    # The stale v1 changed nothing: the order stays at the completion's version, its shipment at v3.
    assert saved["ORD-B1"][:4] == ("completed", 5, [("delivered", 3)], [(2, 2)])
    assert saved["ORD-B1"][5] == ["received", "confirmed", "allocated", "shipped", "completed"]
    assert saved["ORD-B2"][0] == "shipped" and saved["ORD-B2"][4] == [("EX-SHP-ORD-B2-3", "carrier_delay")]
    assert inbox == len(BATCH)  # every event claimed, the missing order's too (ignored, as before)
    async with orders.db.reading() as work:  # the missing order's event made none
        assert await work.repo(OrderRepository).get("ORD-NONE") is None

    # Delivered again (a redelivery after a lost ack): all duplicates, nothing new.
    again = [FetchedMsg(shipment(*e)) for e in BATCH]
    for m, first in zip(again, msgs, strict=True):
        m.data = first.data  # the same event ids
    assert await batched.handle_together(again)
    assert all(m.acked for m in again)
    assert await outcome(orders, since) == got


async def test_a_failing_batch_is_rolled_back_and_handled_one_by_one(make_database):
    orders = await allocated_orders(make_database)
    since = len(await published(orders))
    batched = consumer(orders)
    real = batched.sub.batch_handler
    assert real is not None
    failures = []

    async def fails_after_applying(tx, batch):
        await real(tx, batch)  # everything applied in the transaction, then a failure: all rolled back
        failures.append(len(batch))
        raise RuntimeError("a passing failure")

    batched.sub = dataclasses.replace(batched.sub, batch_handler=fails_after_applying)
    msgs = [FetchedMsg(shipment(*e)) for e in BATCH]
    assert not await batched.handle_together(msgs)
    assert failures == [len(BATCH)] and not any(m.acked for m in msgs)
    saved, sent, inbox = await outcome(orders, since)
    assert (saved["ORD-B1"][0], saved["ORD-B2"][0], sent, inbox) == ("allocated", "allocated", [], 0)

    for m in msgs:  # what the consumer's run loop does next: one by one
        await batched.handle(m)
    assert all(m.acked for m in msgs) and not any(m.naked for m in msgs)
    saved, sent, inbox = await outcome(orders, since)
    assert sent == EXPECTED_EVENTS  # each once
    assert (saved["ORD-B1"][0], saved["ORD-B2"][0], inbox) == ("completed", "shipped", len(BATCH))
