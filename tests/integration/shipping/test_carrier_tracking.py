"""A carrier's tracking events on a real database (SQLite and PostgreSQL): the timeline, idempotency by
the carrier's event id, events out of order, a warehouse's key."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from prometheus_client import REGISTRY

from orderdesk import errors
from orderdesk.v1 import shipping_pb2
from services.shipping.api import ShippingApi
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository
from tests.integration.shipping.test_shipping_store import (
    DEMO_WAREHOUSES,
    MIGRATIONS,
    NOW,
    allocated_event,
    deliver,
    new_order_id,
    shipment_events,
)

T = NOW + dt.timedelta(hours=2)


@pytest.fixture
async def shipping(make_database):
    db = await make_database(MIGRATIONS)
    service = ShippingService(db, clock=lambda: NOW + dt.timedelta(days=2))
    await service.import_master_data("warehouses", DEMO_WAREHOUSES)
    return service


async def shipped(service: ShippingService, tracking_number: str) -> tuple[str, str]:
    order_id = new_order_id()
    await deliver(
        service, allocated_event(order_id, allocations=(("A", "WH-HAM", 2),)), "shipping-order-allocated"
    )
    [shipment] = await service.list_for_order(order_id, "")
    for step in ("picked", "packed"):
        await service.record_event(shipment.shipment_id, step, occurred_at=NOW)
    await service.record_event(
        shipment.shipment_id, "shipped", carrier="DHL", tracking_number=tracking_number, occurred_at=NOW
    )
    return order_id, shipment.shipment_id


def event(
    event_id: str, status: str, hours: float, tracking_number: str, **fields
) -> shipping_pb2.CarrierEvent:
    e = shipping_pb2.CarrierEvent(event_id=event_id, status=status, tracking_number=tracking_number, **fields)
    e.occurred_at.FromDatetime(T + dt.timedelta(hours=hours))
    return e


async def send(
    service: ShippingService, *events: shipping_pb2.CarrierEvent, source: str = "dhl", warehouse=""
):
    answer = await ShippingApi(service).RecordCarrierEvents(
        shipping_pb2.CarrierEventsRequest(source=source, events=events, warehouse=warehouse), None
    )
    return [(r.event_id, r.outcome) for r in answer.results]


def counted(**labels) -> float:
    return REGISTRY.get_sample_value("orderdesk_carrier_events_total", labels) or 0.0


async def test_the_timeline_is_kept_in_time_order_and_a_repeat_changes_nothing(shipping):
    tn = f"JD{new_order_id()}"
    order_id, sid = await shipped(shipping, tn)
    before = counted(carrier="dhl", status="in_transit", outcome="duplicate")

    first = await send(
        shipping,
        event("e2", "OutForDelivery", 5, tn, location="Hamburg", carrier_status="OFD"),
        event("e1", "in-transit", 1, tn, message="departed hub"),  # older, arrives second
    )
    assert first == [("e2", "applied"), ("e1", "recorded")]
    again = await send(shipping, event("e1", "in_transit", 1, tn))
    assert again == [("e1", "duplicate")]
    assert counted(carrier="dhl", status="in_transit", outcome="duplicate") == before + 1

    [listed] = (
        await ShippingApi(shipping).ListShipments(shipping_pb2.ListShipmentsRequest(order_id=order_id), None)
    ).items
    assert [(e.event_id, e.status) for e in listed.tracking] == [
        ("e1", "in_transit"),
        ("e2", "out_for_delivery"),
    ]
    assert listed.tracking[1].carrier_status == "OFD" and listed.tracking[1].location == "Hamburg"
    assert listed.tracking[0].carrier_status == "in-transit"  # the carrier's own word, kept
    assert listed.tracking_status == "out_for_delivery"
    # One event published for the newest word; the older and the repeated ones published nothing.
    types = [e.type for e in await shipment_events(shipping, order_id)]
    assert types[-1] == "shipment.tracked" and types.count("shipment.tracked") == 1


async def test_delivered_completes_with_the_carriers_time_and_nothing_moves_it_back(shipping):
    tn = f"JD{new_order_id()}"
    order_id, sid = await shipped(shipping, tn)
    assert await send(shipping, event("d", "Delivered", 26, tn)) == [("d", "applied")]
    assert await send(shipping, event("x", "in_transit", 30, tn), event("y", "exception", 31, tn)) == [
        ("x", "recorded"),
        ("y", "recorded"),
    ]
    async with shipping.db.reading() as work:
        s = await work.repo(ShipmentRepository).get(sid)
    assert s is not None
    assert (s.status.value, s.tracking_status) == ("delivered", "delivered")
    assert s.delivered_on == (T + dt.timedelta(hours=26)).date().isoformat()
    published = await shipment_events(shipping, order_id)
    delivered = [e for e in published if e.type == "shipment.delivered"]
    assert len(delivered) == 1
    assert delivered[0].occurred_at.ToDatetime(tzinfo=dt.UTC) == T + dt.timedelta(hours=26)
    assert delivered[0].shipment.tracking.event_id == "d"
    assert not any(e.type == "shipment.exception" for e in published)


async def test_a_failed_attempt_is_published_for_orders(shipping):
    tn = f"JD{new_order_id()}"
    order_id, sid = await shipped(shipping, tn)
    assert await send(shipping, event("a1", "delivery_attempted", 3, tn, message="nobody home")) == [
        ("a1", "applied")
    ]
    [attempt] = [
        e for e in await shipment_events(shipping, order_id) if e.type == "shipment.delivery_attempted"
    ]
    assert attempt.reason == "nobody home"
    assert attempt.shipment.tracking.status == "delivery_attempted"


async def test_the_same_event_sent_twice_at_once_is_recorded_once(shipping):
    tn = f"JD{new_order_id()}"
    order_id, sid = await shipped(shipping, tn)
    answers = await asyncio.gather(*(send(shipping, event("same", "in_transit", 1, tn)) for _ in range(4)))
    outcomes = sorted(a[0][1] for a in answers)
    assert outcomes == ["applied", "duplicate", "duplicate", "duplicate"]
    timelines = await shipping.timelines([sid])
    assert [e.event_id for e in timelines[sid]] == ["same"]


async def test_unknown_tracking_numbers_and_a_bad_batch(shipping):
    assert await send(shipping, event("u", "in_transit", 1, "NOPE")) == [("u", "unknown_shipment")]
    with pytest.raises(errors.InvalidArgument) as refused:
        await send(shipping, event("", "in_transit", 1, ""), event("f", "in_transit", 99, "X"))
    fields = {v.field for v in refused.value.violations}
    assert fields == {"events[0].event_id", "events[0].tracking_number", "events[1].occurred_at"}


async def test_a_key_tied_to_another_warehouse_neither_sees_nor_moves_the_shipment(shipping):
    tn = f"JD{new_order_id()}"
    order_id, sid = await shipped(shipping, tn)  # from WH-HAM
    assert await send(shipping, event("w", "in_transit", 1, tn), warehouse="WH-SHA") == [
        ("w", "unknown_shipment")
    ]
    assert await shipping.list_for_order(order_id, "", "WH-SHA") == []
    with pytest.raises(errors.NotFound):
        await shipping.record_event(sid, "delivered", warehouse="WH-SHA")
    assert [s.shipment_id for s in await shipping.list_for_order(order_id, "", "WH-HAM")] == [sid]
