"""shipping-order-allocated in group commit (SQLite and PostgreSQL): a fetched batch of allocations in one
transaction, with one statement for the orders' gates and one insert of all their shipments, makes what
the same events one by one make; a duplicate makes nothing; a failure sends the batch one by one."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from google.protobuf import json_format
from sqlalchemy import select

from orderdesk import metrics
from orderdesk.consumers import EventConsumer
from services.shipping.consumers import subscriptions
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository, shipments
from tests.integration.fetched import handle_fetched
from tests.integration.shipping.test_shipping_store import (
    DEMO,
    DEMO_WAREHOUSES,
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


# A batch as varied as shipping sees: warehouses in three time zones, before and after their cut-offs,
# Saturdays (Chicago works them, deliveries do not), a warehouse's stocktake and countries' holidays,
# lanes, unknown and empty destinations, an unknown warehouse, requested dates (on a holiday, a Saturday,
# unreadable), empty lines, and the late allocation of a make-to-order line (the same order allocated
# again, a new warehouse weeks later).
VARIED = [
    ("ORD-TVAR01", "DE", "", (("A", "WH-HAM", 3), ("B", "WH-SHA", 2), ("A", "WH-SHA", 1)), (2026, 12, 1, 10)),
    ("ORD-TVAR02", "DE", "", (("A", "WH-HAM", 1),), (2026, 12, 4, 15, 30)),  # Friday after the cut-off
    ("ORD-TVAR03", "US", "", (("C", "WH-CHI", 2), ("D", "WH-CHI", 0)), (2026, 12, 5, 12)),  # Saturday
    ("ORD-TVAR04", "CA", "", (("C", "WH-CHI", 1),), (2026, 12, 5, 23)),  # Saturday after Chicago's
    ("ORD-TVAR05", "", "", (("C", "WH-CHI", 1), ("A", "WH-HAM", 2)), (2026, 12, 6, 9)),  # Sunday
    ("ORD-TVAR06", "ZZ", "", (("B", "WH-SHA", 5),), (2026, 12, 23, 8)),
    ("ORD-TVAR07", "DE", "", (("A", "WH-HAM", 2),), (2026, 12, 23, 13)),  # Christmas ahead
    ("ORD-TVAR08", "DE", "2026-12-25", (("A", "WH-HAM", 2),), (2026, 12, 1, 10)),  # asked for a holiday
    ("ORD-TVAR09", "US", "2026-12-19", (("C", "WH-CHI", 4), ("B", "WH-SHA", 1)), (2026, 12, 2, 20)),
    ("ORD-TVAR10", "FR", "soon", (("A", "WH-HAM", 1),), (2026, 12, 30, 14)),  # unreadable: promised
    ("ORD-TVAR11", "FR", "", (("A", "WH-HAM", 1), ("E", "WH-XXX", 1)), (2026, 12, 31, 9)),
    ("ORD-TVAR12", "US", "", (("B", "WH-SHA", 3),), (2026, 12, 24, 9, 59)),  # China to the US lane
    ("ORD-TVAR13", "CN", "2027-01-01", (("B", "WH-SHA", 3),), (2026, 12, 24, 10)),
    ("ORD-TVAR14", "DE", "", (("A", "WH-HAM", 1),), (2026, 12, 1, 14, 30)),  # after Hamburg's cut-off
    ("ORD-TVAR01", "DE", "", (("A", "WH-HAM", 3), ("M", "WH-CHI", 1)), (2026, 12, 21, 16)),  # made to order
]
VARIED_MADE = Path(__file__).with_name("varied_batch.json")


async def _varied_batch_made(service: ShippingService) -> dict:
    """The batch's shipment rows (all but updated_at, the wall clock's) and its events (but their ids)."""
    order_ids = sorted({order_id for order_id, *_rest in VARIED})
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(shipments).where(shipments.c.order_id.in_(order_ids)).order_by(shipments.c.shipment_id)
        )
        made_rows = [
            {
                k: v.isoformat() if isinstance(v, dt.datetime) else v
                for k, v in row.items()
                if k != "updated_at"
            }
            for row in rows.mappings()
        ]
    published = []
    for order_id in order_ids:
        for event in await shipment_events(service, order_id):
            event.ClearField("event_id")
            published.append(json_format.MessageToDict(event))
    return {"shipments": made_rows, "events": published}


async def test_a_varied_batch_stores_and_publishes_what_it_always_did(make_database):
    """The rows and events of a varied batch, as the code before the batch's shortcuts (shared calendars
    and promises, the insert of tuples) made them (varied_batch.json); and the same one by one."""
    for together in (True, False):
        service = ShippingService(await make_database(MIGRATIONS), clock=lambda: NOW)
        await service.import_master_data("warehouses", DEMO_WAREHOUSES)
        await service.import_master_data("calendars", (DEMO / "calendars.csv").read_text())
        await service.import_master_data("lanes", (DEMO / "lanes.csv").read_text())
        batch = [
            allocated_event(order_id, country=country, requested=requested, allocations=lines, at=_utc(*at))
            for order_id, country, requested, lines, at in VARIED
        ]
        if together:
            assert (await handle_fetched(_consumer(service), *batch))[0]
        else:
            for event in batch:
                await deliver(service, event, "shipping-order-allocated")
        made = await _varied_batch_made(service)
        if os.environ.get("ORDERDESK_WRITE_VARIED_BATCH"):  # once, from the code to compare with
            VARIED_MADE.write_text(json.dumps(made, indent=1, sort_keys=True) + "\n")
        assert made == json.loads(VARIED_MADE.read_text())


def _utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


async def test_promises_shared_by_batches_follow_a_calendar_import(shipping):
    """Batches share promises while the calendar book is held; an import replaces the book, and the next
    promise for the same warehouse, destination and ship date counts the new holiday."""

    async def promised() -> str:
        order_id = new_order_id()
        event = allocated_event(order_id, allocations=(("A", "WH-HAM", 1),))  # ships Tuesday the 1st
        assert (await handle_fetched(_consumer(shipping), event))[0]
        return (await shipping.list_for_order(order_id, ""))[0].promised_delivery_date

    assert await promised() == await promised() == "2026-12-03"
    await shipping.import_master_data("calendars", "scope,code,date,name\ncountry,DE,2026-12-02,Test day\n")
    assert await promised() == "2026-12-04"
