"""Shipping on a real database (SQLite and PostgreSQL): consumers, steps, versions, promises, scoping."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from orderdesk import errors, events
from orderdesk.calendar import Holiday, Lane
from orderdesk.calendar_store import CalendarRepository
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2, shipping_pb2
from services.shipping.consumers import subscriptions
from services.shipping.domain import shipment_id_for
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "shipping" / "migrations"
DEMO = Path(__file__).resolve().parents[3] / "demo"
DEMO_WAREHOUSES = (DEMO / "warehouses.csv").read_text()
# Tuesday: 11:00 in Hamburg (before its 15:00 cut-off), 18:00 in Shanghai (after its 17:00)
ALLOCATED_AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 1, 10, 0, 5, tzinfo=dt.UTC)


def new_order_id() -> str:
    return f"ORD-T{uuid.uuid4().hex[:12].upper()}"


def allocated_event(
    order_id: str,
    *,
    partner: str = "P-SHOP",
    country: str = "DE",
    requested: str = "",
    allocations=(("A", "WH-HAM", 3), ("B", "WH-SHA", 2), ("A", "WH-SHA", 1)),
    at: dt.datetime = ALLOCATED_AT,
) -> events_pb2.Event:
    order = orders_pb2.Order(
        order_id=order_id,
        partner_id=partner,
        status="allocated",
        requested_delivery_date=requested,
        ship_to=common_pb2.Address(country=country),
        allocations=[orders_pb2.Allocation(sku=s, warehouse=w, quantity=q) for s, w, q in allocations],
    )
    return events.new_event(
        "order.allocated",
        aggregate_id=order_id,
        version=3,
        order_id=order_id,
        actor="system",
        at=at,
        order=events_pb2.OrderEvent(status="allocated", order=order),
    )


def cancelled_event(order_id: str) -> events_pb2.Event:
    return events.new_event(
        "order.cancelled",
        aggregate_id=order_id,
        version=4,
        order_id=order_id,
        actor="P-SHOP",
        reason="customer changed mind",
        order=events_pb2.OrderEvent(status="cancelled", previous_status="allocated"),
    )


@pytest.fixture
async def shipping(make_database):
    db = await make_database(MIGRATIONS)
    service = ShippingService(db, clock=lambda: NOW)
    await service.import_master_data("warehouses", DEMO_WAREHOUSES)
    return service


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


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_an_allocated_order_gets_one_shipment_per_warehouse_and_a_redelivery_creates_nothing(shipping):
    order_id = new_order_id()
    await deliver(shipping, allocated_event(order_id), "shipping-order-allocated")
    # The same fact again under a new event id (a re-publish): the inbox does not catch it, the ids do.
    await deliver(shipping, allocated_event(order_id), "shipping-order-allocated")

    items = {s.warehouse: s for s in await shipping.list_for_order(order_id, "")}
    assert set(items) == {"WH-HAM", "WH-SHA"}
    ham, sha = items["WH-HAM"], items["WH-SHA"]
    assert ham.shipment_id == f"SHP-{order_id.removeprefix('ORD-')}-WH-HAM"
    assert (ham.lines, sha.lines) == ({"A": 3}, {"B": 2, "A": 1})
    assert ham.status.value == "pending" and ham.version == 1 and ham.partner_id == "P-SHOP"
    assert ham.promised_delivery_date == "2026-12-03"  # same day, 2 working days domestic
    # after Shanghai's cut-off: ships Wednesday the 2nd, then 9 working days abroad
    assert sha.promised_delivery_date == "2026-12-15"

    published = await shipment_events(shipping, order_id)
    assert sorted(e.type for e in published) == ["shipment.created", "shipment.created"]
    assert {e.shipment.shipment.shipment_id for e in published} == {ham.shipment_id, sha.shipment_id}
    assert all(e.aggregate_version == 1 and e.order_id == order_id for e in published)


async def test_the_requested_date_wins_and_an_unknown_warehouse_gets_the_default(shipping):
    order_id = new_order_id()
    await deliver(
        shipping,
        allocated_event(order_id, requested="2027-01-20", allocations=[("A", "WH-HAM", 1)]),
        "shipping-order-allocated",
    )
    other = new_order_id()
    await deliver(
        shipping, allocated_event(other, allocations=[("A", "WH-NEW", 1)]), "shipping-order-allocated"
    )
    assert (await shipping.list_for_order(order_id, ""))[0].promised_delivery_date == "2027-01-20"
    # an unknown warehouse: the next working day (Wednesday), then the default 5 working days
    assert (await shipping.list_for_order(other, ""))[0].promised_delivery_date == "2026-12-09"


async def test_steps_in_order_with_versions_retries_and_refusals(shipping):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=[("A", "WH-HAM", 2)]), "shipping-order-allocated"
    )
    sid = (await shipping.list_for_order(order_id, ""))[0].shipment_id
    shipped_before = metric("orderdesk_shipment_events_total", type="shipped")

    assert (await shipping.record_event(sid, "picked", actor="3pl")).version == 2
    with pytest.raises(errors.FailedPrecondition) as err:
        await shipping.record_event(sid, "delivered", actor="3pl")
    assert err.value.rule == "shipment_step_skipped"
    assert (await shipping.record_event(sid, "packed", actor="3pl")).version == 3
    with pytest.raises(errors.FailedPrecondition) as err:
        await shipping.record_event(sid, "picked", actor="3pl")
    assert err.value.rule == "shipment_step_backwards"
    with pytest.raises(errors.InvalidArgument) as bad:
        await shipping.record_event(sid, "shipped", carrier="DHL", actor="3pl")
    assert [v.field for v in bad.value.violations] == ["tracking_number"]
    shipped = await shipping.record_event(sid, "shipped", carrier="DHL", tracking_number="TRK-1", actor="3pl")
    assert (shipped.version, shipped.carrier, shipped.tracking_number) == (4, "DHL", "TRK-1")
    again = await shipping.record_event(sid, "shipped", carrier="DHL", tracking_number="TRK-1", actor="3pl")
    assert again.version == 4  # a 3PL's retry: unchanged, nothing published

    published = await shipment_events(shipping, order_id)
    assert [(e.type, e.aggregate_version) for e in published] == [
        ("shipment.created", 1),
        ("shipment.picked", 2),
        ("shipment.packed", 3),
        ("shipment.shipped", 4),
    ]
    assert published[-1].shipment.shipment.tracking_number == "TRK-1"
    assert published[-1].actor == "3pl"
    assert metric("orderdesk_shipment_events_total", type="shipped") == shipped_before + 1

    with pytest.raises(errors.InvalidArgument) as bad:
        await shipping.record_event(sid, "teleported", actor="3pl")
    assert [v.field for v in bad.value.violations] == ["type"]
    with pytest.raises(errors.NotFound):
        await shipping.record_event("SHP-NOPE-WH-HAM", "picked", actor="3pl")


async def test_a_stale_version_is_a_conflict(shipping):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=[("A", "WH-HAM", 2)]), "shipping-order-allocated"
    )
    sid = (await shipping.list_for_order(order_id, ""))[0].shipment_id
    async with shipping.db.read() as conn:
        first = await ShipmentRepository(conn).get(sid)
        second = await ShipmentRepository(conn).get(sid)
    first.record("picked", at=NOW, actor="a")
    second.record("picked", at=NOW, actor="b")
    async with shipping.db.transaction() as tx:
        await ShipmentRepository(tx.conn).save(first)
    with pytest.raises(errors.Conflict):
        async with shipping.db.transaction() as tx:
            await ShipmentRepository(tx.conn).save(second)


@pytest.mark.parametrize(
    ("delivered_at", "on_time"),
    [
        (dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC), True),
        (dt.datetime(2026, 12, 4, 0, 1, tzinfo=dt.UTC), False),
    ],
)
async def test_delivered_records_the_date_and_the_on_time_flag(shipping, delivered_at, on_time):
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=[("A", "WH-HAM", 2)]), "shipping-order-allocated"
    )
    sid = (await shipping.list_for_order(order_id, ""))[0].shipment_id  # promised 2026-12-03
    label = str(on_time).lower()
    before = metric("orderdesk_shipments_delivered_total", on_time=label)
    await shipping.record_event(sid, "picked", actor="3pl")
    await shipping.record_event(sid, "shipped", carrier="UPS", tracking_number="1Z", actor="3pl")
    delivered = await shipping.record_event(sid, "delivered", occurred_at=delivered_at, actor="carrier")
    assert delivered.delivered_on == delivered_at.date().isoformat() and delivered.on_time is on_time
    stored = await shipping.get(sid, "")
    assert (stored.status.value, stored.delivered_on, stored.on_time) == (
        "delivered",
        delivered.delivered_on,
        on_time,
    )
    assert metric("orderdesk_shipments_delivered_total", on_time=label) == before + 1
    last = (await shipment_events(shipping, order_id))[-1]
    assert last.type == "shipment.delivered" and last.shipment.shipment.on_time is on_time


async def test_a_cancelled_order_cancels_what_has_not_shipped(shipping):
    order_id = new_order_id()
    await deliver(shipping, allocated_event(order_id), "shipping-order-allocated")
    by_wh = {s.warehouse: s.shipment_id for s in await shipping.list_for_order(order_id, "")}
    await shipping.record_event(by_wh["WH-HAM"], "picked", actor="3pl")
    await shipping.record_event(by_wh["WH-HAM"], "shipped", carrier="DHL", tracking_number="T", actor="3pl")
    await shipping.record_event(by_wh["WH-SHA"], "picked", actor="3pl")

    await deliver(shipping, cancelled_event(order_id), "shipping-order-cancelled")
    await deliver(shipping, cancelled_event(order_id), "shipping-order-cancelled")  # a repeat changes nothing
    statuses = {s.warehouse: s.status.value for s in await shipping.list_for_order(order_id, "")}
    assert statuses == {"WH-HAM": "shipped", "WH-SHA": "cancelled"}
    cancels = [e for e in await shipment_events(shipping, order_id) if e.type == "shipment.cancelled"]
    assert len(cancels) == 1 and "customer changed mind" in cancels[0].reason
    with pytest.raises(errors.FailedPrecondition) as err:
        await shipping.record_event(by_wh["WH-SHA"], "packed", actor="3pl")
    assert err.value.rule == "shipment_cancelled"


async def test_a_cancel_seen_before_the_allocation_means_no_shipments(shipping):
    order_id = new_order_id()
    await deliver(shipping, cancelled_event(order_id), "shipping-order-cancelled")
    await deliver(shipping, allocated_event(order_id), "shipping-order-allocated")
    assert await shipping.list_for_order(order_id, "") == []
    assert await shipment_events(shipping, order_id) == []


async def test_allocation_and_cancel_at_the_same_time_leave_nothing_to_ship(shipping):
    """The two consumers are independent; whichever commits first, no pending shipment survives."""
    for _ in range(5):
        order_id = new_order_id()
        await asyncio.gather(
            deliver(shipping, allocated_event(order_id), "shipping-order-allocated"),
            deliver(shipping, cancelled_event(order_id), "shipping-order-cancelled"),
        )
        assert all(s.status.value == "cancelled" for s in await shipping.list_for_order(order_id, ""))


async def test_partners_reach_only_their_own_shipments(shipping):
    order_id = new_order_id()
    await deliver(
        shipping,
        allocated_event(order_id, partner="P-SHOP", allocations=[("A", "WH-HAM", 1)]),
        "shipping-order-allocated",
    )
    sid = (await shipping.list_for_order(order_id, "P-SHOP"))[0].shipment_id
    assert (await shipping.get(sid, "P-SHOP")).shipment_id == sid
    assert (await shipping.get(sid, "")).shipment_id == sid  # fulfillment and admin reach every order
    with pytest.raises(errors.NotFound):
        await shipping.get(sid, "P-OTHER")
    assert await shipping.list_for_order(order_id, "P-OTHER") == []


async def test_every_scope_of_a_read_narrows_it(shipping):
    """Reads are templates per combination of scopes (partner, warehouse): each one's parameters count."""
    order_id = new_order_id()
    await deliver(shipping, allocated_event(order_id, partner="P-SHOP"), "shipping-order-allocated")
    async with shipping.db.read() as conn:
        repo = ShipmentRepository(conn)
        for partner, warehouse, expected in [
            ("", "", ["WH-HAM", "WH-SHA"]),
            ("P-SHOP", "", ["WH-HAM", "WH-SHA"]),
            ("", "WH-SHA", ["WH-SHA"]),
            ("P-SHOP", "WH-HAM", ["WH-HAM"]),
            ("P-OTHER", "WH-HAM", []),
            ("", "WH-NONE", []),
        ]:
            found = await repo.for_order(order_id, partner, warehouse)
            assert [s.warehouse for s in found] == expected, (partner, warehouse)
            for wh in ("WH-HAM", "WH-SHA"):
                got = await repo.get(shipment_id_for(order_id, wh), partner, warehouse)
                assert (got is not None) == (wh in expected), (partner, warehouse, wh)
        assert await repo.for_order("ORD-NONE") == []


