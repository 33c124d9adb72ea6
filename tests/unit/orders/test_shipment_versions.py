"""Shipping's events about one shipment may reach orders out of order (a nak'ed message comes back after
later ones; two replicas share a durable): the newest shipment version wins, an older one changes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.orders.domain import Allocation, Line, Order, ShipmentView, Status

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def allocated_order() -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"country": "US"},
        lines=[Line("A", 2, Decimal("5"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {})
    return order


def step(status: str, version: int) -> ShipmentView:
    return ShipmentView(
        "SHP-1",
        "W1",
        status,
        lines={"A": 2},
        on_time=True if status == "delivered" else None,
        version=version,
    )


def test_a_late_older_step_does_not_undo_a_delivery():
    order = allocated_order()
    order.record_shipment(NOW, step("delivered", 5))
    assert order.status is Status.COMPLETED and order.lines[0].delivered == 2
    for status, version in (("shipped", 4), ("packed", 3), ("picked", 2), ("delivered", 5)):
        order.record_shipment(NOW, step(status, version))
    assert order.shipments["SHP-1"].status == "delivered" and order.lines[0].delivered == 2
    assert order.status is Status.COMPLETED


def test_steps_in_order_still_move_the_order():
    order = allocated_order()
    for status, version in (("picked", 2), ("shipped", 4)):
        order.record_shipment(NOW, step(status, version))
    assert order.status is Status.SHIPPED and order.shipments["SHP-1"].status == "shipped"
