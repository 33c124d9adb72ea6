"""shipping-order-allocated in group commit (SQLite and PostgreSQL): a fetched batch of allocations in one
transaction, with one statement for the orders' gates and one insert of all their shipments, makes what
the same events one by one make; a duplicate makes nothing; a failure sends the batch one by one."""

from __future__ import annotations

import pytest

from orderdesk import metrics
from orderdesk.consumers import EventConsumer
from services.shipping.consumers import subscriptions
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository
from tests.integration.fetched import handle_fetched
from tests.integration.shipping.test_shipping_store import (
    MIGRATIONS,
    NOW,
    allocated_event,
    cancelled_event,
    deliver,
    new_order_id,
    shipment_events,
)


def _consumer(service: ShippingService) -> EventConsumer:
    subscription = next(s for s in subscriptions(service) if s.durable == "shipping-order-allocated")
    assert subscription.group_commit and subscription.batch_handler is not None
    return EventConsumer(service.db, None, subscription)


async def _made(service: ShippingService, order_id: str):
    shipments = {
        s.shipment_id: (s.warehouse, s.lines, s.promised_delivery_date, s.status.value, s.version)
        for s in await service.list_for_order(order_id, "")
    }
    published = [
        (e.type, e.aggregate_id, e.aggregate_version, e.shipment.shipment.promised_delivery_date)
        for e in await shipment_events(service, order_id)
    ]
    return shipments, published


async def test_a_batch_makes_every_order_s_shipments_with_a_few_statements(shipping):
    one, two, cancelled = new_order_id(), new_order_id(), new_order_id()
    await deliver(shipping, cancelled_event(cancelled), "shipping-order-cancelled")
    again = allocated_event(one, allocations=(("A", "WH-HAM", 9), ("C", "WH-CHI", 1)))  # re-published
    batch = [
        allocated_event(one),
        allocated_event(two, allocations=(("B", "WH-SHA", 4),), requested="2026-12-24"),
        allocated_event(cancelled),
        again,
    ]
    async with shipping.db.reading() as work:
        await shipping.book(work)  # the calendars, read once a while (not per batch)
    statements = metrics.DB_STATEMENTS._value.get()
    together, messages = await handle_fetched(_consumer(shipping), *batch)
    assert together and all(m.acked for m in messages)
    # the inbox claim, the gates, the shipments, the outbox: one statement each for the whole batch
    assert metrics.DB_STATEMENTS._value.get() - statements == 4

    shipments, published = await _made(shipping, one)
    assert {sid: made[:2] for sid, made in shipments.items()} == {
        f"SHP-{one.removeprefix('ORD-')}-WH-HAM": ("WH-HAM", {"A": 3}),
        f"SHP-{one.removeprefix('ORD-')}-WH-SHA": ("WH-SHA", {"B": 2, "A": 1}),
        # the re-published allocation adds only the shipment of a warehouse not planned before
        f"SHP-{one.removeprefix('ORD-')}-WH-CHI": ("WH-CHI", {"C": 1}),
    }
    assert [p[0] for p in published] == ["shipment.created"] * 3
    assert [p[1] for p in published] == [
        f"SHP-{one.removeprefix('ORD-')}-WH-HAM",
        f"SHP-{one.removeprefix('ORD-')}-WH-SHA",
        f"SHP-{one.removeprefix('ORD-')}-WH-CHI",
    ]
    assert await _made(shipping, cancelled) == ({}, [])
    batched_two = await _made(shipping, two)
    assert [s[2] for s in batched_two[0].values()] == ["2026-12-24"]


async def test_a_batch_and_one_by_one_agree(make_database):
    results = []
    for together in (False, True):
        service = ShippingService(await make_database(MIGRATIONS), clock=lambda: NOW)
        from tests.integration.shipping.test_shipping_store import DEMO_WAREHOUSES

        await service.import_master_data("warehouses", DEMO_WAREHOUSES)
        orders = ["ORD-TSAME1", "ORD-TSAME2"]
        batch = [
            allocated_event(orders[0]),
            allocated_event(orders[1], country="CN"),
            allocated_event(orders[0]),
        ]
        if together:
            assert (await handle_fetched(_consumer(service), *batch))[0]
        else:
            for event in batch:
                await deliver(service, event, "shipping-order-allocated")
        results.append([await _made(service, order_id) for order_id in orders])
    assert results[0] == results[1]


async def test_a_duplicate_in_a_batch_or_handled_before_makes_nothing(shipping):
    order_id, other = new_order_id(), new_order_id()
    first = allocated_event(order_id)
    consumer = _consumer(shipping)
    assert (await handle_fetched(consumer, first, allocated_event(other)))[0]
    before = await _made(shipping, order_id)
    together, messages = await handle_fetched(consumer, first, first, allocated_event(other))
    assert together and all(m.acked for m in messages)
    assert await _made(shipping, order_id) == before
    assert len(before[0]) == 2 and len((await _made(shipping, other))[1]) == 2


async def test_a_failure_sends_the_batch_one_by_one(shipping, monkeypatch):
    """The batch's insert fails: nothing of the batch is kept, each event then goes alone (and succeeds)."""
    calls = []
    add_many = ShipmentRepository.add_many

    async def failing_for_several_orders(self, new):
        # One event goes through the same insert: only the batch's, which mixes orders, fails.
        calls.append(len(new))
        if len({shipment.order_id for shipment in new}) > 1:
            raise RuntimeError("database went away")
        return await add_many(self, new)

    monkeypatch.setattr(ShipmentRepository, "add_many", failing_for_several_orders)
    one, two = new_order_id(), new_order_id()
    together, messages = await handle_fetched(_consumer(shipping), allocated_event(one), allocated_event(two))
    assert not together and calls == [4, 2, 2]
    assert all(m.acked for m in messages)
    for order_id in (one, two):
        shipments, published = await _made(shipping, order_id)
        assert len(shipments) == 2 and [p[0] for p in published] == ["shipment.created"] * 2


@pytest.fixture
async def shipping(make_database):
    from tests.integration.shipping.test_shipping_store import DEMO_WAREHOUSES

    service = ShippingService(await make_database(MIGRATIONS), clock=lambda: NOW)
    await service.import_master_data("warehouses", DEMO_WAREHOUSES)
    return service