async def test_only_warehouses_calendars_and_lanes_are_imported(shipping):
    with pytest.raises(errors.InvalidArgument) as err:
        await shipping.import_master_data("products", "sku\nA\n")
    assert [v.field for v in err.value.violations] == ["kind"]
    with pytest.raises(errors.InvalidArgument):
        await shipping.import_master_data("warehouses", "warehouse,name\nWH-X,X\n")  # missing columns
    old = "WH-HAM,Hamburg DC,DE,Europe/Berlin,15:00,Mon-Fri,2,6"
    assert old in DEMO_WAREHOUSES
    changed = DEMO_WAREHOUSES.replace(old, "WH-HAM,Hamburg DC,DE,Europe/Berlin,15:00,Mon-Fri,1,6")
    assert await shipping.import_master_data("warehouses", changed) == 3
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=[("A", "WH-HAM", 1)]), "shipping-order-allocated"
    )
    assert (await shipping.list_for_order(order_id, ""))[0].promised_delivery_date == "2026-12-02"


async def test_the_api_speaks_protobuf(shipping):
    from services.shipping.api import ShippingApi

    api = ShippingApi(shipping)
    order_id = new_order_id()
    await deliver(
        shipping, allocated_event(order_id, allocations=[("A", "WH-HAM", 1)]), "shipping-order-allocated"
    )
    listed = await api.ListShipments(shipping_pb2.ListShipmentsRequest(order_id=order_id), None)
    assert [s.status for s in listed.items] == ["pending"]
    request = shipping_pb2.ShipmentEventRequest(
        shipment_id=listed.items[0].shipment_id, type="picked", actor="3pl"
    )
    assert (await api.RecordShipmentEvent(request, None)).status == "picked"
    with pytest.raises(errors.InvalidArgument):
        await api.ListShipments(shipping_pb2.ListShipmentsRequest(), None)
    async with shipping.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox_table))).scalar() >= 2


