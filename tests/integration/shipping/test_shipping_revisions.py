"""Shipping following order changes and the desk's resolutions, and carriers' tracking events
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from orderdesk import errors, events
from orderdesk.calendar import Calendar, working_days_between
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2
from services.shipping.consumers import subscriptions
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "shipping" / "migrations"
DEMO_WAREHOUSES = (Path(__file__).resolve().parents[3] / "demo" / "warehouses.csv").read_text()
ALLOCATED_AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
async def shipping(make_database):
    service = ShippingService(await make_database(MIGRATIONS), clock=lambda: ALLOCATED_AT)
    await service.import_master_data("warehouses", DEMO_WAREHOUSES)
    return service


def new_order_id() -> str:
    return f"ORD-T{uuid.uuid4().hex[:12].upper()}"


def allocated_event(order_id: str, allocations) -> events_pb2.Event:
    order = orders_pb2.Order(
        order_id=order_id,
        partner_id="P-SHOP",
        status="allocated",
        ship_to=common_pb2.Address(country="DE"),
        allocations=[orders_pb2.Allocation(sku=s, warehouse=w, quantity=q) for s, w, q in allocations],
    )
    return events.new_event(
        "order.allocated",
        aggregate_id=order_id,
        version=3,
        order_id=order_id,
        actor="system",
        at=ALLOCATED_AT,
        order=events_pb2.OrderEvent(status="allocated", order=order),
    )


async def deliver(service: ShippingService, event: events_pb2.Event, durable: str) -> None:
    """What the runtime's consumer does: the handler inside one transaction."""
    handler = {s.durable: s.handler for s in subscriptions(service)}[durable]
    async with service.db.transaction() as tx:
        await handler(tx, event)


async def shipment_events(service: ShippingService, order_id: str) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(outbox_table.c.payload)
            .where(outbox_table.c.subject.like(f"orderdesk.shipment.{order_id}.%"))
            .order_by(outbox_table.c.id)
        )
        return [events_pb2.Event.FromString(r.payload) for r in rows]


def changed_event(
    order_id: str, allocations, version: int = 5, status: str = "allocated", fields: tuple[str, ...] = ()
) -> events_pb2.Event:
    order = orders_pb2.Order(
        order_id=order_id,
        partner_id="P-SHOP",
        status=status,
        ship_to=common_pb2.Address(country="DE"),
        allocations=[orders_pb2.Allocation(sku=s, warehouse=w, quantity=q) for s, w, q in allocations],
    )
    return events.new_event(
        "order.changed",
        aggregate_id=order_id,
        version=version,
        order_id=order_id,
        actor="P-SHOP",
        reason="lines[A].quantity: 3 -> 5",
        at=ALLOCATED_AT,
        order=events_pb2.OrderEvent(
            status=status, order=order, changes=[orders_pb2.FieldChange(field=f) for f in fields]
        ),
    )


def resolved_event(order_id: str, action: str, details: dict, shipment_id: str = "") -> events_pb2.Event:
    exception = orders_pb2.OrderException(
        exception_id="EX-1",
        type="lost_parcel",
        status="resolved",
        shipment_id=shipment_id,
        resolution=orders_pb2.ExceptionResolution(action=action, actor="desk", details=details),
    )
    order = orders_pb2.Order(
        order_id=order_id, partner_id="P-SHOP", status="shipped", ship_to=common_pb2.Address(country="DE")
    )
    return events.new_event(
        "order.exception",
        aggregate_id=order_id,
        version=9,
        order_id=order_id,
        actor="desk",
        order=events_pb2.OrderEvent(status="shipped", order=order, exception=exception),
    )


async def shipments(service, order_id):
    async with service.db.read() as conn:
        return {s.shipment_id: s for s in await ShipmentRepository(conn).for_order(order_id)}


