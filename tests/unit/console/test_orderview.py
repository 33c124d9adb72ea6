"""The order page's rules: the actions an order's state allows (from the services' own tables), and the
timeline that merges status history, change requests, exceptions, resolutions, notes, webhooks and the
carriers' tracking events."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from console import i18n, orderview, words
from console.orderview import Action, Kind
from orderdesk import actors
from orderdesk.v1 import notifier_pb2, orders_pb2, shipping_pb2

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def at(minutes: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(T0 + dt.timedelta(minutes=minutes))
    return stamp


def order(status: str, *shipments: str, delivered: int = 0, returned: int = 0) -> orders_pb2.Order:
    return orders_pb2.Order(
        order_id="ORD-1",
        status=status,
        lines=[
            orders_pb2.OrderLine(
                sku="A", quantity=4, delivered_quantity=delivered, returned_quantity=returned
            )
        ],
        shipments=[
            orders_pb2.ShipmentSummary(shipment_id=f"S{n}", status=s) for n, s in enumerate(shipments)
        ],
    )


CHANGES = {Action.AMEND_ADDRESS, Action.AMEND_LINES, Action.CANCEL_ORDER, Action.CANCEL_LINES}


def test_a_held_order_may_be_decided_changed_cancelled_and_raised():
    assert (
        orderview.actions(order("on_hold"))
        == {Action.APPROVE, Action.REJECT, Action.RAISE_EXCEPTION} | CHANGES
    )


@pytest.mark.parametrize(
    ("shipment", "allowed"),
    [
        ("pending", CHANGES),
        ("picked", {Action.AMEND_ADDRESS, Action.CANCEL_ORDER, Action.CANCEL_LINES}),
        ("packed", {Action.CANCEL_ORDER, Action.CANCEL_LINES}),
    ],
)
def test_an_allocated_order_allows_changes_until_its_goods_move(shipment, allowed):
    assert orderview.actions(order("allocated", shipment)) == allowed | {Action.RAISE_EXCEPTION}


@pytest.mark.parametrize(
    ("remainder", "allowed"),
    [
        ((), CHANGES),
        (("pending",), CHANGES),
        (("picked",), {Action.AMEND_ADDRESS, Action.CANCEL_ORDER, Action.CANCEL_LINES}),
        (("packed", "pending"), {Action.CANCEL_ORDER, Action.CANCEL_LINES}),
    ],
)
def test_a_partially_shipped_order_offers_what_its_remainder_allows(remainder, allowed):
    """The parcels that left do not count: the rest is judged as an allocated order's goods are."""
    assert orderview.actions(order("partially_shipped", "shipped", *remainder)) == allowed | {
        Action.RAISE_EXCEPTION
    }


def test_shipped_and_closed_orders_allow_only_a_return_of_what_was_delivered():
    assert orderview.actions(order("shipped", "shipped")) == {Action.RAISE_EXCEPTION}
    assert orderview.actions(order("completed", "delivered", delivered=4)) == {Action.AUTHORISE_RETURN}
    assert orderview.actions(order("completed", "delivered", delivered=4, returned=4)) == set()
    assert orderview.actions(order("rejected")) == set()
    assert orderview.actions(order("")) == set()  # an unknown state offers nothing


@given(
    st.sampled_from(
        [
            "received",
            "on_hold",
            "confirmed",
            "scheduled",
            "allocated",
            "partially_shipped",
            "shipped",
            "completed",
            "cancelled",
            "rejected",
        ]
    ),
    st.lists(
        st.sampled_from(["pending", "picked", "packed", "shipped", "delivered", "cancelled"]), max_size=3
    ),
)
def test_only_a_held_order_is_decided_and_nothing_changes_once_goods_left(status, shipments):
    allowed = orderview.actions(order(status, *shipments))
    assert (Action.APPROVE in allowed) == (status == "on_hold") == (Action.REJECT in allowed)
    goods_left = {"shipped", "delivered"} & set(shipments)
    if status in ("shipped", "completed", "cancelled", "rejected") or (status == "allocated" and goods_left):
        assert not allowed & CHANGES
    if status == "partially_shipped":  # the remainder never left: its cancel is always offered
        assert {Action.CANCEL_ORDER, Action.CANCEL_LINES} <= allowed
        if {"picked", "packed"} & set(shipments):
            assert Action.AMEND_LINES not in allowed


def test_resolutions_follow_the_exception_type_and_only_while_open():
    open_delay = orders_pb2.OrderException(exception_id="E1", type="carrier_delay", status="open")
    assert orderview.resolutions(open_delay) == ["accept_delay", "change_carrier"]
    assert orderview.resolutions(orders_pb2.OrderException(type="carrier_delay", status="resolved")) == []
    assert orderview.resolutions(orders_pb2.OrderException(type="meteor", status="open")) == []