async def test_calendars_and_lanes_import_read_back_and_make_the_promise(shipping):
    assert await shipping.import_master_data("calendars", (DEMO / "calendars.csv").read_text()) == 12
    assert await shipping.import_master_data("lanes", (DEMO / "lanes.csv").read_text()) == 5
    async with shipping.db.reading() as work:
        holidays = await work.repo(CalendarRepository).holidays()
        lanes = await work.repo(CalendarRepository).lanes()
    assert Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7), "Stocktake (closed)") in holidays
    assert Holiday("country", "FR", dt.date(2026, 12, 25), "Noël") in holidays
    assert Lane("DE", "FR", 1, "DHL") in lanes and Lane("DE", "FR", 2) in lanes

    friday = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)  # 16:00 in Hamburg: past the cut-off

    async def promise(country: str, at: dt.datetime = friday) -> str:
        order_id = new_order_id()
        event = allocated_event(order_id, country=country, allocations=[("A", "WH-HAM", 1)], at=at)
        await deliver(shipping, event, "shipping-order-allocated")
        return (await shipping.list_for_order(order_id, ""))[0].promised_delivery_date

    # Monday the 7th is Hamburg's stocktake: ships Tuesday, 2 working days in Germany: Thursday
    assert await promise("DE") == "2026-12-10"
    # to France by the lane (2 working days, any carrier): also Thursday
    assert await promise("FR") == "2026-12-10"
    # before Christmas: Wednesday the 23rd ships that day; Germany is closed 24-26: Monday, Tuesday
    assert await promise("DE", dt.datetime(2026, 12, 23, 9, 0, tzinfo=dt.UTC)) == "2026-12-29"
    # an import names Hamburg's holidays anew: the stocktake is gone, Friday's order ships Monday
    await shipping.import_master_data(
        "calendars", "scope,code,date,name\nwarehouse,WH-HAM,2026-12-31,Inventory\n"
    )
    async with shipping.db.reading() as work:
        holidays = await work.repo(CalendarRepository).holidays()
    assert [h.date for h in holidays if h.scope == "warehouse"] == [dt.date(2026, 12, 31)]
    assert len(holidays) == 12  # the countries' holidays stay
    assert await promise("DE") == "2026-12-09"