async def test_shipments_follow_the_order_change(shipping):
    order_id = new_order_id()
    await deliver(
        shipping,
        allocated_event(order_id, allocations=(("A", "WH-HAM", 3), ("B", "WH-SHA", 2))),
        "shipping-order-allocated",
    )
    # A grows at Hamburg, B moves from Shanghai to Chicago (a re-allocation)
    await deliver(
        shipping, changed_event(order_id, (("A", "WH-HAM", 5), ("B", "WH-CHI", 2))), "shipping-order-changed"
    )
    now = await shipments(shipping, order_id)
    by_wh = {s.warehouse: s for s in now.values()}
    assert by_wh["WH-HAM"].lines == {"A": 5} and by_wh["WH-HAM"].status.value == "pending"
    assert by_wh["WH-SHA"].status.value == "cancelled" and by_wh["WH-CHI"].lines == {"B": 2}
    types = [e.type for e in await shipment_events(shipping, order_id)]
    assert types.count("shipment.updated") == 1 and types.count("shipment.cancelled") == 1
    assert types.count("shipment.created") == 3
    # the same event again changes nothing
    await deliver(
        shipping, changed_event(order_id, (("A", "WH-HAM", 5), ("B", "WH-CHI", 2))), "shipping-order-changed"
    )
    assert len(await shipment_events(shipping, order_id)) == len(types)
    # B comes back to Shanghai: a new shipment beside the cancelled one
    await deliver(
        shipping,
        changed_event(order_id, (("A", "WH-HAM", 5), ("B", "WH-SHA", 2)), version=6),
        "shipping-order-changed",
    )
    live = [s for s in (await shipments(shipping, order_id)).values() if s.status.value != "cancelled"]
    assert sorted((s.warehouse, s.shipment_id.endswith("-2")) for s in live) == [
        ("WH-HAM", False),
        ("WH-SHA", True),
    ]


async def test_a_shipment_that_left_is_never_revised(shipping):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=(("A", "WH-HAM", 3),)), "shipping-order-allocated"
    )
    sid = next(iter(await shipments(shipping, order_id)))
    for step in ("picked", "packed"):
        await shipping.record_event(sid, step, actor="3pl")
    await shipping.record_event(sid, "shipped", carrier="DHL", tracking_number="T1", actor="3pl")
    await deliver(shipping, changed_event(order_id, (("A", "WH-HAM", 1),)), "shipping-order-changed")
    assert (await shipments(shipping, order_id))[sid].lines == {"A": 3}


async def test_a_partly_shipped_order_changes_only_its_remainder(shipping):
    """The order's allocations keep the units that left (orders' Order.follow_reservation): shipping follows
    them less what the parcels that left carry, and never makes a shipment for shipped units."""
    order_id = new_order_id()
    await deliver(
        shipping,
        allocated_event(order_id, allocations=(("A", "WH-HAM", 3), ("B", "WH-SHA", 2))),
        "shipping-order-allocated",
    )
    by_wh = {s.warehouse: s.shipment_id for s in (await shipments(shipping, order_id)).values()}
    for step in ("picked", "packed"):
        await shipping.record_event(by_wh["WH-HAM"], step, actor="3pl")
    await shipping.record_event(by_wh["WH-HAM"], "shipped", carrier="DHL", tracking_number="T1", actor="3pl")
    before = len(await shipment_events(shipping, order_id))
    allocations = (("A", "WH-HAM", 3), ("B", "WH-SHA", 2))
    # A new address for the remainder: no shipment for the units that left, nothing else to change.
    await deliver(
        shipping,
        changed_event(order_id, allocations, status="partially_shipped", fields=("ship_to.city",)),
        "shipping-order-changed",
    )
    assert len(await shipments(shipping, order_id)) == 2
    assert len(await shipment_events(shipping, order_id)) == before
    # One unit of B fewer: the Shanghai shipment follows; the parcel that left does not.
    await deliver(
        shipping,
        changed_event(
            order_id, (("A", "WH-HAM", 3), ("B", "WH-SHA", 1)), 6, "partially_shipped", ("lines[B].quantity",)
        ),
        "shipping-order-changed",
    )
    now = await shipments(shipping, order_id)
    assert now[by_wh["WH-SHA"]].lines == {"B": 1} and now[by_wh["WH-HAM"]].lines == {"A": 3}
    # A date accepted on a shipped order changes no shipment; the rest cancelled (the order then shipped) does.
    await deliver(
        shipping,
        changed_event(order_id, (("A", "WH-HAM", 3),), 7, "shipped", ("requested_delivery_date",)),
        "shipping-order-changed",
    )
    assert (await shipments(shipping, order_id))[by_wh["WH-SHA"]].status.value == "pending"
    await deliver(
        shipping,
        changed_event(order_id, (("A", "WH-HAM", 3),), 8, "shipped", ("lines[B]",)),
        "shipping-order-changed",
    )
    now = await shipments(shipping, order_id)
    assert now[by_wh["WH-SHA"]].status.value == "cancelled"
    assert now[by_wh["WH-HAM"]].status.value == "shipped" and now[by_wh["WH-HAM"]].lines == {"A": 3}
    assert len(now) == 2