def test_the_timeline_merges_webhooks_into_the_services_entries_by_time_with_who_and_kinds():
    placed = orders_pb2.Order(
        changes=[orders_pb2.ChangeEntry(version=3, at=at(10), actor="P-SHOP", kinds=["ship_to", "quantity"])]
    )
    recorded = orders_pb2.OrderTimeline(
        entries=[
            orders_pb2.TimelineEntry(at=at(0), actor="key:shop@P-SHOP", kind="status", status="received"),
            orders_pb2.TimelineEntry(at=at(0), actor="system", kind="status", status="on_hold"),
            orders_pb2.TimelineEntry(at=at(10), actor="P-SHOP", kind="change", version=3),
            orders_pb2.TimelineEntry(at=at(20), actor="desk:bo@acme.example (clerk)", kind="note", text="x"),
            orders_pb2.TimelineEntry(
                at=at(50),
                actor="desk:bo@acme.example (clerk)",
                kind="exception_resolved",
                details={"b": "2", "a": "1"},
            ),
        ]
    )
    sent = [
        notifier_pb2.Delivery(created_at=at(0), event_type="order.received"),
        notifier_pb2.Delivery(created_at=at(30), event_type="order.changed"),
    ]
    entries = orderview.timeline(placed, recorded, deliveries=sent)
    assert [e.kind for e in entries] == [
        "status",
        "status",
        Kind.WEBHOOK,
        "change",
        "note",
        Kind.WEBHOOK,
        "exception_resolved",
    ]
    assert [e.who.kind for e in entries] == ["key", "system", "system", "partner", "desk", "system", "desk"]
    assert entries[3].kinds == ["ship_to", "quantity"]
    assert entries[-1].details == [("a", "1"), ("b", "2")]
    assert [e.item.version for e in orderview.changes_since(placed, 2)] == [3]
    assert orderview.changes_since(placed, 2)[0].kinds == ["ship_to", "quantity"]
    assert orderview.changes_since(placed, 3) == []


def test_the_carriers_events_join_the_timeline_at_the_carriers_time_by_the_carrier():
    recorded = orders_pb2.OrderTimeline(
        entries=[
            orders_pb2.TimelineEntry(at=at(0), actor="system", kind="status", status="allocated"),
            orders_pb2.TimelineEntry(at=at(40), actor="carrier:dhl", kind="status", status="completed"),
        ]
    )
    attempted = shipping_pb2.TrackingEntry(
        event_id="E2", source="aftership", carrier="dhl", status="delivery_attempted", occurred_at=at(20)
    )
    picked_up = shipping_pb2.TrackingEntry(event_id="E1", source="dhl", carrier="dhl", occurred_at=at(10))
    delivered = shipping_pb2.TrackingEntry(
        event_id="E3", source="ups", status="delivered", occurred_at=at(40)
    )
    shipments = [
        shipping_pb2.Shipment(shipment_id="S1", tracking=[picked_up, attempted]),
        shipping_pb2.Shipment(shipment_id="S2", tracking=[delivered]),
        shipping_pb2.Shipment(shipment_id="S3"),  # not tracked yet
    ]
    entries = orderview.timeline(orders_pb2.Order(), recorded, shipments=shipments)
    assert [(e.kind, e.at) for e in entries] == [
        ("status", T0),
        (Kind.TRACKING, T0 + dt.timedelta(minutes=10)),
        (Kind.TRACKING, T0 + dt.timedelta(minutes=20)),
        ("status", T0 + dt.timedelta(minutes=40)),  # a tie: the service's own entry first
        (Kind.TRACKING, T0 + dt.timedelta(minutes=40)),
    ]
    assert [e.item.event_id for e in entries if e.kind == Kind.TRACKING] == ["E1", "E2", "E3"]
    # Who: the carrier moving the parcel (an aggregator names it; else the sender is the carrier).
    assert [e.who for e in entries[1:]] == [actors.Who("carrier", "dhl")] * 3 + [actors.Who("carrier", "ups")]


def test_changed_fields_read_as_words():
    token = i18n.current.set("zh_Hans")
    try:
        assert words.field_label("ship_to.city") == "收货地址：城市"
        assert words.field_label("lines[BRK-1].quantity") == "行 BRK-1：数量"
    finally:
        i18n.current.reset(token)
    assert words.field_label("lines[BRK-1]") == "Line BRK-1"
    assert words.field_label("something.else") == "something.else"


def test_at_risk_with_an_open_exception_or_a_risk_the_promise_watch_sees():
    assert orderview.at_risk(orders_pb2.Order(at_risk=True))
    assert not orderview.at_risk(orders_pb2.Order())
    watched = orders_pb2.Order()
    watched.risks.add(code="supply_late", slip_days=2)
    assert orderview.at_risk(watched)