async def test_the_order_gate_is_open_until_a_cancel_and_waits_for_one_in_flight(make_database):
    """open_for_shipments in one statement: made or touched while open, closed once cancelled; with a
    cancel in flight it waits for its commit and then reads the order as cancelled."""
    db = await make_database(MIGRATIONS)
    order_id = new_order_id()
    for _ in range(2):  # new, then known
        async with db.transaction() as tx:
            assert await tx.repo(ShipmentRepository).open_for_shipments(order_id) is True
    cancelling = asyncio.Event()
    release = asyncio.Event()

    async def cancel():
        async with db.transaction() as tx:
            await tx.repo(ShipmentRepository).mark_cancelled(order_id)
            cancelling.set()
            await release.wait()

    async def open_gate():
        async with db.transaction() as tx:
            return await tx.repo(ShipmentRepository).open_for_shipments(order_id)

    canceller = asyncio.create_task(cancel())
    await cancelling.wait()
    opener = asyncio.create_task(open_gate())
    await asyncio.sleep(0.2)
    assert not opener.done()  # held by the cancel's row lock (SQLite: by its single connection)
    release.set()
    await canceller
    assert await opener is False
    async with db.transaction() as tx:
        assert await tx.repo(ShipmentRepository).open_for_shipments(new_order_id()) is True
