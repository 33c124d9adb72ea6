"""A scheduled order carries the dates inventory expects its backordered units; allocated clears them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.orders.domain import Allocation, Line, Order, Status
from services.orders.proto import order_to_proto

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def confirmed() -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"country": "FR"},
        lines=[Line("A", 5, Decimal("2"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    order.transitions.clear()
    return order


def test_scheduled_with_the_expected_dates_then_allocated_without_them():
    order = confirmed()
    order.apply_reservation(NOW, [Allocation("A", "WH-HAM", 2)], {"A": 3}, ("2026-12-06", "2026-12-12"))
    assert order.status is Status.SCHEDULED
    assert (order.expected_ship_date, order.expected_delivery_date) == ("2026-12-06", "2026-12-12")
    assert order.history[-1].reason == "backordered: A x3; expected delivery 2026-12-12"
    proto = order_to_proto(order)
    assert (proto.expected_ship_date, proto.expected_delivery_date) == ("2026-12-06", "2026-12-12")

    version = order.version
    order.apply_reservation(NOW, [Allocation("A", "WH-HAM", 2)], {"A": 3}, ("2026-12-09", "2026-12-15"))
    assert order.status is Status.SCHEDULED and order.expected_delivery_date == "2026-12-15"
    assert order.version == version + 1  # the date moved: a new version, no status change

    order.apply_reservation(NOW, [Allocation("A", "WH-HAM", 5)], {}, ("", ""))
    assert order.status is Status.ALLOCATED
    assert (order.expected_ship_date, order.expected_delivery_date) == ("", "")


def test_a_backorder_without_a_known_date_says_so():
    order = confirmed()
    order.apply_reservation(NOW, [], {"A": 5})
    assert order.status is Status.SCHEDULED and order.expected_delivery_date == ""
    assert order.history[-1].reason == "backordered: A x5"