async def test_tracking_events_carrier_change_and_reship(shipping):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=(("A", "WH-HAM", 3),)), "shipping-order-allocated"
    )
    sid = next(iter(await shipments(shipping, order_id)))
    with pytest.raises(errors.FailedPrecondition) as early:
        await shipping.record_event(sid, "delayed", actor="carrier", expected_delivery_date="2026-12-20")
    assert early.value.rule == "tracking_needs_shipped"
    await shipping.record_event(sid, "picked", actor="3pl")
    await shipping.record_event(sid, "shipped", carrier="DHL", tracking_number="T1", actor="3pl")
    with pytest.raises(errors.InvalidArgument):
        await shipping.record_event(sid, "delayed", actor="carrier")
    delayed = await shipping.record_event(
        sid, "delayed", actor="carrier", cause="storm", expected_delivery_date="2026-12-20"
    )
    assert delayed.expected_delivery_date == "2026-12-20" and delayed.status.value == "shipped"
    await shipping.record_event(
        sid, "delayed", actor="carrier", cause="storm", expected_delivery_date="2026-12-20"
    )
    await shipping.record_event(sid, "lost", actor="carrier", cause="parcel not found at hub")
    published = await shipment_events(shipping, order_id)
    assert [e.type for e in published][-2:] == ["shipment.delayed", "shipment.lost"]
    assert published[-2].shipment.shipment.expected_delivery_date == "2026-12-20"
    assert published[-1].reason == "parcel not found at hub"

    await deliver(
        shipping,
        resolved_event(order_id, "change_carrier", {"carrier": "UPS", "tracking_number": "U9"}, sid),
        "shipping-order-exception",
    )
    assert (await shipments(shipping, order_id))[sid].carrier == "UPS"
    await deliver(
        shipping,
        resolved_event(order_id, "reship", {"reship_lines": "A@WH-HAM=3"}, sid),
        "shipping-order-exception",
    )
    now = await shipments(shipping, order_id)
    reship = now[f"{sid}-R1"]
    assert (
        reship.lines == {"A": 3} and reship.status.value == "pending" and now[sid].status.value == "shipped"
    )


async def test_a_new_country_gives_a_new_promise(shipping):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=(("A", "WH-HAM", 3),)), "shipping-order-allocated"
    )
    [before] = (await shipments(shipping, order_id)).values()
    event = changed_event(order_id, (("A", "WH-HAM", 3),))
    event.order.order.ship_to.country = "CN"
    event.order.changes.add(field="ship_to.country", before="DE", after="CN")
    await deliver(shipping, event, "shipping-order-changed")
    [after] = (await shipments(shipping, order_id)).values()
    assert after.lines == before.lines
    # Hamburg: 2 working days domestic (DE), 6 international: 4 working days later
    assert (
        working_days_between(
            dt.date.fromisoformat(before.promised_delivery_date),
            dt.date.fromisoformat(after.promised_delivery_date),
            Calendar(),
        )
        == 4
    )
    assert [e.type for e in await shipment_events(shipping, order_id)][-1] == "shipment.updated"
